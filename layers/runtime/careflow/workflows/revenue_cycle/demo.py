"""The post-procedure revenue cycle demo: six surgical cases completed at North Valley and
South Bay, each ``careflow.ehr`` / ``SurgicalCase.Completed`` at T0.

(p) case-7101: total knee, both components (lot and serial) and cement charged the day
after, note signed, coded, authorized → the FHIR Claim handed to billing at once;
(q) case-7102: total hip whose acetabular cup was used but never charged ($1,420.00) →
charge capture posts the charge and resolves it → claim after review;
(r) case-7103: lumbar fusion two days ago, the operative note still unsigned past the 48 h
wait → the surgeon's documentation queue; the surgeon signs → claim after review;
(s) case-7104: ACL reconstruction with two bill-only interference screws → a purchase
order to the supplier raised after use and its goods receipt of the usage posted (received
at use, the screws' lot and serial), then the claim;
(t) case-7105: knee arthroscopy with no prior authorization on file → utilization review
asks the payer for a retro-authorization and holds the case (DNFB: no authorization);
(u) case-7106: knee arthroscopy whose account is on a patient financial services hold →
PFS approves charity care and writes it off;
(v) INV-S-1008: the supplier's invoice for the PO of (s) (the receipt is the workflow's)
→ invoice exception handling three-way matches it: approved for payment.

The authorizations are the prior authorization workflow's own: the demo starts it for
each authorized case by the case's id (as surgical case readiness does when a case is
booked) before the cases complete, and the revenue cycle reads the approved instances'
numbers from the state store.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from careflow.kit.spec import Scenario

if TYPE_CHECKING:
    from careflow.canonical.revenue import CaseBilling
    from careflow.localcloud.demo import CaseReport, Demo

WORKFLOW = "revenue-cycle"
SOURCE = "careflow.ehr"
PRIOR_AUTHORIZATION = "prior-authorization"
TARGET_LAG_DAYS = 3  # the policy's charge_lag_target_days

MILESTONES = {
    "case_completed": "Case completed",
    "bill_only_po_raised": "Bill-only implant PO raised after use",
    "bill_only_received": "Bill-only implants received at use",
    "awaiting_documentation": "Waiting for the operative note",
    "awaiting_coding": "Waiting for coding",
    "dnfb_raised": "Not final billed: routed to its queue",
    "dnfb_decided": "DNFB queue decided",
    "ready_to_bill": "Ready to bill",
    "claim_submitted": "Claim handed to billing",
    "billing_concluded": "Billing concluded",
}
OUTCOMES = {
    "CLAIM_SUBMITTED": "Claim submitted",
    "CLAIM_SUBMITTED_AFTER_REVIEW": "Claim submitted after review",
    "HELD": "Held, not final billed",
    "WRITTEN_OFF": "Written off",
    "NOT_BILLABLE": "Not billable",
}

SCENARIOS = (
    Scenario("p", "case-7101", "clean knee: claim with authorization and implant lots"),
    Scenario("q", "case-7102", "hip cup used, not charged: charge capture, then claim"),
    Scenario("r", "case-7103", "op note unsigned after 48 h: surgeon signs, then claim"),
    Scenario("s", "case-7104", "bill-only ACL screws: PO raised, received at use, claim"),
    Scenario("t", "case-7105", "no authorization: utilization review holds it (DNFB)"),
    Scenario("u", "case-7106", "account on PFS hold: charity care, written off"),
)
# (v) the bill-only screws' supplier invoice, matched by invoice exception handling
INVOICE = Scenario("v", "INV-S-1008", "bill-only screws invoiced: matched to PO and receipt")
INVOICE_WORKFLOW = "invoice-exceptions"
INVOICE_MILESTONES = {
    "invoice_received": "Invoice received",
    "matched": "Three-way match within tolerance",
    "exception_raised": "Exception routed to AP",
    "invoice_concluded": "Invoice concluded",
}
INVOICE_OUTCOMES = {"MATCHED": "Approved for payment"}
WHAT = {
    "case-7101": "Total knee arthroplasty (27447), $5,084.00 of implants and supplies",
    "case-7102": "Total hip arthroplasty (27130), $3,438.50",
    "case-7103": "Lumbar interbody fusion (22630), $1,948.50",
    "case-7104": "ACL reconstruction (29888), $858.50, bill-only screws",
    "case-7105": "Knee arthroscopy, meniscectomy (29881), $38.50",
    "case-7106": "Knee arthroscopy, meniscectomy (29881), $38.50",
    "INV-S-1008": "Arthrex invoice AX-310552 for case-7104's bill-only PO, $820.00",
}


def _seeds(t0: datetime) -> list[tuple[Any, str, datetime, bool]]:
    """(seed, visit number, procedure end, authorization requested) per scenario."""
    from careflow.adapters.sandbox_revenue import CPT, ICD10, RevenueSeed, used_item
    from careflow.canonical.datatypes import Coding

    def cpt(code: str) -> Coding:
        return Coding(system=CPT, code=code)

    def icd(code: str) -> Coding:
        return Coding(system=ICD10, code=code)

    drape = used_item("SUP-DRAPE-ORTHO", 1)
    return [
        (
            RevenueSeed(
                "case-7101",
                "fac-north",
                cpt("27447"),
                icd("M17.11"),
                (
                    used_item("IMP-TKA-FEM-5", 1, lot="LOT-F5-24117", serial="SN-5512080"),
                    used_item("IMP-TKA-TIB-4", 1, lot="LOT-T4-24090", serial="SN-5512311"),
                    used_item("SUP-CEMENT-40", 2),
                ),
                charge_lag=timedelta(hours=20),
            ),
            "V-7101",
            t0 - timedelta(hours=26),
            True,
        ),
        (
            RevenueSeed(
                "case-7102",
                "fac-south",
                cpt("27130"),
                icd("M16.11"),
                (
                    used_item("IMP-THA-STEM-12", 1, lot="LOT-HS12-3318", serial="SN-7720114"),
                    used_item("IMP-THA-CUP-52", 1, lot="LOT-C52-3021", serial="SN-7720571"),
                    drape,
                ),
                uncharged=("IMP-THA-CUP-52",),
                charge_lag=timedelta(days=2),
            ),
            "V-7102",
            t0 - timedelta(days=3),
            True,
        ),
        (
            RevenueSeed(
                "case-7103",
                "fac-north",
                cpt("22630"),
                icd("M43.16"),
                (
                    used_item("IMP-SPN-SCR-6545", 4, lot="LOT-PS65-118", serial="SN-PS-40917"),
                    used_item("IMP-SPN-ROD-120", 1, lot="LOT-R120-77", serial="SN-R-11802"),
                    drape,
                ),
                op_note_signed=False,
                charge_lag=timedelta(days=1),
            ),
            "V-7103",
            t0 - timedelta(hours=50),
            True,
        ),
        (
            RevenueSeed(
                "case-7104",
                "fac-south",
                cpt("29888"),
                icd("S83.511A"),
                (used_item("IMP-ACL-SCR-9", 2, lot="LOT-AS9-0466", serial="SN-AS-90211"), drape),
                charge_lag=timedelta(hours=2),
            ),
            "V-7104",
            t0 - timedelta(hours=5),
            True,
        ),
        (
            RevenueSeed(
                "case-7105",
                "fac-north",
                cpt("29881"),
                icd("M23.221"),
                (drape,),
                charge_lag=timedelta(days=3),
            ),
            "V-7105",
            t0 - timedelta(days=4),
            False,
        ),
        (
            RevenueSeed(
                "case-7106",
                "fac-south",
                cpt("29881"),
                icd("M23.222"),
                (drape,),
                holds=("pfs-review",),
                charge_lag=timedelta(days=1),
            ),
            "V-7106",
            t0 - timedelta(days=2),
            True,
        ),
    ]


def _publish(demo: Demo, case: CaseBilling) -> None:
    """The case in the EHR the handlers read: the FHIR server when running (its
    resources put again after a change), and the in-process sandbox always."""
    server = getattr(demo.cloud, "ehr_server", None)
    if server is not None:
        from careflow.localcloud.sandboxes.ehr_revenue_seed import revenue_resources

        for resource in revenue_resources(case):
            kind, rid = resource["resourceType"], resource["id"]
            if kind in ("Patient", "Coverage") and server.store.get(kind, rid) is not None:
                continue  # the EHR's own record of the person and the coverage stays
            server.store.put(resource)


ROOMS = {"fac-north": "Location/or-north-3", "fac-south": "Location/or-south-1"}


def _authorize(demo: Demo, case: CaseBilling) -> str:
    """The case's prior authorization, as surgical case readiness requests it when the
    case is booked: the case (its appointment, order and coverage) in the EHR, and the
    prior authorization workflow started with the case's id only (it reads the patient
    and coverage from the EHR; the payer approves). Returns its execution's ARN."""
    import json

    from careflow.adapters.sandbox import CaseSeed, PayerRule
    from careflow.canonical.payer import AuthDecision

    demo.cloud.add_case(
        CaseSeed(
            case.case_id,
            case.facility_id,
            case.procedure_codes[0],
            "orthopedics",
            case.procedure_end - demo.cloud.clock.now() - timedelta(hours=2),
            PayerRule(AuthDecision.APPROVED),
            (),
            (),
            case.surgeon_ref or "Practitioner/dr-okafor",
            ROOMS[case.facility_id],
        )
    )
    instance_id = f"pa-{case.case_id}"
    request = {
        "request_id": case.case_id,
        "case_id": case.case_id,
        "service_line": "surgery",
        "payer_id": case.payer_id,
        "procedure_codes": [{"system": c.system, "code": c.code} for c in case.procedure_codes],
        "service_date": case.procedure_end.isoformat(),
        "priority": "routine",
    }
    sfn = demo.cloud.client("stepfunctions")
    return str(
        sfn.start_execution(
            stateMachineArn=demo.cloud.state_machine_arns[PRIOR_AUTHORIZATION],
            name=instance_id,
            input=json.dumps(
                {
                    "workflow_id": PRIOR_AUTHORIZATION,
                    "instance_id": instance_id,
                    "correlation_id": instance_id,
                    "facility_id": case.facility_id,
                    "request": request,
                }
            ),
        )["executionArn"]
    )


