"""Invoice exception handling: the real ASL on the local cloud with the real handlers.

Every invoice arrives as ``careflow.erp`` / ``Invoice.Received`` through EventBridge
(intake's rules); the ERP is the in-process sandbox's (``adapters/sandbox_payables.py``).
Each test reaches an outcome: MATCHED (at once, and after waiting for a late receipt),
CREDIT_MEMO_REQUESTED (by AP, and when the second approver rejects a large accepted
variance), RETURNED (after an escalation; for a missing PO), RESOLVED_ACCEPTED (by the
acceptor, and above the policy's limit once a second person approves),
NO_RECEIPT, DUPLICATE and UNRESOLVED.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from careflow import wiring
from careflow.adapters.sandbox import sandbox
from careflow.adapters.sandbox_payables import InvoiceCase, Line
from careflow.domain.intake import instance_id_for
from careflow.domain.records import InstanceStatus
from careflow.domain.tasks import TaskError, claim_task
from tests.workflows.harness import Case, advance_through_timer, ai_models, claim_and_complete

WORKFLOW = "invoice-exceptions"
SOURCE = "careflow.erp"
_numbers = itertools.count(61001)


def received(
    cloud,
    *lines: Line,
    facility: str = "fac-north",
    supplier: str = "sup-medline",
    receipt: bool = True,
    invoice_id: str | None = None,
    number: str | None = None,
    po_id: str | None = None,
) -> Case:
    """A PO (with its receipt unless ``receipt`` is false) and its invoice in the ERP, then
    the ERP's ``Invoice.Received``."""
    n = next(_numbers)
    invoice_id = invoice_id or f"INV-T-{n}"
    number = number or f"T-{n}"
    po_id = po_id or f"PO-T-{n}"
    if sandbox().invoice(invoice_id) is None:  # else placed in the ERP by the test
        sandbox().add_invoice_case(
            InvoiceCase(invoice_id, facility, supplier, number, po_id, lines, receipt=receipt),
            now=cloud.clock.now(),
        )
    key = f"invoice:{invoice_id}"
    cloud.put_event(
        SOURCE,
        "Invoice.Received",
        facility_id=facility,
        idempotency_key=key,
        data={
            "invoice_id": invoice_id,
            "vendor_id": supplier,
            "invoice_number": number,
            "po_id": po_id,
        },
    )
    case = Case(cloud, invoice_id, instance_id_for(WORKFLOW, key), WORKFLOW).started()
    case.po_id = po_id  # type: ignore[attr-defined]
    return case


def concluded(case: Case, outcome: str) -> None:
    result = case.drive(step=timedelta(hours=6))
    assert result["status"] == "SUCCEEDED", result
    instance = case.instance()
    assert (instance.status, instance.outcome) == (InstanceStatus.COMPLETED, outcome), (
        instance.outcome_reasons
    )


def test_an_invoice_within_tolerance_is_approved_for_payment(cloud):
    # drapes invoiced as ordered, cement $2.50 a unit over on a $920 line: within $50
    case = received(
        cloud,
        Line("SUP-DRAPE-ORTHO", 30, "38.50"),
        Line("SUP-CEMENT-40", 10, "92.00", invoice_price="94.50"),
    )
    concluded(case, "MATCHED")
    assert sandbox().invoice(case.case_id).status == "APPROVED"
    assert not case.tasks()
    assert "matched" in case.milestone_names()


def test_a_price_variance_goes_to_ap_pricing_and_a_credit_memo_is_requested(cloud):
    case = received(cloud, Line("SUP-DRAPE-ORTHO", 30, "38.50", invoice_price="41.25"))
    task = case.open_task()
    assert task.queue == "ap_pricing"
    assert task.escalation_chain == ("ap_pricing", "ap_supervisor", "ap_manager", "controller")
    assert "82.50 USD" in task.title
    assert sandbox().invoice(case.case_id).status == "EXCEPTION"  # held in the ERP
    claim_and_complete(cloud, task, "REQUEST_CREDIT_MEMO", actor="user:ap-clerk-mgarcia")
    concluded(case, "CREDIT_MEMO_REQUESTED")
    actions = [a.action for a in sandbox().invoice_actions(case.case_id)]
    assert actions == ["HOLD", "REQUEST_CREDIT_MEMO"]


