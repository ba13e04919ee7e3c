"""Every step and rule of prior authorization, with in-memory fakes (no cloud)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from careflow.adapters.predictor_local import LocalPredictor, Predictors
from careflow.canonical.payer import AuthDecision, PriorAuthResponse
from careflow.events.envelope import parse_event
from careflow.kit.registry import workflow
from careflow.kit.runtime import invoke
from careflow.policies import FilePolicyStore, resolve
from careflow.workflows.prior_authorization import events, rules
from tests.fakes import FakeEhr, FakeEngine, FakePayer, FakePublisher, InMemoryStateStore

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
STEPS = "careflow.workflows.prior_authorization.steps"
SPEC = workflow("prior-authorization")
POLICIES = FilePolicyStore()  # the packaged policy files
PREDICTOR = Predictors(LocalPredictor())  # the committed artifacts
HOUR = 3600


def a_request(**kw) -> dict:
    base = {
        "request_id": "pa-1",
        "service_line": "imaging",
        "patient_ref": "Patient/p1",
        "coverage_ref": "Coverage/c1",
        "payer_id": "payer-1",
        "procedure_codes": [{"system": "http://www.ama-assn.org/go/cpt", "code": "70553"}],
        "service_date": (NOW + timedelta(days=10)).isoformat(),
        "priority": "routine",
    }
    base.update(kw)
    return base


class World:
    def __init__(self, payer: FakePayer | None = None, now: datetime = NOW) -> None:
        self.store = InMemoryStateStore()
        self.engine = FakeEngine()
        self.publisher = FakePublisher()
        self.payer = payer or FakePayer()
        self.ehr = FakeEhr()
        self.now = now

    def port(self, name: str):
        return {
            "store": self.store,
            "engine": self.engine,
            "publisher": self.publisher,
            "payer": self.payer,
            "ehr": self.ehr,
            "policies": POLICIES,
            "predictor": PREDICTOR,
            "now": self.now,
        }[name]

    def run(self, step: str, event: dict) -> dict:
        out = invoke(f"{STEPS}:{step}", json.loads(json.dumps(event)), ports=self.port)
        return json.loads(json.dumps(out))

    def milestones(self) -> list[str]:
        return [m.name for m in self.store.milestones("i-1")]

    def register(self, **request) -> dict:
        return self.run(
            "register_request",
            {
                "instance_id": "i-1",
                "correlation_id": "c-1",
                "facility_id": "fac-north",
                "request": a_request(**request),
            },
        )


def clocks(priority: str = "routine", facility: str = "fac-north") -> rules.Clocks:
    return rules.clocks_from(
        resolve("prior-authorization", facility, at=NOW, store=POLICIES),
        priority=priority,
        service_line="imaging",
        service_date=NOW + timedelta(days=10),
        now=NOW,
    )


# -- rules --------------------------------------------------------------------------------
def test_the_cms_0057_f_clocks_by_priority():
    expedited, standard = clocks("expedited"), clocks("routine")
    assert (expedited.overdue_s, expedited.escalate_at_s, expedited.deadline_s) == (
        24 * HOUR,
        48 * HOUR,
        72 * HOUR,
    )
    assert standard.deadline_s == 7 * 24 * HOUR
    assert standard.escalate_at_s < standard.deadline_s
    assert expedited.policy_version.startswith("prior-authorization@")
    assert expedited.rows["pend_clock"] == "expedited"


def test_queues_are_routed_by_service_line_and_how_soon_the_service_is():
    snapshot = resolve("prior-authorization", "fac-north", at=NOW, store=POLICIES)

    def routed(line: str, days: int) -> str:
        return rules.clocks_from(
            snapshot,
            priority="routine",
            service_line=line,
            service_date=NOW + timedelta(days=days),
            now=NOW,
        ).documents_chain[0]

    assert routed("imaging", 10) == "utilization_review_imaging"
    assert routed("infusion", 10) == "utilization_review_infusion"
    assert routed("imaging", 2) == "utilization_review_urgent"  # inside the hard stop
    assert routed("other", 10) == "utilization_review_nurse"  # the table's default


@pytest.mark.parametrize(
    ("elapsed_h", "escalated", "stage", "wait_h"),
    [
        (24, False, rules.Stage.WAIT, 24),  # overdue: inquire, then wait to the escalation
        (48, False, rules.Stage.ESCALATE, 24),
        (50, True, rules.Stage.WAIT, 22),  # already escalated: wait out the clock
        (72, True, rules.Stage.BREACHED, 0),
        (90, False, rules.Stage.BREACHED, 0),
    ],
)
def test_a_pend_moves_through_the_clock_without_polling(elapsed_h, escalated, stage, wait_h):
    got = rules.next_stage(
        AuthDecision.PENDED, elapsed_h * HOUR, clocks("expedited"), escalated=escalated
    )
    assert got == (stage, wait_h * HOUR)


def test_a_decision_ends_the_clock_whenever_it_comes():
    assert (
        rules.next_stage(AuthDecision.DENIED, 10, clocks(), escalated=False)[0]
        is rules.Stage.DECIDED
    )


def test_an_answer_careflow_cannot_act_on_goes_to_a_person_whatever_it_says():
    c = clocks()
    assert rules.next_stage(AuthDecision.UNKNOWN, 10, c, escalated=False)[0] is rules.Stage.REVIEW
    approved = rules.next_stage(AuthDecision.APPROVED, 10, c, escalated=False, needs_review=True)
    assert approved == (rules.Stage.REVIEW, 0)


@pytest.mark.parametrize(
    ("decision", "stage", "outcome"),
    [
        ("APPROVED", "DECIDED", rules.Outcome.APPROVED),
        ("MODIFIED", "DECIDED", rules.Outcome.MODIFIED),
        ("DENIED", "DECIDED", rules.Outcome.DENIED),
        ("NOT_REQUIRED", "DECIDED", rules.Outcome.NOT_REQUIRED),
        ("PENDED", "BREACHED", rules.Outcome.EXPIRED),
        ("PENDED", "NO_DOCUMENTS", rules.Outcome.NO_DOCUMENTS),
        ("ERROR", "DECIDED", rules.Outcome.ERROR),
        ("A9", "DECIDED", rules.Outcome.ERROR),
        ("UNKNOWN", "DECIDED", rules.Outcome.ERROR),  # nobody reviewed it
    ],
)
def test_every_ending_has_an_outcome(decision, stage, outcome):
    assert rules.outcome_of(decision, stage)[0] is outcome


# -- steps --------------------------------------------------------------------------------
def test_register_request_records_the_instance_and_pins_its_clocks():
    world = World()
    out = world.register(priority="expedited")
    instance = world.store.get_instance("i-1")
    (pinned,) = [a for a in world.store.audit if a.action == "policy_pinned"]
    assert pinned.policy_version == out["policy"]["policy_version"]
    assert pinned.detail["rows"]["pend_clock"] == "expedited"
    assert (instance.subject_type, instance.subject_id) == ("prior-auth", "pa-1")
    assert out["policy"]["deadline_s"] == 72 * HOUR
    assert out["policy"]["overdue_s"] == 24 * HOUR
    assert out["attachments"] == []
    assert world.milestones() == ["request_received"]


def test_the_state_carries_the_request_without_its_patient_and_coverage():
    """They are kept on the instance, in the state table, for the submission."""
    world = World(FakePayer(auth=PriorAuthResponse(decision=AuthDecision.APPROVED)))
    out = world.register()
    assert "Patient/p1" not in json.dumps(out) and "Coverage/c1" not in json.dumps(out)
    instance = world.store.get_instance("i-1")
    assert instance.subject_refs == {"patient": "Patient/p1", "coverage": "Coverage/c1"}
    world.run(
        "submit_request",
        {
            "instance_id": "i-1",
            "facility_id": "fac-north",
            "request": out["request"],
            "policy": out["policy"],
        },
    )
    (submitted,) = world.payer.submitted
    assert (submitted.patient_ref, submitted.coverage_ref) == ("Patient/p1", "Coverage/c1")


def test_an_execution_started_with_the_references_in_its_state_still_submits():
    payer = FakePayer(auth=PriorAuthResponse(decision=AuthDecision.APPROVED))
    world = World(payer)  # no instance with references in the table: started before them
    world.run(
        "submit_request",
        {
            "instance_id": "i-1",
            "facility_id": "fac-north",
            "request": a_request(),
            "policy": clocks().model_dump(),
        },
    )
    assert payer.submitted[0].patient_ref == "Patient/p1"


def test_a_surgical_case_s_request_reads_its_patient_and_coverage_from_the_ehr():
    from tests.unit.test_surgical_readiness_steps import a_case

    world = World()
    world.ehr = FakeEhr([a_case(case_id="appt-9", appointment_id="appt-9")])
    world.register(patient_ref=None, coverage_ref=None, case_id="appt-9")
    instance = world.store.get_instance("i-1")
    assert instance.subject_refs == {"patient": "Patient/p1", "coverage": "Coverage/c1"}
    with pytest.raises(Exception, match="case_id"):
        World().register(patient_ref=None, coverage_ref=None)


def test_a_discharge_s_post_acute_request_reads_its_patient_and_coverage_by_encounter():
    from careflow.canonical.payer import EncounterCoverage
    from tests.unit.test_discharge_coordination_steps import CoverageEhr

    world = World()
    world.ehr = CoverageEhr(
        V7=EncounterCoverage(
            encounter_id="V7",
            patient_ref="Patient/p7",
            coverage_ref="Coverage/c7",
            payer_id="payer-a",
        )
    )
    world.register(
        patient_ref=None, coverage_ref=None, encounter_id="V7", service_line="post-acute"
    )
    instance = world.store.get_instance("i-1")
    assert instance.subject_refs == {"patient": "Patient/p7", "coverage": "Coverage/c7"}
    world = World()
    world.ehr = CoverageEhr()
    with pytest.raises(Exception, match="does not know the encounter"):
        world.register(patient_ref=None, coverage_ref=None, encounter_id="V8")


def test_an_invalid_request_is_refused_by_field_never_by_value():
    """The message is the task's error cause in the history: it names no value."""
    from careflow.kit.runtime import StepDataInvalid

    with pytest.raises(StepDataInvalid) as refused:
        World().register(patient_ref="Patient/Jane Roe", coverage_ref="Coverage/c1")
    assert str(refused.value) == "register_request: patient_ref: string_pattern_mismatch"
    assert "Jane Roe" not in str(refused.value)
    with pytest.raises(StepDataInvalid) as refused:
        World().register(service_date="1957-03-14")  # no offset
    assert "1957" not in str(refused.value)