def _erp(demo: Demo) -> Any:
    """The ERP the handlers read: the HTTP sandbox server when running, else in-process."""
    from careflow.adapters.sandbox import sandbox

    server = getattr(demo.cloud, "erp_server", None)
    return server if server is not None else sandbox()


def _supplier_invoice(demo: Demo, case: CaseBilling) -> None:
    """The supplier invoices the bill-only PO the workflow raised (and received at use,
    with the screws' lots and serials: milestone ``bill_only_received``): only the invoice
    arrives in the ERP, whose ``Invoice.Received`` starts invoice exception handling, which
    three-way matches it against the PO and the workflow's receipt."""
    milestones = demo.store.milestones(demo.instance_id(case.case_id))
    raised = next(m for m in milestones if m.name == "bill_only_po_raised")
    received = next(m for m in milestones if m.name == "bill_only_received")
    po_id = raised.detail.split(", ")[0]
    supplier = next(u.supplier_id for u in case.used if u.bill_only) or ""
    _erp(demo).add_invoice(INVOICE.subject_id, po_id, "AX-310552", now=demo.cloud.clock.now())
    key = f"invoice:{INVOICE.subject_id}"
    demo.cloud.put_event(
        "careflow.erp",
        "Invoice.Received",
        facility_id=case.facility_id,
        idempotency_key=key,
        data={
            "invoice_id": INVOICE.subject_id,
            "vendor_id": supplier,
            "invoice_number": "AX-310552",
            "po_id": po_id,
        },
    )
    demo.started(INVOICE_WORKFLOW, INVOICE.subject_id, key)
    demo.say(f"  (v) {po_id} received at use ({received.detail}); the supplier's invoice arrived")