def test_an_implants_quantity_variance_escalates_as_it_ages_then_is_returned(cloud):
    case = received(
        cloud,
        Line("IMP-THA-STEM-12", 3, "1980.00", received=2),
        supplier="sup-jointworks",
        facility="fac-south",
    )
    task = case.open_task()
    assert task.queue == "ap_receiving"
    # due when the invoice (dated two days ago) enters the 8-30 day bucket, at midnight
    due = task.due_at - cloud.clock.now()
    assert timedelta(days=5) < due < timedelta(days=7)
    # nobody decides by then: the AP supervisor has it
    advance_through_timer(cloud, due, slack=timedelta(hours=1), case=case)
    task = case.open_task(level=1)
    assert task.queue == "ap_supervisor"
    claim_and_complete(cloud, task, "RETURN", actor="user:ap-sup-tbrooks")
    concluded(case, "RETURNED")
    assert sandbox().invoice(case.case_id).status == "REJECTED"
    assert {"ExceptionTask", "EscalateExceptionTask", "ApplyInvoiceDecision"} <= (
        case.entered_states()
    )
    measured = [
        a for a in case.store.audit_trail(case.instance_id) if a.action == "invoice_measured"
    ]
    assert due.days <= measured[0].detail["days_to_resolve"] <= due.days + 1


def test_a_contract_price_variance_accepted_by_ap_is_approved_with_its_approver(cloud):
    # the PO says 1450.00, the supplier's contract 1420.00: 4 cups, 120.00 over (2 %: 113.60)
    case = received(cloud, Line("IMP-THA-CUP-52", 4, "1450.00"), supplier="sup-jointworks")
    task = case.open_task()
    assert task.queue == "ap_pricing" and "contract price variance" in task.title
    claim_and_complete(cloud, task, "ACCEPT_VARIANCE", actor="user:ap-clerk-dokoro")
    concluded(case, "RESOLVED_ACCEPTED")
    assert sandbox().invoice(case.case_id).status == "APPROVED"
    [accepted] = [
        a for a in sandbox().invoice_actions(case.case_id) if a.action == "ACCEPT_VARIANCE"
    ]
    assert accepted.actor == "user:ap-clerk-dokoro"


def _approval_task(case: Case):  # the variance-approval task, once it is open
    def find():
        for t in case.store.tasks_for_instance(case.instance_id):
            if t.awaits_decision and "Approve the accepted variance" in t.title:
                return t
        return None

    return case.cloud.wait_for(find, 20, f"variance approval task on {case.case_id}")


def test_a_large_accepted_variance_waits_for_a_second_person_who_is_not_the_acceptor(cloud):
    # 20 cups at the PO's 1450.00, contract 1420.00: 600.00 over (2 % of 28400.00 is 568.00),
    # above the policy's 500.00: accepting it needs a second approver
    case = received(cloud, Line("IMP-THA-CUP-52", 20, "1450.00"), supplier="sup-jointworks")
    task = case.open_task()
    claim_and_complete(cloud, task, "ACCEPT_VARIANCE", actor="user:ap-clerk-dokoro")
    approval = _approval_task(case)
    assert approval.queue == "ap_manager"
    assert approval.allowed_decisions == ("APPROVE", "REJECT")
    assert approval.excluded_actors == ("user:ap-clerk-dokoro",)
    assert sandbox().invoice(case.case_id).status != "APPROVED"  # held until approved
    governed = {"now": cloud.clock.now(), "policies": wiring.policies()}
    # the acceptor may not approve their own acceptance, even holding the role
    with pytest.raises(TaskError, match="separation of duties") as refused:
        claim_task(
            wiring.store(),
            task_id=approval.task_id,
            actor="user:ap-clerk-dokoro",
            **governed,
        )
    assert refused.value.kind == "forbidden"
    claim_and_complete(cloud, approval, "APPROVE", actor="user:ap-mgr-lchen")
    concluded(case, "RESOLVED_ACCEPTED")
    assert sandbox().invoice(case.case_id).status == "APPROVED"
    [accepted] = [
        a for a in sandbox().invoice_actions(case.case_id) if a.action == "ACCEPT_VARIANCE"
    ]
    assert accepted.actor == "user:ap-clerk-dokoro"
    reasons = case.instance().outcome_reasons
    assert "approved by user:ap-mgr-lchen" in reasons
    assert {"VarianceApprovalTask", "ApproveVariance"} <= case.entered_states()