def test_a_request_without_a_coverage_reference_is_refused():
    with pytest.raises(Exception, match="coverage_ref"):
        World().register(coverage_ref="not a reference")


def test_submit_request_reads_a_pend_and_starts_nothing_else():
    payer = FakePayer(auth=PriorAuthResponse(decision=AuthDecision.PENDED, preauth_ref="PA-1"))
    world = World(payer)
    world.register()
    out = world.run(
        "submit_request",
        {
            "instance_id": "i-1",
            "facility_id": "fac-north",
            "request": a_request(),
            "policy": clocks().model_dump(),
        },
    )
    assert (out["decision"], out["needs_documents"], out["document_task"]) == (
        "PENDED",
        False,
        None,
    )
    assert world.milestones() == ["request_received", "submitted", "pended"]
    assert payer.submitted[0].attachments == ()


def test_a_request_for_documents_becomes_a_task_for_the_nurse_and_a_resubmission_attaches_them():
    asked = PriorAuthResponse(
        decision=AuthDecision.PENDED, preauth_ref="PA-1", documents_requested=("11506-3",)
    )
    payer = FakePayer(auth=asked)
    world = World(payer)
    world.register()
    event = {
        "instance_id": "i-1",
        "facility_id": "fac-north",
        "request": a_request(),
        "policy": clocks().model_dump(),
    }
    out = world.run("submit_request", event)
    assert out["needs_documents"] is True
    task = out["document_task"]
    assert task["escalation_chain"] == [
        "utilization_review_imaging",
        "utilization_review_nurse",
        "department_director",
    ]
    assert task["allowed_decisions"] == ["ATTACHED"]
    assert "11506-3" in task["reasons"][0]
    payer.auth = PriorAuthResponse(decision=AuthDecision.APPROVED, preauth_ref="PA-1")
    again = world.run("submit_request", {**event, "attachments": ["11506-3"]})
    assert again["decision"] == "APPROVED"
    assert payer.submitted[-1].attachments == ("11506-3",)
    assert world.milestones()[-1] == "resubmitted"


