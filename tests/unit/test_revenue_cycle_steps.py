"""Every step of the post-procedure revenue cycle through the kit's entry point with the
in-memory fakes, and its KPIs from a hand-built audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from careflow.adapters.sandbox_revenue import CPT, ICD10, used_item
from careflow.canonical.datatypes import Coding
from careflow.canonical.payer import EligibilityResponse
from careflow.canonical.revenue import CaseBilling, ChargeLine
from careflow.domain.records import AuditEntry, Instance, InstanceStatus
from careflow.kit.runtime import invoke
from careflow.policies import FilePolicyStore
from careflow.workflows.revenue_cycle import kpis
from careflow.workflows.revenue_cycle import rules as r
from careflow.workflows.revenue_cycle.steps import PRIOR_AUTH_SUBJECT
from tests.fakes import FakeEhr, FakeErp, FakePayer, InMemoryStateStore

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
END = NOW - timedelta(days=2)
STEPS = "careflow.workflows.revenue_cycle.steps"
POLICIES = FilePolicyStore()
ELIGIBLE = EligibilityResponse(active=True, covered=True, auth_required=True)


def billing(**update) -> CaseBilling:
    used = (
        used_item("IMP-TKA-FEM-5", 1, lot="L1", serial="S1"),
        used_item("IMP-ACL-SCR-9", 2, lot="L9", serial="S9"),
        used_item("SUP-CEMENT-40", 2),
    )
    base = CaseBilling(
        case_id="case-1",
        encounter_id="V1",
        facility_id="fac-north",
        patient_ref="Patient/p1",
        coverage_ref="Coverage/c1",
        payer_id="payer-summit",
        procedure_end=END,
        procedure_codes=(Coding(system=CPT, code="27447"),),
        diagnosis_codes=(Coding(system=ICD10, code="M17.11"),),
        used=used,
        charges=tuple(
            ChargeLine(
                charge_id=f"c{n}",
                item_id=u.item_id,
                quantity=u.quantity,
                amount=u.unit_price * u.quantity,
                entered_at=END + timedelta(days=1),
            )
            for n, u in enumerate(used)
        ),
        op_note_signed=True,
        implant_log=True,
        coding_complete=True,
    )
    return base.model_copy(update=update)


def fakes(case: CaseBilling | None = None, eligibility=ELIGIBLE):
    ehr = FakeEhr()
    if case is not None:
        ehr.billing[case.case_id] = case
    erp = FakeErp()
    assert erp.procurement is not None  # the fake's procurement book (and its call log)
    return {
        "store": InMemoryStateStore(),
        "policies": POLICIES,
        "now": NOW,
        "ehr": ehr,
        "payer": FakePayer(eligibility=eligibility),
        "erp": erp,
    }


def run(name: str, event: dict, ports: dict) -> dict:
    return invoke(f"{STEPS}:{name}", event, ports=ports.__getitem__)


def register(ports: dict) -> dict:
    return run(
        "register_completed_case",
        {
            "instance_id": "rc-1",
            "correlation_id": "c-1",
            "facility_id": "fac-north",
            "case_id": "case-1",
            "encounter_id": "V1",
            "procedure_end": END.isoformat(),
        },
        ports,
    )


def approved_pa(store: InMemoryStateStore, case_id: str = "case-1", ref: str = "PA-case-1") -> None:
    """The prior authorization workflow's instance for the case, as the state store keeps it."""
    store.put_instance(
        Instance(
            instance_id="pa-1",
            workflow_id="prior-authorization",
            subject_type=PRIOR_AUTH_SUBJECT,
            subject_id=case_id,
            facility_id="fac-north",
            status=InstanceStatus.COMPLETED,
            outcome="APPROVED",
            started_at=NOW - timedelta(days=20),
            updated_at=NOW - timedelta(days=19),
            correlation_id="c",
            execution_name="pa-1",
        ),
        with_entries=[
            AuditEntry(
                instance_id="pa-1",
                at=NOW - timedelta(days=19),
                actor="system:prior-auth",
                action="outcome",
                reason="approved",
                policy_version="x",
                detail={"outcome": "APPROVED", "preauth_ref": ref},
            )
        ],
    )