def test_a_large_accepted_variance_the_approver_rejects_requests_a_credit_memo(cloud):
    case = received(cloud, Line("IMP-THA-CUP-52", 20, "1450.00"), supplier="sup-jointworks")
    claim_and_complete(cloud, case.open_task(), "ACCEPT_VARIANCE", actor="user:ap-clerk-dokoro")
    claim_and_complete(cloud, _approval_task(case), "REJECT", actor="user:controller-nhall")
    concluded(case, "CREDIT_MEMO_REQUESTED")
    actions = [a.action for a in sandbox().invoice_actions(case.case_id)]
    assert "ACCEPT_VARIANCE" not in actions and actions[-1] == "REQUEST_CREDIT_MEMO"
    assert sandbox().invoice(case.case_id).status != "APPROVED"


def test_an_invoice_waits_for_its_receipt_and_matches_once_it_is_posted(cloud):
    case = received(cloud, Line("SUP-CEMENT-40", 20, "92.00"), receipt=False)
    case.wait_milestone("awaiting_receipt")
    advance_through_timer(cloud, timedelta(days=1), slack=timedelta(hours=1), case=case)
    sandbox().post_receipt(case.po_id, cloud.clock.now())  # type: ignore[attr-defined]
    concluded(case, "MATCHED")
    assert "AwaitReceipt" in case.entered_states()


def test_no_receipt_within_the_policys_limit_is_no_receipt(cloud):
    case = received(cloud, Line("SUP-CEMENT-40", 20, "92.00"), receipt=False)
    case.wait_milestone("awaiting_receipt")
    concluded(case, "NO_RECEIPT")
    assert [a.action for a in sandbox().invoice_actions(case.case_id)] == ["HOLD"]
    assert sandbox().invoice(case.case_id).status == "EXCEPTION"


def test_the_same_invoice_sent_again_is_a_duplicate(cloud):
    first = received(cloud, Line("SUP-DRAPE-ORTHO", 10, "38.50"))
    concluded(first, "MATCHED")
    original = sandbox().invoice(first.case_id)
    again_id = f"{first.case_id}-DUP"
    sandbox().payables.invoices[again_id] = original.model_copy(
        update={"invoice_id": again_id, "status": "RECEIVED", "received_at": cloud.clock.now()}
    )
    dup = received(
        cloud,
        invoice_id=again_id,
        number=original.invoice_number,
        po_id=original.po_id,
    )
    concluded(dup, "DUPLICATE")
    assert sandbox().invoice(again_id).status == "REJECTED"
    assert dup.instance().outcome_reasons[0].startswith(f"repeats {first.case_id}")


def test_an_exception_nobody_decides_is_unresolved_after_the_whole_chain(cloud):
    case = received(cloud, Line("SUP-DRAPE-ORTHO", 30, "38.50", invoiced=31))
    for level in range(4):  # ap_receiving, ap_supervisor, ap_manager, controller
        task = case.open_task(level=level)
        advance_through_timer(
            cloud, task.due_at - cloud.clock.now(), slack=timedelta(hours=1), case=case
        )
    concluded(case, "UNRESOLVED")
    assert case.instance().outcome_reasons[-1] == (
        "no decision from the escalation chain before its last SLA"
    )