def _invoice_report(demo: Demo, case: CaseBilling) -> CaseReport:
    from careflow.localcloud.demo import Wording

    wording = Wording(
        INVOICE_MILESTONES,
        INVOICE_OUTCOMES,
        start="invoice received",
        after_start=frozenset(INVOICE_MILESTONES),
    )
    return demo.report(
        INVOICE,
        what=WHAT[INVOICE.subject_id],
        facility_id=case.facility_id,
        scheduled_start=demo.t0,
        wording=wording,
    )


def run(demo: Demo) -> list[CaseReport]:
    from careflow.adapters.sandbox import sandbox
    from careflow.localcloud.demo import local_time

    sb, cloud = sandbox(), demo.cloud
    cases = {}
    authorizations = []
    for seed, visit, end, authorized in _seeds(demo.t0):
        case = sb.add_completed_case(seed, encounter_id=visit, procedure_end=end)
        if authorized:
            authorizations.append(_authorize(demo, case))
        _publish(demo, case)
        cases[case.case_id] = case
    demo.say(f"Prior authorization for {len(authorizations)} of the cases, requested when booked")
    for arn in authorizations:
        cloud.wait_for_execution(arn, 60)  # waits for it to start, then to end
    demo.say(f"Completing {len(SCENARIOS)} surgical cases at T0 = {local_time(demo.t0, 'UTC')}")
    for sc in SCENARIOS:
        case = cases[sc.subject_id]
        key = f"case:{sc.subject_id}:completed"
        cloud.put_event(
            SOURCE,
            "SurgicalCase.Completed",
            facility_id=case.facility_id,
            idempotency_key=key,
            data={
                "case_id": case.case_id,
                "encounter_id": case.encounter_id,
                "procedure_end": case.procedure_end.isoformat(),
            },
        )
        demo.started(WORKFLOW, sc.subject_id, key)
    demo.milestone("case-7101", "claim_submitted")
    demo.say("  (p) charges match the implant log, note signed, coded, authorized: claim sent")
    demo.milestone("case-7104", "bill_only_received")
    demo.say("  (s) two bill-only ACL screws used: PO raised to the supplier, received at use")
    # every case is under way (its task open) before anyone decides: see _supplier_invoice
    for blocked in ("case-7102", "case-7103", "case-7105", "case-7106"):
        demo.open_task(blocked)

    task = demo.open_task("case-7102")
    demo.say(f"  (q) task {task.task_id} in {task.queue.replace('_', ' ')}: {task.title}")
    demo.claim(task, "user:chg-capture-rpatel")
    _publish(demo, sb.post_missing_charges("case-7102", cloud.clock.now()))
    demo.decide(task, "user:chg-capture-rpatel", "RESOLVED", "cup charge posted from the log")

    task = demo.open_task("case-7103")
    demo.say(f"  (r) task {task.task_id} in {task.queue.replace('_', ' ')}: {task.title}")
    demo.claim(task, "user:surgeon-lindqvist")
    _publish(demo, sb.sign_op_note("case-7103"))
    demo.decide(task, "user:surgeon-lindqvist", "RESOLVED", "operative note signed")

    task = demo.open_task("case-7105")
    demo.say(f"  (t) task {task.task_id} in {task.queue.replace('_', ' ')}: {task.title}")
    demo.claim(task, "user:urn-pkaur")
    demo.decide(task, "user:urn-pkaur", "HOLD", "retro-authorization requested from the payer")

    task = demo.open_task("case-7106")
    demo.say(f"  (u) task {task.task_id} in {task.queue.replace('_', ' ')}: {task.title}")
    demo.claim(task, "user:pfs-lmoreno")
    demo.decide(task, "user:pfs-lmoreno", "WRITE_OFF", "charity care approved")
    # the supplier's invoice once every task is decided: the local cloud's SendTaskSuccess
    # fails (InternalFailure, AttributeError) when any other execution is just starting
    # (moto looks for the token in every RUNNING execution's environment, even one its
    # worker has not built yet)
    _supplier_invoice(demo, cases["case-7104"])
    for sc in (*SCENARIOS, INVOICE):
        cloud.wait_for_execution(demo.arn(sc.subject_id), 30)
    demo.say("  (v) the supplier's invoice for the screws matched the PO and the receipt at use")
    return [*_reports(demo, cases), _invoice_report(demo, cases["case-7104"])]


def _reports(demo: Demo, cases: dict[str, CaseBilling]) -> list[CaseReport]:
    from careflow.localcloud.demo import TASK_MILESTONES, Wording

    wording = Wording(
        MILESTONES,
        OUTCOMES,
        start="procedure end",
        after_start=frozenset(MILESTONES) | frozenset(TASK_MILESTONES),
    )
    reports = []
    for sc in SCENARIOS:
        case = cases[sc.subject_id]
        report = demo.report(
            sc,
            what=WHAT[sc.subject_id],
            facility_id=case.facility_id,
            scheduled_start=case.procedure_end,
            wording=wording,
        )
        for entry in demo.store.audit_trail(demo.instance_id(sc.subject_id)):
            d = entry.detail
            if entry.action != "revenue_reviewed" or not d.get("first"):
                continue
            lag = d.get("charge_lag_days")
            if lag is not None and lag > TARGET_LAG_DAYS:
                report.notes.append(f"charges posted {lag} days after the procedure")
            if d.get("missing_count"):
                report.notes.append(
                    f"missing charges: {', '.join(d['missing_items'])}, {d['missing_amount']} USD"
                )
        reports.append(report)
    return reports
