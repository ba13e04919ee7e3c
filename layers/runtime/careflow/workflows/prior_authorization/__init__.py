"""Prior authorization: from request to the payer's decision, for any service line.

Started by ``PriorAuth.Requested`` (imaging, infusion, surgery...) or as a child of another
workflow (``states:startExecution.sync:2``). Submits with Da Vinci PAS ``Claim/$submit``;
asks the utilization review nurse for documents when the payer wants more information and
resubmits; waits for a pended decision's Subscription notification (``PayerDecision``
re-reads it with ``$inquire`` and resumes the wait with the payer's answer, never the
event's), inquires only once it is overdue, escalates before the CMS-0057-F clock runs
out; gives an answer it cannot act on (UNKNOWN review action, non-conformant PAS) to a
person; opens an appeal task on a denial. ``spec.py``, ``events.py``, ``rules.py``,
``steps.py``, ``demo.py``; its ASL is ``statemachines/prior_authorization.asl.json``.
"""