def review(ports: dict, state: dict) -> dict:
    return run("review_case_billing", state, ports)


def test_register_pins_the_policy_and_records_the_instance():
    ports = fakes(billing())
    state = register(ports)
    assert state["policy"]["queues"]["missing_charges"] == "charge_capture"
    instance = ports["store"].get_instance("rc-1")
    assert (instance.subject_type, instance.subject_id) == ("surgical_case", "case-1")
    assert instance.subject_refs == {"encounter": "V1", "patient": "Patient/p1"}
    assert instance.service_line == "surgery"  # no readiness instance for the case


def test_register_takes_the_service_line_its_readiness_instance_recorded():
    ports = fakes(billing())
    ports["store"].put_instance(
        Instance(
            instance_id="scr-1",
            workflow_id="surgical-case-readiness",
            subject_type="case",
            subject_id="case-1",
            facility_id="fac-north",
            status=InstanceStatus.READY,
            started_at=NOW - timedelta(days=12),
            updated_at=NOW - timedelta(days=10),
            correlation_id="c",
            execution_name="scr-1",
            service_line="orthopedics",
        )
    )
    register(ports)
    assert ports["store"].get_instance("rc-1").service_line == "orthopedics"


@pytest.mark.parametrize(
    ("case", "message"),
    [(None, "does not know case case-1"), (billing(encounter_id="V9"), "another encounter")],
)
def test_register_refuses_an_unknown_case_or_another_encounters(case, message):
    with pytest.raises(ValueError, match=message):
        register(fakes(case))


def test_a_clean_case_is_ready_with_the_authorization_and_bill_only_pos_raised_once():
    ports = fakes(billing())
    approved_pa(ports["store"])
    state = register(ports)
    out = review(ports, state)
    assert out["result"] == "READY" and out["authorization"] == "PA-case-1"
    assert out["charge_lag_days"] == 1
    calls = [c for c in ports["erp"].procurement_calls if c[0] == "create_purchase_order"]
    assert len(calls) == 1
    request = calls[0][1]
    assert request.supplier_id == "sup-arthrex" and request.cost_center_id == "cc-fac-north-ortho"
    assert [(x.item_id, x.quantity) for x in request.lines] == [("IMP-ACL-SCR-9", 2)]
    assert (
        out["purchase_orders"] and review(ports, state)["purchase_orders"] == out["purchase_orders"]
    )
    assert len([c for c in ports["erp"].procurement_calls if c[0] == "create_purchase_order"]) == 1


def test_the_bill_only_po_is_received_at_use_once_with_the_usages_lot_and_serial():
    ports = fakes(billing())
    approved_pa(ports["store"])
    state = register(ports)
    [po_id] = review(ports, state)["purchase_orders"]
    erp, store = ports["erp"], ports["store"]
    [request] = erp.ap.receipt_requests
    assert request.reference == f"rc-1:bill-only-receipt:{po_id}"
    assert (request.po_id, request.facility_id) == (po_id, "fac-north")
    assert request.received_at_use and request.received_at == END
    assert [
        (x.po_line_number, x.item_id, x.quantity, x.lot_number, x.serial_number)
        for x in request.lines
    ] == [(1, "IMP-ACL-SCR-9", 2, "L9", "S9")]
    [received] = [m for m in store.milestones("rc-1") if m.name == "bill_only_received"]
    assert received.detail == f"GR-{po_id}-1"  # identifiers only
    review(ports, state)  # a later review (or a retry) posts nothing again
    assert len(erp.ap.receipt_requests) == 1
    assert [m.name for m in store.milestones("rc-1")].count("bill_only_received") == 1
    [audit] = [e for e in store.audit_trail("rc-1") if e.action == "bill_only_received"]
    assert audit.detail == {"purchase_orders": [po_id], "receipts": [f"GR-{po_id}-1"]}