def test_an_invoice_for_a_po_the_erp_does_not_know_goes_to_purchasing(cloud):
    template = received(cloud, Line("SUP-DRAPE-ORTHO", 5, "38.50"))
    concluded(template, "MATCHED")
    orphan_id = f"{template.case_id}-NOPO"
    original = sandbox().payables.invoices[template.case_id]
    sandbox().payables.invoices[orphan_id] = original.model_copy(
        update={
            "invoice_id": orphan_id,
            "invoice_number": f"{template.case_id}-X",
            "po_id": "PO-UNKNOWN",
            "status": "RECEIVED",
        }
    )
    case = received(cloud, invoice_id=orphan_id, number=f"{template.case_id}-X", po_id="PO-UNKNOWN")
    task = case.open_task()
    assert task.queue == "ap_purchasing" and "missing po" in task.title
    claim_and_complete(cloud, task, "RETURN", actor="user:buyer-jlee")
    concluded(case, "RETURNED")


# -- the invoice exception model at receipt (decision 49) ----------------------------------
# Which invoices the committed artifact is confident about is computed here, never
# hard-coded: the candidates' features as the step builds them (model.features_of), scored
# by the local predictor for every invoice age a facility's clock can give (0-2 days).
def _scored(*lines: Line, supplier: str, receipt: bool) -> list:
    from careflow.adapters.predictor_local import LocalPredictor
    from careflow.adapters.sandbox_payables import CONTRACT_PRICES
    from careflow.workflows.invoice_exceptions import model

    contracts = CONTRACT_PRICES.get(supplier, {})
    total = sum(
        float(x.invoice_price or x.po_price)
        * (x.invoiced if x.invoiced is not None else x.quantity)
        for x in lines
    )
    return [
        LocalPredictor().predict(
            model.MODEL.id,
            model.features_of(
                line_count=len(lines),
                total=total,
                implant_lines=sum(x.item_id.startswith("IMP-") for x in lines),
                po_lines=len(lines),
                contract_priced=any(x.item_id in contracts for x in lines),
                has_po=True,
                po_known=True,
                receipt_posted=receipt,
                invoice_age_days=age,
            ),
        )
        for age in (0, 1, 2)
    ]


def _threshold() -> float:
    from careflow.ml.governance import setting

    return setting("invoice_exception", "fac-north", policies=wiring.policies()).threshold


def _confident_no_receipt() -> tuple[tuple[Line, ...], str]:
    """An invoice without its receipt that the model calls no_receipt at or above the
    policy's threshold, whatever its age."""
    candidates = (
        ((Line("IMP-THA-CUP-52", 1, "1420.00"),), "sup-jointworks"),
        ((Line("IMP-TKA-FEM-5", 1, "2450.00"),), "sup-orthoco"),
        ((Line("SUP-CEMENT-40", 2, "92.00"),), "sup-medline"),
    )
    for lines, supplier in candidates:
        scored = _scored(*lines, supplier=supplier, receipt=False)
        if all(p.label == "no_receipt" and p.confidence >= _threshold() + 0.02 for p in scored):
            return lines, supplier
    raise AssertionError("the artifact is confident about no candidate: choose others")


def _unconfident_exception() -> tuple[tuple[Line, ...], str]:
    """An invoice that raises an exception and whose prediction is below the threshold."""
    candidates = (
        ((Line("IMP-THA-STEM-12", 3, "1980.00", received=2),), "sup-jointworks"),
        ((Line("IMP-THA-CUP-52", 4, "1450.00"),), "sup-jointworks"),
        ((Line("IMP-TKA-FEM-5", 2, "2450.00", received=1),), "sup-orthoco"),
    )
    for lines, supplier in candidates:
        scored = _scored(*lines, supplier=supplier, receipt=True)
        if all(p.confidence <= _threshold() - 0.02 for p in scored):
            return lines, supplier
    raise AssertionError("the artifact is confident about every candidate: choose others")


