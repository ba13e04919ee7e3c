"""The post-procedure revenue cycle: the real ASL on the local cloud with the real handlers.

Every case completes as ``careflow.ehr`` / ``SurgicalCase.Completed`` through EventBridge
(intake's rules); the EHR, payer and ERP are the in-process sandbox's
(``adapters/sandbox_revenue.py`` for the case's usage, charges and record). The prior
authorization a case needs is the prior authorization workflow's instance for the case,
as the state store keeps it. Each test reaches an outcome: CLAIM_SUBMITTED (at once, and
after waiting for the operative note), CLAIM_SUBMITTED_AFTER_REVIEW, HELD (a queue's
decision, and an escalation chain that gave none), WRITTEN_OFF and NOT_BILLABLE.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

from careflow import wiring
from careflow.adapters.sandbox import sandbox
from careflow.adapters.sandbox_revenue import CPT, ICD10, RevenueSeed, used_item
from careflow.canonical.datatypes import Coding
from careflow.domain.intake import instance_id_for
from careflow.domain.records import AuditEntry, Instance, InstanceStatus
from tests.workflows.harness import Case, advance_through_timer, claim_and_complete

WORKFLOW = "revenue-cycle"
INVOICES = "invoice-exceptions"
SOURCE = "careflow.ehr"
_numbers = itertools.count(81001)
KNEE = (
    used_item("IMP-TKA-FEM-5", 1, lot="LOT-F5-2291", serial="SN-88101"),
    used_item("IMP-TKA-TIB-4", 1, lot="LOT-T4-1180", serial="SN-88102"),
    used_item("SUP-CEMENT-40", 2),
)
ACL = (
    used_item("IMP-ACL-SCR-9", 2, lot="LOT-AS9-77", serial="SN-4410"),
    used_item("SUP-DRAPE-ORTHO", 1),
)


def approved_authorization(cloud, case_id: str) -> str:
    """The prior authorization workflow's approved instance for the case, as stored."""
    now, ref, iid = cloud.clock.now(), f"PA-{case_id}", f"pa-test-{case_id}"
    wiring.store().put_instance(
        Instance(
            instance_id=iid,
            workflow_id="prior-authorization",
            subject_type="prior-auth",
            subject_id=case_id,
            facility_id="fac-north",
            status=InstanceStatus.COMPLETED,
            outcome="APPROVED",
            started_at=now - timedelta(days=20),
            updated_at=now - timedelta(days=19),
            correlation_id=iid,
            execution_name=iid,
        ),
        with_entries=[
            AuditEntry(
                instance_id=iid,
                at=now - timedelta(days=19),
                actor="system:prior-auth",
                action="outcome",
                reason="approved",
                policy_version="test",
                detail={"outcome": "APPROVED", "preauth_ref": ref},
            )
        ],
    )
    return ref


def completed(
    cloud,
    used=KNEE,
    *,
    facility: str = "fac-north",
    authorized: bool = True,
    ended_ago: timedelta = timedelta(hours=3),
    **seed,
) -> Case:
    n = next(_numbers)
    case_id, encounter = f"case-{n}", f"V{n}"
    end = cloud.clock.now() - ended_ago
    sandbox().add_completed_case(
        RevenueSeed(
            case_id,
            facility,
            Coding(system=CPT, code="27447"),
            Coding(system=ICD10, code="M17.11"),
            tuple(used),
            charge_lag=timedelta(hours=1),
            **seed,
        ),
        encounter_id=encounter,
        procedure_end=end,
    )
    if authorized:
        approved_authorization(cloud, case_id)
    key = f"case:{case_id}:completed"
    cloud.put_event(
        SOURCE,
        "SurgicalCase.Completed",
        facility_id=facility,
        idempotency_key=key,
        data={"case_id": case_id, "encounter_id": encounter, "procedure_end": end.isoformat()},
    )
    return Case(cloud, case_id, instance_id_for(WORKFLOW, key), WORKFLOW).started()


def concluded(case: Case, outcome: str) -> None:
    result = case.finish()
    assert result["status"] == "SUCCEEDED", result
    instance = case.instance()
    assert (instance.status, instance.outcome) == (InstanceStatus.COMPLETED, outcome), (
        instance.outcome_reasons
    )


def test_a_clean_case_is_billed_with_its_authorization_and_its_implants(cloud):
    case = completed(cloud)
    concluded(case, "CLAIM_SUBMITTED")
    claim = sandbox().claims_received()[f"clm-{case.case_id}"]
    assert claim["insurance"][0]["preAuthRef"] == [f"PA-{case.case_id}"]
    lots = {d["lotNumber"] for d in claim["contained"]}
    assert lots == {"LOT-F5-2291", "LOT-T4-1180"}
    assert not case.tasks()
    assert {"case_completed", "ready_to_bill", "claim_submitted", "billing_concluded"} <= set(
        case.milestone_names()
    )