def test_a_retry_after_the_po_posts_the_receipt_and_the_erp_answers_a_repeat_once():
    ports = fakes(billing())
    state = register(ports)
    erp, store = ports["erp"], ports["store"]
    failing = erp.post_goods_receipt

    def down(request):
        from careflow.ports import ConnectorUnavailable

        failing(request)  # posted, but the answer was lost
        raise ConnectorUnavailable("erp: the answer was lost")

    erp.post_goods_receipt = down
    with pytest.raises(Exception, match="answer was lost"):
        review(ports, state)
    assert [m.name for m in store.milestones("rc-1")].count("bill_only_po_raised") == 1
    assert "bill_only_received" not in [m.name for m in store.milestones("rc-1")]
    erp.post_goods_receipt = failing
    [po_id] = review(ports, state)["purchase_orders"]
    assert [r.reference for r in erp.ap.receipt_requests] == [f"rc-1:bill-only-receipt:{po_id}"] * 2
    assert len(erp.ap.receipts[po_id]) == 1  # the ERP posted it once
    [received] = [m for m in store.milestones("rc-1") if m.name == "bill_only_received"]
    assert received.detail == f"GR-{po_id}-1"


def test_a_missing_implant_charge_is_blocked_to_charge_capture():
    case = billing()
    ports = fakes(case.model_copy(update={"charges": case.charges[1:]}))
    approved_pa(ports["store"])
    out = review(ports, register(ports))
    assert (out["result"], out["cause"], out["queue"]) == (
        "BLOCKED",
        "missing_charges",
        "charge_capture",
    )
    assert out["missing_items"] == ["IMP-TKA-FEM-5"] and out["missing_amount"] == "2450.00"
    assert out["task"]["escalation_chain"][0] == "charge_capture"
    assert "RESOLVED" in out["task"]["allowed_decisions"]


def test_an_unsigned_note_is_waited_for_then_goes_to_the_surgeons_queue():
    ports = fakes(billing(op_note_signed=False, procedure_end=NOW - timedelta(hours=5)))
    approved_pa(ports["store"])
    state = register(ports)
    assert review(ports, state)["result"] == "WAITING"
    ports["now"] = NOW + timedelta(days=2)
    out = review(ports, state)
    assert (out["result"], out["queue"]) == ("BLOCKED", "surgeon_documentation")
    names = [m.name for m in ports["store"].milestones("rc-1")]
    assert "awaiting_documentation" in names and "dnfb_raised" in names


def test_no_authorization_goes_to_utilization_review_and_ineligible_to_patient_access():
    ports = fakes(billing())
    out = review(ports, register(ports))
    assert (out["cause"], out["queue"]) == ("no_authorization", "utilization_review")
    ports = fakes(billing(), eligibility=EligibilityResponse(active=False, covered=False))
    out = review(ports, register(ports))
    assert out["causes"] == ["not_eligible", "no_authorization"]
    assert out["queue"] == "patient_access"


def test_a_queue_decision_resolves_or_concludes_and_an_unknown_one_is_refused():
    ports = fakes(billing())
    blocked = review(ports, register(ports))
    answer = {"decision": "RESOLVED", "actor": "user:x"}
    out = run(
        "apply_dnfb_decision", {"instance_id": "rc-1", "review": blocked, "answer": answer}, ports
    )
    assert out == {
        "decision": "RESOLVED",
        "outcome": None,
        "actor": "user:x",
        "cause": "no_authorization",
    }
    answer = {"decision": "WRITE_OFF", "actor": "user:x"}
    out = run(
        "apply_dnfb_decision", {"instance_id": "rc-1", "review": blocked, "answer": answer}, ports
    )
    assert out["outcome"] == "WRITTEN_OFF"
    with pytest.raises(ValueError, match="not a decision"):
        run(
            "apply_dnfb_decision",
            {"instance_id": "rc-1", "review": blocked, "answer": {"decision": "PAY"}},
            ports,
        )


def test_submit_hands_a_fhir_claim_to_billing_and_finalize_records_the_outcome():
    ports = fakes(billing())
    approved_pa(ports["store"])
    state = register(ports)
    state["review"] = review(ports, state)
    claim = run("submit_case_claim", state, ports)
    assert claim["claim_id"] == "clm-case-1" and claim["total"] == "3454.00"
    sent = ports["ehr"].claims[0]
    assert sent["insurance"][0]["preAuthRef"] == ["PA-case-1"]
    out = run("finalize_case_billing", {**state, "claim": claim}, ports)
    assert out["outcome"] == "CLAIM_SUBMITTED"
    assert out["detail"]["data"]["claim_id"] == "clm-case-1"
    instance = ports["store"].get_instance("rc-1")
    assert (instance.status, instance.outcome) == (InstanceStatus.COMPLETED, "CLAIM_SUBMITTED")