def test_await_decision_parks_the_token_or_resumes_on_an_early_answer():
    world = World()
    assert world.run(
        "await_decision", {"token": "t1", "instance_id": "i-1", "preauth_ref": "PA-1"}
    )["waiting"]
    assert world.store.take_wait("PA-1") == ("t1", "i-1")
    world.store.put_early_answer("PA-1", {"decision": "APPROVED"}, NOW)
    assert world.run(
        "await_decision", {"token": "t2", "instance_id": "i-1", "preauth_ref": "PA-1"}
    )["resumed"]
    assert world.engine.successes == [("t2", {"decision": "APPROVED"})]


def _inquire(world: World, **kw) -> dict:
    return world.run(
        "inquire",
        {
            "instance_id": "i-1",
            "facility_id": "fac-north",
            "request": a_request(),
            "preauth_ref": "PA-1",
            "submitted_at": NOW.isoformat(),
            "policy": clocks("expedited").model_dump(),
            "escalated": False,
            **kw,
        },
    )


def test_inquire_rereads_the_payer_and_places_the_pend_on_its_clock():
    pended = PriorAuthResponse(decision=AuthDecision.PENDED, preauth_ref="PA-1")
    world = World(FakePayer(inquiries={"PA-1": pended}), now=NOW + timedelta(hours=48))
    out = _inquire(world)
    assert (out["stage"], out["wait_s"]) == ("ESCALATE", 24 * HOUR)
    assert world.payer.inquired == ["PA-1"]
    assert out["review_task"] is None