def test_a_bill_only_implant_gets_its_purchase_order_and_receipt_at_use(cloud):
    case = completed(cloud, ACL, facility="fac-south")
    concluded(case, "CLAIM_SUBMITTED")
    raised = next(m for m in case.milestones() if m.name == "bill_only_po_raised")
    po = sandbox().purchase_order_status(raised.detail)
    assert (po.supplier_id, po.facility_id, str(po.total)) == ("sup-arthrex", "fac-south", "820.00")
    assert po.status == "RECEIVED"
    # the ERP holds the receipt of the usage, received at use with the screws' lot and serial
    [receipt] = sandbox().receipts(po.po_id)
    assert receipt.received_at_use and receipt.reference == (
        f"{case.instance_id}:bill-only-receipt:{po.po_id}"
    )
    assert [(x.item_id, x.quantity, x.lot_number, x.serial_number) for x in receipt.lines] == [
        ("IMP-ACL-SCR-9", 2, "LOT-AS9-77", "SN-4410")
    ]
    received = next(m for m in case.milestones() if m.name == "bill_only_received")
    assert received.detail == receipt.receipt_id
    # the supplier's invoice for that PO three-way matches it: approved for payment
    invoice_id, number = f"INV-{case.case_id}", f"AX-{case.case_id}"
    sandbox().add_invoice(invoice_id, po.po_id, number, now=case.cloud.clock.now())
    key = f"invoice:{invoice_id}"
    case.cloud.put_event(
        "careflow.erp",
        "Invoice.Received",
        facility_id="fac-south",
        idempotency_key=key,
        data={
            "invoice_id": invoice_id,
            "vendor_id": "sup-arthrex",
            "invoice_number": number,
            "po_id": po.po_id,
        },
    )
    invoice = Case(case.cloud, invoice_id, instance_id_for(INVOICES, key), INVOICES).started()
    result = invoice.drive(step=timedelta(hours=6))
    assert result["status"] == "SUCCEEDED", result
    assert invoice.instance().outcome == "MATCHED", invoice.instance().outcome_reasons
    assert sandbox().invoice(invoice_id).status == "APPROVED"  # type: ignore[union-attr]


def test_a_missing_implant_charge_goes_to_charge_capture_then_is_billed(cloud):
    case = completed(cloud, uncharged=("IMP-TKA-TIB-4",))
    task = case.open_task()
    assert task.queue == "charge_capture"
    assert task.escalation_chain[0] == "charge_capture"
    sandbox().post_missing_charges(case.case_id, cloud.clock.now())
    claim_and_complete(cloud, task, "RESOLVED", actor="user:chg-capture-rpatel")
    concluded(case, "CLAIM_SUBMITTED_AFTER_REVIEW")
    assert case.milestone_names().count("dnfb_raised") == 1


def test_an_unsigned_note_is_waited_for_and_billed_once_signed(cloud):
    case = completed(cloud, op_note_signed=False)
    case.wait_milestone("awaiting_documentation")
    sandbox().sign_op_note(case.case_id)
    advance_through_timer(cloud, timedelta(hours=6), case=case)
    concluded(case, "CLAIM_SUBMITTED")
    assert "AwaitRecord" in case.entered_states() and not case.tasks()


def test_no_authorization_is_held_by_utilization_review(cloud):
    case = completed(cloud, authorized=False)
    task = case.open_task()
    assert task.queue == "utilization_review"
    claim_and_complete(cloud, task, "HOLD", actor="user:urn-pkaur")
    concluded(case, "HELD")
    assert "no authorization number for the claim" in case.instance().outcome_reasons


def test_an_account_hold_is_written_off_by_patient_financial_services(cloud):
    case = completed(cloud, holds=("pfs-review",))
    task = case.open_task()
    assert task.queue == "patient_financial_services"
    claim_and_complete(cloud, task, "WRITE_OFF", actor="user:pfs-lmoreno")
    concluded(case, "WRITTEN_OFF")


def test_coding_past_its_wait_goes_to_coding_who_find_it_not_billable(cloud):
    case = completed(cloud, coding_complete=False, ended_ago=timedelta(hours=80))
    task = case.open_task()
    assert task.queue == "coding"
    claim_and_complete(cloud, task, "NOT_BILLABLE", actor="user:coder-aberg")
    concluded(case, "NOT_BILLABLE")


def test_an_unworked_case_escalates_along_the_chain_and_stays_held(cloud):
    case = completed(cloud, authorized=False)
    task = case.open_task()
    for level in (1, 2):
        advance_through_timer(
            cloud, task.due_at - cloud.clock.now(), slack=timedelta(hours=1), case=case
        )
        task = case.open_task(level=level)
    assert task.queue == "revenue_cycle_director"
    advance_through_timer(
        cloud, task.due_at - cloud.clock.now(), slack=timedelta(hours=1), case=case
    )
    concluded(case, "HELD")
    assert "no decision from the chain before its last SLA" in case.instance().outcome_reasons


def test_a_malformed_completion_is_parked_with_a_clear_reason(cloud):
    def parked(data: dict) -> str:
        event_id = cloud.put_event(
            SOURCE, "SurgicalCase.Completed", data=data, facility_id="fac-north"
        )
        found = cloud.wait_for(lambda: wiring.store().get_parked(event_id), 20, "parked")
        assert found.kind == "parked"
        return str(found.reason)

    assert "procedure_end" in parked({"case_id": "case-x", "encounter_id": "V1"})
    naive = {"case_id": "case-x", "encounter_id": "V1", "procedure_end": "2026-11-30T10:00:00"}
    assert parked(naive).startswith("detail.data.procedure_end is not valid")
    reason = parked({**naive, "procedure_end": "2026-11-30T10:00:00Z", "patient_name": "x"})
    assert "patient_name" in reason and "x" not in reason.split("patient_name")[-1][:3]


def test_a_case_the_ehr_does_not_know_fails_registration(cloud):
    key = "case:case-unknown:completed"
    cloud.put_event(
        SOURCE,
        "SurgicalCase.Completed",
        facility_id="fac-north",
        idempotency_key=key,
        data={
            "case_id": "case-unknown",
            "encounter_id": "V0",
            "procedure_end": cloud.clock.now().isoformat(),
        },
    )
    case = Case(cloud, "case-unknown", instance_id_for(WORKFLOW, key), WORKFLOW).started()
    result = case.finish()
    assert result["status"] == "FAILED" and result.get("error") == "CaseNotRegistered", result