@pytest.mark.parametrize(
    ("extra", "outcome"),
    [
        ({"escalation_exhausted": True}, "HELD"),
        (
            {
                "decision": {
                    "decision": "HOLD",
                    "outcome": "HELD",
                    "actor": "u",
                    "cause": "no_authorization",
                }
            },
            "HELD",
        ),
        (
            {
                "decision": {
                    "decision": "NOT_BILLABLE",
                    "outcome": "NOT_BILLABLE",
                    "actor": "u",
                    "cause": "x",
                }
            },
            "NOT_BILLABLE",
        ),
        ({"error": {"Error": "ValueError", "Cause": "no coverage"}}, "HELD"),
    ],
)
def test_finalize_without_a_claim(extra, outcome):
    ports = fakes(billing())
    state = register(ports)
    state["review"] = review(ports, state)
    out = run("finalize_case_billing", {**state, **extra}, ports)
    assert out["outcome"] == outcome


def test_kpis_from_the_audit_trail_hand_computed():
    store = InMemoryStateStore()
    instances = []
    # lags 0, 1, 4 days; one case missing 2 items worth 184.00; one held for no authorization
    for n, (lag, missing, outcome, cause) in enumerate(
        [
            (0, 0, "CLAIM_SUBMITTED", None),
            (1, 2, "CLAIM_SUBMITTED_AFTER_REVIEW", None),
            (4, 0, "HELD", "no_authorization"),
        ]
    ):
        iid = f"rc-{n}"
        inst = Instance(
            instance_id=iid,
            workflow_id="revenue-cycle",
            subject_type="surgical_case",
            subject_id=f"case-{n}",
            facility_id="fac-north",
            status=InstanceStatus.COMPLETED,
            outcome=outcome,
            started_at=NOW - timedelta(days=5),
            updated_at=NOW - timedelta(days=1),
            correlation_id="c",
            execution_name=iid,
        )
        store.put_instance(inst)
        store.record_audit(
            AuditEntry(
                instance_id=iid,
                at=NOW - timedelta(days=4),
                actor="s",
                action="revenue_reviewed",
                reason="",
                policy_version="v",
                detail={
                    "charge_lag_days": lag,
                    "missing_count": missing,
                    "missing_amount": "184.00" if missing else "0.00",
                },
            )
        )
        store.record_audit(
            AuditEntry(
                instance_id=iid,
                at=NOW - timedelta(days=1),
                actor="s",
                action="revenue_measured",
                reason="",
                policy_version="v",
                detail={
                    "outcome": outcome,
                    "dnfb_cause": cause,
                    "procedure_end": (NOW - timedelta(days=6)).isoformat(),
                },
            )
        )
        instances.append(inst)
    values = kpis.values(store, instances, NOW - timedelta(days=30), NOW)
    assert values["charge_lag_days"] == {
        "cases": 3,
        "p50_days": 1.0,
        "p90_days": 4.0,
        "mean_days": 1.7,
    }
    assert values["missing_charges"] == {
        "cases_reviewed": 3,
        "cases_with_missing": 1,
        "items": 2,
        "amount": "184.00",
    }
    assert values["dnfb_by_cause"] == {"no_authorization": {"cases": 1, "days": 6}}
    assert set(values) == {k.name for k in kpis.DEFINITIONS}
    assert r.money(Decimal("1")) == "1.00"


def test_an_open_dnfb_case_counts_under_its_cause_from_the_review():
    ports = fakes(billing())
    review(ports, register(ports))  # no authorization: blocked, still running
    store = ports["store"]
    instance = store.get_instance("rc-1")
    values = kpis.values(store, [instance], NOW - timedelta(days=1), NOW + timedelta(days=1))
    # the procedure ended two days before NOW; asked a day later: three days
    assert values["dnfb_by_cause"] == {"no_authorization": {"cases": 1, "days": 3}}
    assert values["charge_lag_days"]["cases"] == 1 and values["charge_lag_days"]["p50_days"] == 1.0
    assert values["missing_charges"]["cases_with_missing"] == 0