def test_an_inquiry_answer_careflow_cannot_act_on_goes_to_a_person():
    odd = PriorAuthResponse(
        decision=AuthDecision.APPROVED,
        preauth_ref="PA-1",
        conformance=("Bundle.timestamp is missing (PAS Response Bundle: 1..1)",),
    )
    world = World(FakePayer(inquiries={"PA-1": odd}), now=NOW + timedelta(hours=30))
    out = _inquire(world)
    assert out["stage"] == "REVIEW"  # not DECIDED: the approval is not acted on
    task = out["review_task"]
    assert task["allowed_decisions"] == ["APPROVED", "DENIED", "REQUEST_AGAIN"]
    assert "Bundle.timestamp is missing (PAS Response Bundle: 1..1)" in task["reasons"]
    assert world.milestones()[-1] == "payer_answer_review"


@pytest.mark.parametrize(
    ("response", "stage"),
    [
        (PriorAuthResponse(decision=AuthDecision.UNKNOWN, preauth_ref="PA-1"), "REVIEW"),
        (
            PriorAuthResponse(decision=AuthDecision.DENIED, preauth_ref="PA-1", conformance=("x",)),
            "REVIEW",
        ),
        (PriorAuthResponse(decision=AuthDecision.APPROVED, preauth_ref="PA-1"), "DECIDED"),
    ],
)
def test_submit_routes_unknown_and_non_conformant_answers_to_a_person(response, stage):
    world = World(FakePayer(auth=response))
    out = world.run(
        "submit_request",
        {
            "instance_id": "i-1",
            "facility_id": "fac-north",
            "request": a_request(),
            "policy": clocks().model_dump(),
        },
    )
    assert out["stage"] == stage
    assert (out["review_task"] is not None) is (stage == "REVIEW")
    if stage == "REVIEW":
        assert out["review_task"]["purpose"] == "payer-answer"
        assert out["review_task"]["escalation_chain"][0] == "utilization_review_imaging"


def _accept(world: World, answer: dict, **clock) -> dict:
    return world.run(
        "accept_decision",
        {
            "instance_id": "i-1",
            "facility_id": "fac-north",
            "request": a_request(),
            "policy": clocks().model_dump(),
            "clock": {
                "decision": "PENDED",
                "preauth_ref": "PA-1",
                "submitted_at": NOW.isoformat(),
                "escalated": False,
                **clock,
            },
            "answer": {"verified": True, "preauth_ref": "PA-1", **answer},
        },
    )


