"""The invoice exception handling demo: seven supplier invoices received at T0 (the ERP's
``Invoice.Received``), at North Valley and South Bay.

(i) INV-N-1001: two knee femoral components at the contract price and ten bone cements,
received as ordered → approved for payment at once (MATCHED, first pass);
(j) INV-S-1002: 30 drape packs invoiced at $41.25 instead of $38.50: $82.50 over, above
the $50 allowance → AP pricing; the clerk requests a credit memo;
(k) INV-S-1003: three hip stems invoiced a week ago, two received (implants must match
exactly) → AP receiving; still undecided when it enters the 8-30 day aging bucket (that
midnight), so the AP supervisor gets it and returns the invoice to the supplier;
(l) INV-N-1004: four acetabular cups at the PO's $1,450.00, contract $1,420.00: $120.00
over, above 2 % ($113.60) → AP pricing; the clerk accepts the variance, which approves the
invoice for payment with the clerk as approver;
(m) INV-N-1005: bone cement never received, the invoice with AP for four days: the match
waits for the goods receipt until five days, then NO_RECEIPT (held in the ERP);
(n) INV-S-1006: a tibial baseplate whose receipt is posted the day after: matched on the
next day's match;
(o) INV-N-1007: INV-N-1001 sent again (same supplier, number and total) → DUPLICATE,
rejected in the ERP.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from careflow.kit.spec import Scenario

if TYPE_CHECKING:
    from careflow.localcloud.demo import CaseReport, Demo

WORKFLOW = "invoice-exceptions"
SOURCE = "careflow.erp"

MILESTONES = {
    "invoice_received": "Invoice received",
    "matched": "Three-way match within tolerance",
    "awaiting_receipt": "Waiting for the goods receipt",
    "no_receipt": "No goods receipt by the limit",
    "duplicate_found": "Duplicate of an earlier invoice",
    "exception_raised": "Exception routed to AP",
    "exception_decided": "AP decided",
    "invoice_concluded": "Invoice concluded",
}
OUTCOMES = {
    "MATCHED": "Approved for payment",
    "RESOLVED_ACCEPTED": "Variance accepted, approved for payment",
    "CREDIT_MEMO_REQUESTED": "Credit memo requested",
    "RETURNED": "Returned to the supplier",
    "DUPLICATE": "Duplicate, rejected",
    "NO_RECEIPT": "No receipt, held",
    "UNRESOLVED": "Unresolved",
}

SCENARIOS = (
    Scenario("i", "INV-N-1001", "matches PO, receipt and contract price: approved"),
    Scenario("j", "INV-S-1002", "drapes $82.50 over: AP pricing requests a credit memo"),
    Scenario("k", "INV-S-1003", "3 hip stems invoiced, 2 received: escalated, returned"),
    Scenario("l", "INV-N-1004", "cups over the contract price: AP accepts the variance"),
    Scenario("m", "INV-N-1005", "no goods receipt within 5 days: held"),
    Scenario("n", "INV-S-1006", "receipt posted the next day: matched after waiting"),
    Scenario("o", "INV-N-1007", "INV-N-1001 sent again: duplicate"),
)
WHAT = {
    "INV-N-1001": "Orthoco invoice ORTHO-58812 (PO-N-2001), $5,820.00",
    "INV-S-1002": "Medline invoice ML-440917 (PO-S-2002), $1,237.50",
    "INV-S-1003": "Jointworks invoice JW-20931 (PO-S-2003), $5,940.00",
    "INV-N-1004": "Jointworks invoice JW-20977 (PO-N-2004), $5,800.00",
    "INV-N-1005": "Orthoco invoice ORTHO-58840 (PO-N-2005), $1,840.00",
    "INV-S-1006": "Orthoco invoice ORTHO-58851 (PO-S-2006), $2,450.00",
    "INV-N-1007": "Orthoco invoice ORTHO-58812 again, $5,820.00",
}


def _erp(demo: Demo) -> Any:
    """The ERP the handlers read: the HTTP sandbox server when running, else in-process."""
    from careflow.adapters.sandbox import sandbox

    server = getattr(demo.cloud, "erp_server", None)
    return server if server is not None else sandbox()


# who works an escalated exception, by the queue it reached
_ESCALATED_TO = {
    "ap_supervisor": "user:ap-sup-tbrooks",
    "ap_manager": "user:ap-mgr-lchen",
    "controller": "user:controller-nhall",
}


def _until(demo: Demo, done: Any, what: str, step: timedelta = timedelta(hours=6)) -> None:
    """Moves the clock in steps until ``done()`` (a poll's or an SLA's timer fires)."""
    deadline = time.monotonic() + 60
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        demo.cloud.clock.advance(step)
        time.sleep(0.05)


def _ended(demo: Demo, subject_id: str) -> bool:
    return str(demo.cloud.describe(demo.arn(subject_id))["status"]) != "RUNNING"


def _concluded(demo: Demo, subject_id: str) -> None:
    """Waits, without moving the clock, for an invoice that waits on no timer."""
    demo.cloud.wait_for(lambda: _ended(demo, subject_id), 30, f"{subject_id} concluded")


def run(demo: Demo) -> list[CaseReport]:
    from careflow.adapters.sandbox_payables import DUPLICATES, SEED
    from careflow.localcloud.demo import local_time

    erp, cloud = _erp(demo), demo.cloud
    facility = {case.invoice_id: case.facility_id for case in SEED}
    for case in SEED:
        erp.add_invoice_case(case, now=demo.t0)
    for dup_id, original_id in DUPLICATES.items():
        erp.add_duplicate_invoice(dup_id, original_id, now=demo.t0)
        facility[dup_id] = facility[original_id]
    by_id = {case.invoice_id: case for case in SEED}
    demo.say(f"Receiving {len(SCENARIOS)} supplier invoices at T0 = {local_time(demo.t0, 'UTC')}")
    for sc in SCENARIOS:
        seed = by_id.get(sc.subject_id) or by_id[DUPLICATES[sc.subject_id]]
        key = f"invoice:{sc.subject_id}"
        cloud.put_event(
            SOURCE,
            "Invoice.Received",
            facility_id=facility[sc.subject_id],
            idempotency_key=key,
            data={
                "invoice_id": sc.subject_id,
                "vendor_id": seed.supplier_id,
                "invoice_number": seed.invoice_number,
                "po_id": seed.po_id,
            },
        )
        demo.started(WORKFLOW, sc.subject_id, key)
    demo.milestone("INV-N-1001", "matched")
    demo.say("  (i) three-way match within tolerance: approved for payment")
    demo.milestone("INV-N-1007", "duplicate_found")
    demo.say("  (o) same supplier, number and total as INV-N-1001: duplicate")

    task = demo.open_task("INV-S-1002")
    demo.say(f"  (j) task {task.task_id} in {task.queue.replace('_', ' ')}: {task.title}")
    demo.claim(task, "user:ap-clerk-mgarcia")
    demo.decide(task, "user:ap-clerk-mgarcia", "REQUEST_CREDIT_MEMO", "price list not updated")
    task = demo.open_task("INV-N-1004")
    demo.say(f"  (l) task {task.task_id} in {task.queue.replace('_', ' ')}: {task.title}")
    demo.claim(task, "user:ap-clerk-dokoro")
    demo.decide(task, "user:ap-clerk-dokoro", "ACCEPT_VARIANCE", "contract renewal pending")
    task = demo.open_task("INV-S-1003")
    demo.say(f"  (k) task {task.task_id} in {task.queue.replace('_', ' ')}: {task.title}")
    for decided in ("INV-S-1002", "INV-N-1004", "INV-N-1001", "INV-N-1007"):
        _concluded(demo, decided)

    demo.milestone("INV-S-1006", "awaiting_receipt")
    demo.milestone("INV-N-1005", "awaiting_receipt")
    demo.advance(timedelta(days=1), timer=timedelta(days=1))
    erp.post_receipt("PO-S-2006", cloud.clock.now())
    demo.say("  (n) receiving posted the tibial baseplate's goods receipt")
    _until(demo, lambda: _ended(demo, "INV-S-1006"), "(n) matched after its receipt")
    _until(demo, lambda: _ended(demo, "INV-N-1005"), "(m) no receipt by the limit")
    demo.say("  (m) no goods receipt five days after the invoice: held")

    def escalated() -> bool:
        tasks = demo.store.tasks_for_instance(demo.instance_id("INV-S-1003"))
        return any(t.awaits_decision and t.escalation_level >= 1 for t in tasks)

    _until(demo, escalated, "(k) escalated to the AP supervisor", step=timedelta(hours=1))
    task = demo.open_task("INV-S-1003", level=1)
    demo.say(
        f"  (k) undecided as it turned 8 days old: escalated to {task.queue.replace('_', ' ')}"
    )
    # the days the other invoices waited may have aged it past more than one level (the
    # bucket boundaries fall at local midnight): whoever holds its queue now decides
    who = _ESCALATED_TO.get(task.queue, "user:ap-sup-tbrooks")
    demo.claim(task, who)
    demo.decide(task, who, "RETURN", "bill only what was received")
    for sc in SCENARIOS:
        _concluded(demo, sc.subject_id)

    return _reports(demo, facility)


def _reports(demo: Demo, facility: dict[str, str]) -> list[CaseReport]:
    from careflow.localcloud.demo import TASK_MILESTONES, Wording

    wording = Wording(
        MILESTONES,
        OUTCOMES,
        start="invoice received",
        after_start=frozenset(MILESTONES) | frozenset(TASK_MILESTONES),
    )
    reports = []
    for sc in SCENARIOS:
        report = demo.report(
            sc,
            what=WHAT[sc.subject_id],
            facility_id=facility[sc.subject_id],
            scheduled_start=demo.t0,
            wording=wording,
        )
        for entry in demo.store.audit_trail(demo.instance_id(sc.subject_id)):
            if entry.action == "invoice_exception_raised":
                d = entry.detail
                report.notes.append(
                    f"exception: {', '.join(d['causes'])}, {d['variance']} USD, "
                    f"queue {str(d['queue']).replace('_', ' ')}, aged {d['bucket']} days"
                )
        reports.append(report)
    return reports
