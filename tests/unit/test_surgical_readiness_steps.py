"""Every step of surgical case readiness, run through the kit's entry point with in-memory fakes.

No cloud: the state machine's branches, waits and timing are the workflow tests' business;
here each step's logic, its milestones and audit entries, and its JSON in and out.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from careflow.adapters.predictor_local import LocalPredictor, Predictors
from careflow.adapters.sandbox import HIP
from careflow.canonical.cases import Participant, ParticipantStatus, SurgicalCase
from careflow.canonical.datatypes import Coding
from careflow.canonical.payer import EligibilityResponse
from careflow.canonical.supply import StockPosition, TrayStatus
from careflow.domain.records import Milestone
from careflow.events.envelope import parse_event
from careflow.kit.registry import workflow
from careflow.kit.runtime import invoke
from careflow.policies import FilePolicyStore, resolve
from careflow.workflows.surgical_case_readiness import events, rules
from tests.fakes import (
    FakeEhr,
    FakeEngine,
    FakeErp,
    FakePayer,
    FakePublisher,
    FakeSterile,
    InMemoryStateStore,
)

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
STEPS = "careflow.workflows.surgical_case_readiness.steps"
SPEC = workflow("surgical-case-readiness")
POLICIES = FilePolicyStore()  # the packaged policy files


def a_case(**kw) -> SurgicalCase:
    base = dict(
        case_id="appt-1",
        appointment_id="appt-1",
        facility_id="fac-north",
        patient_ref="Patient/p1",
        scheduled_start=NOW + timedelta(days=5),
        procedure_codes=(Coding(system="http://www.ama-assn.org/go/cpt", code="27130"),),
        service_line="orthopedics",
        coverage_ref="Coverage/c1",
        payer_id="payer-1",
        supplies=HIP,
        tray_ids=("TRAY-1",),
    )
    base.update(kw)
    return SurgicalCase(**base)


def stock(item_id: str, on_hand: int, *, reserved: int = 0) -> StockPosition:
    return StockPosition(
        facility_id="fac-north",
        item_id=item_id,
        on_hand=on_hand,
        reserved=reserved,
        par_level=2,
        supplier_id="sup-1",
        lead_time_days=3,
    )


class World:
    """The fakes one step may ask for, by port name."""

    def __init__(self, **ports) -> None:
        self.store = InMemoryStateStore()
        self.engine = FakeEngine()
        self.publisher = FakePublisher()
        self.ports = {
            "store": self.store,
            "engine": self.engine,
            "publisher": self.publisher,
            "ehr": FakeEhr([a_case()]),
            "payer": FakePayer(),
            "erp": FakeErp(),
            "sterile": FakeSterile(),
            "policies": POLICIES,
            "predictor": Predictors(LocalPredictor()),
            "now": NOW,
            **ports,
        }

    def run(self, step: str, event: dict) -> dict:
        # JSON in and out, as Lambda and the local cloud pass them
        out = invoke(
            f"{STEPS}:{step}",
            json.loads(json.dumps(event, default=str)),
            ports=self.ports.__getitem__,
        )
        return json.loads(json.dumps(out))

    def milestones(self, instance_id: str = "i-1") -> dict[str, str]:
        return {m.name: m.status for m in self.store.milestones(instance_id)}


def policy_of(case: SurgicalCase) -> dict:
    snapshot = resolve("surgical-readiness", case.facility_id, at=NOW, store=POLICIES)
    return rules.case_policy(case, snapshot).model_dump(mode="json")


def case_event(case: SurgicalCase, **extra) -> dict:
    """What the state carries about the case: its ids and date, never its record."""
    return {
        "instance_id": "i-1",
        "case_id": case.case_id,
        "facility_id": case.facility_id,
        "scheduled_start": case.scheduled_start.isoformat(),
        "policy": policy_of(case),
        **extra,
    }


def test_register_case_records_the_instance_and_resolves_the_cases_timers():
    case = a_case(priority="expedited")
    world = World(ehr=FakeEhr([case]))
    out = world.run(
        "register_case",
        {"instance_id": "i-1", "case_id": "appt-1", "correlation_id": "c-1"},
    )
    instance = world.store.get_instance("i-1")
    assert (instance.subject_type, instance.subject_id, instance.facility_id) == (
        "case",
        "appt-1",
        "fac-north",
    )
    assert instance.scheduled_start == case.scheduled_start  # partners read it from the API
    assert (out["case_id"], out["facility_id"]) == ("appt-1", "fac-north")
    assert datetime.fromisoformat(out["scheduled_start"]) == case.scheduled_start
    assert out["policy"]["coordinator_task_s"] == 4 * 3600
    assert out["policy"]["policy_version"].startswith("surgical-readiness@")
    assert world.milestones() == {"readiness_started": "DONE"}
    (pinned,) = [a for a in world.store.audit if a.action == "policy_pinned"]
    assert pinned.policy_version == out["policy"]["policy_version"]
    # the authorization goes to the prior authorization workflow, with the case's codes
    assert out["auth_route"] == "CHILD"
    assert out["auth_instance_id"] == "i-1-auth"
    request = out["auth_request"]
    assert (request["request_id"], request["priority"], request["service_line"]) == (
        "appt-1",
        "expedited",
        "surgery",
    )
    assert request["case_id"] == "appt-1"
    assert "patient_ref" not in request and "coverage_ref" not in request  # the child reads them
    from careflow.workflows.prior_authorization.steps import Register

    Register.model_validate(  # what the child's first step takes
        {
            "instance_id": "i-1-auth",
            "correlation_id": "c-1",
            "facility_id": "fac-north",
            "request": request,
        }
    )


@pytest.mark.parametrize(
    ("updates", "route"),
    [({"auth_required": False}, "NOT_REQUIRED"), ({"coverage_ref": None}, "NO_COVERAGE")],
)
def test_register_case_decides_how_the_authorization_is_had(updates, route):
    world = World(ehr=FakeEhr([a_case(**updates)]))
    out = world.run(
        "register_case", {"instance_id": "i-1", "case_id": "appt-1", "correlation_id": "c-1"}
    )
    assert (out["auth_route"], out["auth_request"]) == (route, None)


def test_register_case_input_must_name_the_case():
    with pytest.raises(Exception, match="case_id"):
        World().run("register_case", {"instance_id": "i-1", "correlation_id": "c"})


def test_record_authorization_reads_the_childs_outcome_and_mirrors_its_milestones():
    world = World()
    child = "i-1-auth"
    for name, at in (("submitted", 0), ("pended", 0), ("inquired", 24), ("concluded_expired", 72)):
        world.store.record_milestone(
            Milestone(instance_id=child, name=name, at=NOW + timedelta(hours=at))
        )
    out = world.run(
        "record_authorization",
        {
            "instance_id": "i-1",
            "auth": {
                "outcome": "EXPIRED",
                "preauth_ref": "PA-1",
                "instance_id": child,
                "decision_clock_s": 72 * 3600,
            },
        },
    )
    assert out["status"] == "THREATENED"
    assert "72 h decision clock" in out["reasons"][0]
    mirrored = {m.name: m.at for m in world.store.milestones("i-1")}
    assert mirrored["authorization_clock_expired"] - mirrored["authorization_pended"] == timedelta(
        hours=72
    )


def test_record_authorization_when_none_is_needed():
    world = World()
    out = world.run(
        "record_authorization", {"instance_id": "i-1", "auth": {"outcome": "NOT_REQUIRED"}}
    )
    assert out["status"] == "OK"
    assert world.milestones() == {"authorization_not_required": "DONE"}


def test_verify_benefits_blocks_inactive_coverage():
    payer = FakePayer(
        eligibility=EligibilityResponse(active=False, covered=False, reason="terminated")
    )
    world = World(payer=payer)
    out = world.run("verify_benefits", case_event(a_case()))
    assert out["status"] == "BLOCKED"
    assert "coverage is not active" in out["reasons"][0]
    assert world.milestones()["benefits_verified"] == "FAILED"


def test_check_clinician_and_room_flags_a_declined_surgeon():
    participants = (
        Participant(role="surgeon", ref="Practitioner/s1", status=ParticipantStatus.DECLINED),
        Participant(role="room", ref="Location/or1", status=ParticipantStatus.ACCEPTED),
    )
    world = World(ehr=FakeEhr([a_case()], participants={"appt-1": participants}))
    out = world.run("check_clinician_and_room", case_event(a_case()))
    assert out["status"] == "THREATENED"
    assert world.milestones()["clinician_and_room_checked"] == "PENDING"


def test_check_supplies_finds_the_shortage_and_asks_for_a_requisition():
    case = a_case()
    positions = [stock(need.item_id, need.quantity) for need in case.supplies]
    short = case.supplies[0]
    positions[0] = stock(short.item_id, short.quantity, reserved=short.quantity)  # all reserved
    world = World(ehr=FakeEhr([case]), erp=FakeErp(positions))
    out = world.run("check_supplies", case_event(case))
    assert out["needs_requisition"] is True
    assert [s["item_id"] for s in out["shortages"]] == [short.item_id]
    assert out["requisitions_needed"][0]["lines"][0]["item_id"] == short.item_id
    assert world.milestones()["supplies_checked"] == "PENDING"


def test_create_requisitions_raises_them_in_the_erp_and_audits_with_the_policy_version():
    case = a_case()
    short = case.supplies[0]
    positions = [stock(n.item_id, n.quantity) for n in case.supplies]
    positions[0] = stock(short.item_id, 0)
    erp = FakeErp(positions, expected_delivery=NOW + timedelta(days=2))
    world = World(erp=erp)
    supplies = world.run("check_supplies", case_event(case))
    out = world.run("create_requisitions", {**case_event(case), "supplies": supplies})
    assert len(erp.requisitions) == 1
    assert out["dependency"] == "supplies"
    (audit,) = [a for a in world.store.audit if a.action == "requisition_created"]
    assert audit.detail == {"requisitions": ["REQ-1"]}
    assert audit.policy_version == policy_of(case)["policy_version"]


def test_check_sterile_processing_waits_on_a_tray_in_process():
    sterile = FakeSterile(
        [TrayStatus(tray_id="TRAY-1", status="in_process", ready_at=NOW + timedelta(hours=3))]
    )
    world = World(sterile=sterile)
    out = world.run("check_sterile_processing", case_event(a_case()))
    assert out["status"] in ("PENDING", "OK")
    missing = World(sterile=FakeSterile([TrayStatus(tray_id="TRAY-1", status="missing")]))
    assert missing.run("check_sterile_processing", case_event(a_case()))["status"] == "THREATENED"


def test_record_dependency_error_routes_the_failed_check_to_a_person():
    world = World()
    out = world.run(
        "record_dependency_error",
        {
            "instance_id": "i-1",
            "dependency": "benefits",
            "error": {"Error": "ConnectorUnavailable"},
        },
    )
    assert out["status"] == "ERROR"
    assert "ConnectorUnavailable" in out["reasons"][0]
    assert world.milestones()["benefits_check_failed"] == "FAILED"


def _results(**statuses):
    return [{"dependency": d, "status": s, "reasons": [f"{d} {s}"]} for d, s in statuses.items()]


def test_evaluate_readiness_opens_a_coordinator_task_when_the_case_is_at_risk():
    world = World()
    out = world.run(
        "evaluate_readiness",
        {
            **case_event(a_case()),
            "dependencies": _results(
                authorization="OK",
                benefits="OK",
                clinician_and_room="OK",
                supplies="THREATENED",
                sterile_processing="OK",
            ),
        },
    )
    assert out["outcome"] == "AT_RISK"
    assert out["task"]["escalation_chain"][:2] == ["care_coordinator", "supply_chain_buyer"]
    assert out["task"]["allowed_decisions"] == ["PROCEED", "RESCHEDULE", "CANCEL"]
    ready = world.run(
        "evaluate_readiness",
        {
            **case_event(a_case()),
            "dependencies": _results(
                authorization="OK",
                benefits="OK",
                clinician_and_room="OK",
                supplies="OK",
                sterile_processing="OK",
            ),
        },
    )
    assert (ready["outcome"], ready["task"]) == ("READY", None)


def test_apply_coordinator_decision_rechecks_the_stock_after_a_transfer():
    case = a_case()
    erp = FakeErp([stock(n.item_id, n.quantity) for n in case.supplies])  # stock has arrived
    world = World(erp=erp)
    out = world.run(
        "apply_coordinator_decision",
        {
            **case_event(case),
            "dependencies": _results(
                authorization="OK",
                benefits="OK",
                clinician_and_room="OK",
                supplies="THREATENED",
                sterile_processing="OK",
            ),
            "coordinator": {"decision": "PROCEED"},
        },
    )
    assert out["outcome"] == "READY"
    assert world.milestones()["coordinator_decided"] == "DONE"


def test_finalize_case_blocked_opens_follow_up_work_and_returns_a_valid_event():
    case = a_case()
    world = World()
    out = world.run(
        "finalize_case",
        {
            **case_event(case),
            "correlation_id": "c-1",
            "evaluation": {"outcome": "BLOCKED", "reasons": ["denied"]},
        },
    )
    assert out["detail_type"] == "Case.Blocked"
    (task,) = world.store.tasks.values()
    assert task.queue == "utilization_review_nurse"
    # careflow's own events use the envelope it promises
    event = {
        "source": "careflow.workflow",
        "detail-type": out["detail_type"],
        "detail": out["detail"],
    }
    assert (
        parse_event(event, schemas={"Case.Blocked": events.CaseOutcome}).metadata.facility_id
        == "fac-north"
    )


def test_finalize_case_after_an_exhausted_chain_is_at_risk():
    world = World()
    out = world.run(
        "finalize_case",
        {
            **case_event(a_case()),
            "correlation_id": "c-1",
            "evaluation": {"outcome": "AT_RISK", "reasons": []},
            "escalation_exhausted": True,
        },
    )
    assert out["outcome"] == "AT_RISK"
    assert "escalation chain" in out["reasons"][-1]


def test_the_state_carries_the_case_by_id_never_its_record():
    """What register_case returns is the execution's state (its history): the patient,
    coverage, surgeon, room, supplies and trays stay in the EHR."""
    case = a_case(surgeon_ref="Practitioner/s1", room_ref="Location/or1")
    out = World(ehr=FakeEhr([case])).run(
        "register_case", {"instance_id": "i-1", "case_id": "appt-1", "correlation_id": "c-1"}
    )
    state = json.dumps(out)
    for value in ("Patient/p1", "Coverage/c1", "Practitioner/s1", "Location/or1", "TRAY-1"):
        assert value not in state
    assert "case" not in out


def test_the_checks_read_the_case_from_the_ehr_by_its_id():
    case = a_case(tray_ids=("TRAY-NOT-THERE",))
    sterile = FakeSterile([TrayStatus(tray_id="TRAY-1", status="ready")])
    world = World(ehr=FakeEhr([case]), sterile=sterile)
    out = world.run("check_sterile_processing", case_event(case))
    assert out["status"] == "THREATENED"  # the EHR's trays, not the state's
    with pytest.raises(KeyError):
        World(ehr=FakeEhr()).run("verify_benefits", case_event(case))


def test_an_execution_started_with_the_whole_case_in_its_state_still_runs():
    """Running executions keep the definition they started with, which passed ``case``."""
    case = a_case()
    legacy = {
        "instance_id": "i-1",
        "case": case.model_dump(mode="json"),
        "policy": policy_of(case),
        "correlation_id": "c-1",
        "evaluation": {"outcome": "READY", "reasons": []},
    }
    assert World().run("check_clinician_and_room", legacy)["dependency"] == "clinician_and_room"
    out = World().run("finalize_case", legacy)
    assert out["detail"]["data"]["case_id"] == "appt-1"
    assert out["detail"]["metadata"]["facility_id"] == "fac-north"


def test_every_step_of_the_workflow_has_a_test_here():
    source = Path(__file__).read_text(encoding="utf-8")
    for fn in SPEC.steps:
        name = fn.step.rpartition(":")[2]
        assert f'"{name}"' in source, f"{name} has no unit test"