def test_accept_decision_acts_on_the_reread_answer_without_asking_again():
    world = World(FakePayer(), now=NOW + timedelta(days=2))
    out = _accept(world, {"decision": "DENIED", "claimed": "APPROVED", "reason": "no"})
    assert (out["decision"], out["stage"], out["reason"]) == ("DENIED", "DECIDED", "no")
    assert world.payer.inquired == []  # PayerDecision already asked: one $inquire per signal
    assert world.milestones() == ["payer_decided"]


def test_accept_decision_sends_an_unknown_answer_to_a_person():
    world = World(now=NOW + timedelta(days=2))
    out = _accept(world, {"decision": "UNKNOWN", "conformance": []}, escalated=True)
    assert (out["stage"], out["escalated"]) == ("REVIEW", True)
    assert "not one careflow knows (UNKNOWN)" in out["review_task"]["reasons"][0]


def test_escalate_pend_opens_an_informational_task_and_marks_the_clock():
    world = World(now=NOW + timedelta(hours=48))
    clock = {
        "decision": "PENDED",
        "preauth_ref": "PA-1",
        "stage": "ESCALATE",
        "wait_s": 24 * HOUR,
        "escalated": False,
        "submitted_at": NOW.isoformat(),
    }
    out = world.run(
        "escalate_pend",
        {
            "instance_id": "i-1",
            "facility_id": "fac-north",
            "request": a_request(),
            "preauth_ref": "PA-1",
            "submitted_at": NOW.isoformat(),
            "policy": clocks("expedited").model_dump(),
            "clock": clock,
        },
    )
    assert out == {
        **clock,
        "reason": None,
        "stage": "WAIT",
        "escalated": True,
        "conformance": [],
        "review_task": None,
    }
    (task,) = world.store.tasks.values()
    assert task.queue == "utilization_review_imaging" and task.task_token is None
    assert "pend_escalated" in world.milestones()


def _conclude(world: World, decision: dict) -> dict:
    return world.run(
        "conclude",
        {
            "instance_id": "i-1",
            "correlation_id": "c-1",
            "facility_id": "fac-north",
            "request": a_request(),
            "policy": clocks().model_dump(),
            "decision": decision,
        },
    )


def test_conclude_a_first_pass_approval():
    world = World()
    world.register()
    world.now = NOW + timedelta(minutes=3)
    out = _conclude(world, {"decision": "APPROVED", "preauth_ref": "PA-1"})
    result = out["result"]
    assert (result["outcome"], result["first_pass"], result["turnaround_seconds"]) == (
        "APPROVED",
        True,
        180,
    )
    instance = world.store.get_instance("i-1")
    assert (instance.status.value, instance.outcome) == ("COMPLETED", "APPROVED")
    event = {
        "source": "careflow.workflow",
        "detail-type": out["detail_type"],
        "detail": out["detail"],
    }
    parsed = parse_event(event, schemas={"PriorAuth.Concluded": events.PriorAuthConcluded})
    assert parsed.data.request_id == "pa-1"


def test_conclude_a_denial_opens_an_appeal_task_with_the_payers_reason():
    world = World()
    world.register()
    out = _conclude(
        world, {"decision": "DENIED", "preauth_ref": "PA-1", "reason": "not medically necessary"}
    )
    assert out["result"]["outcome"] == "DENIED"
    (task,) = world.store.tasks.values()
    assert task.title.startswith("Authorization PA-1 denied")
    assert any("not medically necessary" in r for r in task.reasons)
    assert world.store.audit[-1].policy_version == clocks().policy_version


def test_conclude_after_a_pend_is_not_first_pass_and_a_breach_is_expired():
    world = World()
    world.register()
    world.store.record_milestone(
        world.store.milestones("i-1")[0].model_copy(update={"name": "pended"})
    )
    out = _conclude(world, {"decision": "PENDED", "preauth_ref": "PA-1", "stage": "BREACHED"})
    assert out["result"]["outcome"] == "EXPIRED"
    assert out["result"]["first_pass"] is False


def test_every_step_of_the_workflow_has_a_test_here():
    source = Path(__file__).read_text(encoding="utf-8")
    for fn in SPEC.steps:
        name = fn.step.rpartition(":")[2]
        assert f'"{name}"' in source, f"{name} has no unit test"
