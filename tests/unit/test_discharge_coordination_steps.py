"""Every step of discharge coordination through the kit's entry point with in-memory fakes,
and its rules (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from careflow.domain.records import Milestone
from careflow.kit.registry import workflow
from careflow.kit.runtime import invoke
from careflow.policies import FilePolicyStore, resolve
from careflow.workflows.discharge_coordination import rules as r
from tests.fakes import FakeErp, FakeServices, InMemoryStateStore

NOW = datetime(2026, 11, 29, 14, 0, tzinfo=UTC)  # 08:00 in Chicago
CHICAGO = ZoneInfo("America/Chicago")
STEPS = "careflow.workflows.discharge_coordination.steps"
SPEC = workflow("discharge-coordination")
POLICIES = FilePolicyStore()
EXPECTED = datetime(2026, 11, 29, 11, 0, tzinfo=CHICAGO)


def policy(disposition: str | None = "01", expected: datetime | None = EXPECTED) -> r.Policy:
    snapshot = resolve(r.POLICY, "fac-north", at=NOW, store=POLICIES)
    return r.discharge_policy(
        snapshot,
        disposition=disposition,
        expected_discharge_at=expected,
        received_at=NOW,
        zone=CHICAGO,
    )


def ports(**given):
    base = {
        "store": InMemoryStateStore(),
        "policies": POLICIES,
        "now": NOW,
        "transport": FakeServices(NOW),
        "pharmacy": FakeServices(NOW, lead=timedelta(minutes=30)),
        "erp": FakeErp(expected_delivery=NOW + timedelta(hours=1)),
    }
    base.update(given)
    return base.__getitem__, base


def run(name: str, event: dict, **given) -> tuple[dict, dict]:
    resolver, used = ports(**given)
    return invoke(f"{STEPS}:{name}", event, ports=resolver), used


def arrange_input(p: r.Policy) -> dict:
    return {
        "instance_id": "dc-1",
        "facility_id": "fac-north",
        "encounter_id": "V100",
        "policy": p.model_dump(mode="json"),
    }


# -- rules ---------------------------------------------------------------------------------
def test_without_an_expected_time_the_policy_expects_11_00_the_next_day_facility_time():
    p = policy(expected=None)
    assert p.expected_discharge_at == datetime(2026, 11, 30, 11, 0, tzinfo=CHICAGO)
    assert p.threat_at == p.expected_discharge_at - timedelta(minutes=60)


@pytest.mark.parametrize(
    ("disposition", "needs"),
    [
        ("01", ("transport", "pharmacy")),
        ("06", ("transport", "pharmacy", "dme", "post_acute_authorization")),
        ("03", ("transport", "post_acute_authorization")),
        (None, ("transport", "pharmacy")),
    ],
)
def test_the_disposition_decides_the_dependencies(disposition, needs):
    assert policy(disposition).needs == needs


def test_every_delay_cause_of_the_policy_is_one_of_the_fixed_list():
    assert {o.cause for o in policy().owners.values()} <= set(r.DELAY_CAUSES)


def test_a_dependency_ready_after_the_threat_line_threatens_the_discharge():
    p = policy()
    late = r.arranged("transport", "TRN-1", p.expected_discharge_at + timedelta(minutes=90), p)
    met = r.arranged("pharmacy", "RX-1", p.threat_at, p)
    evaluation = r.evaluate([late, met], p)
    assert (late.status, met.status) == (r.LATE, r.MET)
    assert evaluation.threatened == ("transport",)
    assert evaluation.predicted[0].model_dump() == {
        "dependency": "transport",
        "cause": "awaiting transport",
        "owner": "case_manager",
        "minutes": 90,
    }


def test_delays_are_counted_against_the_expected_time_up_to_the_departure():
    p = policy()
    deps = [
        r.arranged("transport", "T", p.expected_discharge_at + timedelta(hours=2), p),
        r.arranged("dme", "D", p.expected_discharge_at + timedelta(hours=5), p),
        r.arranged("pharmacy", "R", p.expected_discharge_at - timedelta(hours=2), p),
        r.Dependency(dependency="post_acute_authorization", status=r.NOT_NEEDED),
    ]
    departed = p.expected_discharge_at + timedelta(hours=3)
    got = {d.dependency: (d.cause, d.minutes) for d in r.delays(deps, p, departed)}
    assert got == {"transport": ("awaiting transport", 120), "dme": ("DME", 180)}
    assert r.before_noon(p.expected_discharge_at, p)
    assert not r.before_noon(departed, p)


# -- steps ---------------------------------------------------------------------------------
def test_register_discharge_pins_the_policy_and_keeps_the_patient_off_the_state():
    out, used = run(
        "register_discharge",
        {
            "instance_id": "dc-1",
            "correlation_id": "c-1",
            "facility_id": "fac-north",
            "occurred_at": NOW.isoformat(),
            "encounter_id": "V100",
            "disposition": "06",
            "expected_discharge_at": None,
            "patient_id": "MRN123",
            "patient_id_authority": "NVMC",
        },
    )
    assert out["needs"] == {
        "transport": True,
        "pharmacy": True,
        "dme": True,
        "post_acute_authorization": True,
    }
    assert "MRN123" not in str(out)
    instance = used["store"].get_instance("dc-1")
    assert instance.subject_type == "encounter" and instance.subject_id == "V100"
    assert instance.subject_refs == {"patient": "NVMC|MRN123"}
    assert out["policy"]["policy_version"].startswith("discharge-coordination@")


def test_book_transport_asks_the_vendor_for_the_expected_time_and_records_it():
    p = policy()
    vendor = FakeServices(NOW, lead=timedelta(hours=6))  # pickup at 14:00 Chicago
    out, used = run("book_transport", arrange_input(p), transport=vendor)
    assert out["status"] == r.LATE and out["reference"] == "BK-1"
    assert vendor.requests[0].needed_by == p.expected_discharge_at
    assert vendor.requests[0].reference == "V100"
    [m] = used["store"].milestones("dc-1")
    assert (m.name, m.status) == ("transport_arranged", "PENDING")


def test_order_meds_to_beds_is_met_when_the_pharmacy_is_ready_in_time():
    out, _ = run("order_meds_to_beds", arrange_input(policy()))
    assert out["status"] == r.MET and out["dependency"] == "pharmacy"


def test_order_dme_is_an_erp_requisition_idempotent_on_the_encounter():
    erp = FakeErp(expected_delivery=NOW + timedelta(hours=8))
    out, _ = run("order_dme", arrange_input(policy("06")), erp=erp)
    [req] = erp.requisitions
    assert req.reference == "discharge:V100"
    assert [line.item_id for line in req.lines] == ["DME-WALKER-STD"]
    assert req.supplier_id == "sup-homemed"
    assert out["status"] == r.LATE and out["reference"] == "REQ-1"


def test_post_acute_authorization_is_pending_on_a_person():
    out, _ = run("request_post_acute_authorization", arrange_input(policy("06")))
    assert out["status"] == r.PENDING and out["ready_at"] is None


def test_a_failed_arrangement_is_recorded_as_error():
    out, used = run(
        "record_dependency_error",
        {"instance_id": "dc-1", "dependency": "transport", "error": {"Error": "ConnectorError"}},
    )
    assert out["status"] == r.ERROR
    assert used["store"].milestones("dc-1")[0].name == "transport_failed"


def test_evaluate_discharge_opens_a_case_manager_task_spec_when_threatened():
    p = policy()
    late = r.arranged("transport", "T", p.expected_discharge_at + timedelta(hours=1), p)
    event = {
        **arrange_input(p),
        "dependencies": [
            late.model_dump(mode="json"),
            {"dependency": "dme", "status": "NOT_NEEDED"},
        ],
    }
    out, used = run("evaluate_discharge", event)
    assert out["threatened"] is True
    assert out["task"]["escalation_chain"] == [
        "case_manager",
        "charge_nurse",
        "department_director",
    ]
    assert out["task"]["allowed_decisions"] == ["EXPEDITE", "ACCEPT_DELAY"]
    assert [a.action for a in used["store"].audit_trail("dc-1")] == ["discharge_threatened"]
    ok = r.arranged("transport", "T", p.threat_at, p)
    out, _ = run("evaluate_discharge", {**event, "dependencies": [ok.model_dump(mode="json")]})
    assert out == {"threatened": False, "reasons": [], "task": None}


def test_apply_case_manager_decision_records_it():
    out, used = run(
        "apply_case_manager_decision",
        {
            "instance_id": "dc-1",
            "policy": policy().model_dump(mode="json"),
            "case_manager": {"decision": "EXPEDITE"},
        },
    )
    assert out == {"decision": "EXPEDITE"}
    assert used["store"].milestones("dc-1")[0].detail == "EXPEDITE"


def test_check_departure_reads_the_a03_milestone_and_gives_up_after_the_policy_wait():
    store = InMemoryStateStore()
    p = policy()
    event = {"instance_id": "dc-1", "policy": p.model_dump(mode="json")}
    out, _ = run("check_departure", event, store=store)
    assert out == {"departed": False, "departed_at": None, "gave_up": False}
    out, _ = run("check_departure", event, store=store, now=p.give_up_at)
    assert out["gave_up"] is True
    left = NOW + timedelta(hours=1)
    store.record_milestone(Milestone(instance_id="dc-1", name="discharged", at=left))
    out, _ = run("check_departure", event, store=store)
    assert out["departed"] is True and datetime.fromisoformat(out["departed_at"]) == left


def test_finalize_discharge_records_each_delay_with_cause_owner_and_minutes():
    p = policy()
    departed = p.expected_discharge_at + timedelta(minutes=150)
    deps = [
        r.arranged("transport", "T", p.expected_discharge_at + timedelta(minutes=120), p),
        r.arranged("pharmacy", "R", p.threat_at, p),
    ]
    out, used = run(
        "finalize_discharge",
        {
            "instance_id": "dc-1",
            "correlation_id": "c-1",
            "facility_id": "fac-north",
            "encounter_id": "V100",
            "ordered_at": NOW.isoformat(),
            "policy": p.model_dump(mode="json"),
            "dependencies": [d.model_dump(mode="json") for d in deps],
            "departure": {"departed": True, "departed_at": departed.isoformat()},
        },
    )
    assert out["outcome"] == "DISCHARGED"
    assert out["delays"] == [
        {
            "dependency": "transport",
            "cause": "awaiting transport",
            "owner": "case_manager",
            "minutes": 120,
        }
    ]
    data = out["detail"]["data"]
    assert data["order_to_departure_seconds"] == int((departed - NOW).total_seconds())
    assert data["before_noon"] is False
    delays = [a for a in used["store"].audit_trail("dc-1") if a.action == "delay_recorded"]
    assert [(a.reason, a.detail["minutes"]) for a in delays] == [("awaiting transport", 120)]


def test_every_step_of_the_spec_is_tested_here():
    source = Path(__file__).read_text(encoding="utf-8")
    for fn in SPEC.steps:
        assert f'"{fn.step.split(":")[1]}"' in source, fn.name


def test_finalize_discharge_records_the_order_and_departure_times_for_the_kpis():
    p = policy()
    departed = datetime(2026, 11, 29, 10, 30, tzinfo=CHICAGO)
    event = {
        "instance_id": "dc-1",
        "correlation_id": "c-1",
        "facility_id": "fac-north",
        "encounter_id": "V100",
        "ordered_at": NOW.isoformat(),
        "policy": p.model_dump(mode="json"),
        "dependencies": [],
        "departure": {"departed": True, "departed_at": departed.isoformat()},
    }
    _, used = run("finalize_discharge", event)
    (measured,) = [a for a in used["store"].audit_trail("dc-1") if a.action == "discharge_measured"]
    assert measured.detail == {
        "ordered_at": NOW.isoformat(),
        "departed_at": departed.isoformat(),
        "order_to_departure_seconds": int((departed - NOW).total_seconds()),
        "before_noon": True,
        "noon_hour": p.noon_hour,
    }
    gone = {**event, "departure": {"departed": False, "gave_up": True}}
    _, used = run("finalize_discharge", gone)
    assert not [a for a in used["store"].audit_trail("dc-1") if a.action == "discharge_measured"]