def _model_audit(case: Case) -> list:
    return [
        a
        for a in wiring.store().audit_trail(case.instance_id)
        if a.detail.get("model_id") == "invoice_exception"
    ]


def test_a_confident_no_receipt_at_receipt_asks_receiving_at_once(cloud):
    lines, supplier = _confident_no_receipt()
    case = received(cloud, *lines, supplier=supplier, receipt=False)
    case.wait_milestone("awaiting_receipt")
    [early] = case.tasks()  # at receipt, not after the five days' wait
    assert early.queue == "ap_receiving" and early.allowed_decisions == ()
    assert early.reasons[0].startswith("likely cause at receipt: no_receipt at ")
    assert early.title == f"Invoice {case.case_id}: its goods receipt is likely missing"
    [risk] = [m for m in case.store.milestones(case.instance_id) if m.name == "exception_risk"]
    [predicted] = [a for a in _model_audit(case) if a.action == "model.predicted"]
    assert predicted.detail["label"] == "no_receipt" and predicted.detail["acts"] is True
    assert risk.detail.startswith(f"no_receipt at {predicted.detail['confidence']:.2f}")
    assert predicted.detail["features"]["receipt_posted"] is False
    # receiving posts the receipt and says so; the match goes on as before
    claim_and_complete(cloud, early, "ACKNOWLEDGED", actor="user:ap-clerk-mgarcia")
    sandbox().post_receipt(case.po_id, cloud.clock.now())  # type: ignore[attr-defined]
    advance_through_timer(cloud, timedelta(days=1), slack=timedelta(hours=1), case=case)
    concluded(case, "MATCHED")
    assert [a.action for a in _model_audit(case)] == ["model.predicted"]  # no review


def test_a_low_confidence_cause_leaves_the_work_as_before_and_the_override_is_audited(cloud):
    lines, supplier = _unconfident_exception()
    case = received(cloud, *lines, supplier=supplier)
    task = case.open_task()
    assert [t.task_id for t in case.tasks()] == [task.task_id]  # nothing asked early
    assert "exception_risk" not in case.milestone_names()
    assert task.allowed_decisions == ("ACCEPT_VARIANCE", "REQUEST_CREDIT_MEMO", "RETURN")
    assert task.suggestion is not None and task.suggestion["acts"] is False
    assert "decision" not in task.suggestion
    assert task.reasons[-1].endswith("below the policy's threshold: the rules decide")
    label = task.suggestion["label"]
    claim_and_complete(cloud, task, "RETURN", actor="user:ap-clerk-dokoro")
    concluded(case, "RETURNED")  # the person's decision is what the workflow does
    audited = _model_audit(case)
    [predicted] = [a for a in audited if a.action == "model.predicted"]
    [overridden] = [a for a in audited if a.action == "model.overridden"]
    assert predicted.detail["confidence"] < predicted.detail["threshold"]
    assert overridden.actor == "user:ap-clerk-dokoro"
    assert (overridden.detail["decided"], overridden.detail["suggested"]) == ("RETURN", label)
    assert overridden.detail["version"] == predicted.detail["version"]


def test_the_invoice_exception_model_switched_off_leaves_the_invoice_to_the_rules(cloud):
    """The ai-models policy's invoice_exception row off (a published version): the same
    invoice the model is confident about waits for its receipt with nobody asked early, and
    ``model.skipped`` is audited with that version."""
    lines, supplier = _confident_no_receipt()
    with ai_models(cloud, "invoice_exception", mode="off") as version:
        case = received(cloud, *lines, supplier=supplier, receipt=False)
        case.wait_milestone("awaiting_receipt")
        assert case.tasks() == []
        assert "exception_risk" not in case.milestone_names()
        audited = _model_audit(case)
        assert [a.action for a in audited] == ["model.skipped"]
        assert audited[0].policy_version == version
        sandbox().post_receipt(case.po_id, cloud.clock.now())  # type: ignore[attr-defined]
        advance_through_timer(cloud, timedelta(days=1), slack=timedelta(hours=1), case=case)
        concluded(case, "MATCHED")
