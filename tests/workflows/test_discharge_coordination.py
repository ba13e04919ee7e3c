"""Discharge coordination: the real ASL on the local cloud with the real handlers.

Every encounter event goes through EventBridge (intake's rules), as the HL7 v2 adapter
would publish it. Few tests, each reaching an outcome: discharged on time; discharged late
with its delay causes after an escalated task was completed; stopped by A11 and by A13; an
A03 before its A16; an A13 after the A03, then a new A16 that starts a second coordination.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from careflow import wiring
from careflow.adapters.sandbox import PayerRule, sandbox
from careflow.canonical.payer import AuthDecision
from careflow.domain.intake import instance_id_for
from careflow.domain.records import InstanceStatus
from tests.workflows.harness import Case, advance_through_timer, ai_models, claim_and_complete

WORKFLOW = "discharge-coordination"
SOURCE = "careflow.ehr"
_numbers = itertools.count(8101)


@pytest.fixture(autouse=True)
def _leads():
    sb = sandbox()
    transport, pharmacy = dict(sb.transport_lead), dict(sb.pharmacy_lead)
    yield sb
    sb.transport_lead, sb.pharmacy_lead = transport, pharmacy


def _data(encounter_id: str, **more) -> dict:
    return {
        "encounter_id": encounter_id,
        "patient_id": f"MRN{encounter_id[1:]}",
        "patient_id_authority": "NVMC",
        **more,
    }


def pending(
    cloud,
    *,
    facility="fac-north",
    disposition="01",
    expected_in=timedelta(hours=4),
    payer: PayerRule | None = None,
    self_pay: bool = False,
):
    encounter_id = f"V{next(_numbers)}"
    key = f"encounter:{encounter_id}:A16"
    if payer is not None:  # the payer's answer to the post-acute authorization (the child's)
        sandbox().payer_rules[f"{instance_id_for(WORKFLOW, key)}-auth"] = payer
    if self_pay:
        sandbox().set_self_pay(encounter_id)
    expected = cloud.clock.now() + expected_in
    cloud.put_event(
        SOURCE,
        "Encounter.DischargePending",
        facility_id=facility,
        idempotency_key=key,
        data=_data(
            encounter_id, disposition=disposition, expected_discharge_at=expected.isoformat()
        ),
    )
    case = Case(cloud, encounter_id, instance_id_for(WORKFLOW, key), WORKFLOW).started()
    case.facility = facility  # type: ignore[attr-defined]
    case.expected = expected  # type: ignore[attr-defined]
    return case


def encounter_event(cloud, case_or_id, detail_type: str, facility="fac-north", **more) -> None:
    encounter_id = case_or_id if isinstance(case_or_id, str) else case_or_id.case_id
    verb = detail_type.rsplit(".", 1)[-1]
    cloud.put_event(
        SOURCE,
        detail_type,
        facility_id=facility,
        idempotency_key=f"encounter:{encounter_id}:{verb}",
        data=_data(encounter_id, **more),
    )


def discharged(cloud, case, facility="fac-north") -> None:
    encounter_event(
        cloud,
        case,
        "Encounter.Discharged",
        facility,
        discharged_at=cloud.clock.now().isoformat(),
        disposition="01",
    )
    case.wait_milestone("discharged")


def test_a_home_discharge_with_everything_in_time_ends_discharged_on_time(cloud):
    case = pending(cloud)
    case.wait_milestone("dependencies_arranged")
    assert {"transport_arranged", "pharmacy_arranged"} <= set(case.milestone_names())
    cloud.clock.advance(timedelta(hours=3, minutes=50))
    discharged(cloud, case)
    result = case.drive(step=timedelta(minutes=15))
    assert result["status"] == "SUCCEEDED", result
    instance = case.instance()
    assert (instance.status, instance.outcome) == (InstanceStatus.COMPLETED, "DISCHARGED")
    assert instance.outcome_reasons == ("on time",)
    assert not [a for a in case.store.audit_trail(case.instance_id) if a.action == "delay_recorded"]
    assert not case.tasks()


def test_a_threatened_discharge_escalates_to_the_charge_nurse_then_records_its_delays(
    cloud, _leads
):
    _leads.pharmacy_lead["fac-south"] = timedelta(minutes=15)
    # home health: transport (2 h at fac-south), meds, a walker (3 h) and the home-care
    # authorization (the prior authorization workflow: the payer approves at once), for a
    # discharge expected in 90 min
    case = pending(cloud, facility="fac-south", disposition="06", expected_in=timedelta(minutes=90))
    task = case.open_task()
    assert task.queue == "case_manager"
    assert task.escalation_chain == ("case_manager", "charge_nurse", "department_director")
    # nobody acts within the case manager's hour: the task goes up to the charge nurse
    advance_through_timer(cloud, timedelta(hours=1), case=case)
    task = case.open_task(level=1)
    assert task.queue == "charge_nurse"
    claim_and_complete(cloud, task, "ACCEPT_DELAY", actor="user:charge-rn-okeller")
    case.wait_milestone("case_manager_decided")
    # the coordination polls for the departure (AwaitDeparture, 15 min) before it comes
    poll = cloud.clock.wait_for_timer(timedelta(minutes=14), timedelta(minutes=15), timeout=20)
    assert poll is not None, "no departure poll started"
    cloud.clock.advance(timedelta(hours=3, minutes=30))
    discharged(cloud, case, "fac-south")
    result = case.drive(step=timedelta(minutes=15))
    assert result["status"] == "SUCCEEDED", result
    instance = case.instance()
    assert instance.outcome == "DISCHARGED"
    delays = {
        a.detail["dependency"]: (a.reason, a.detail["owner"], a.detail["minutes"])
        for a in case.store.audit_trail(case.instance_id)
        if a.action == "delay_recorded"
    }
    assert delays["transport"][:2] == ("awaiting transport", "case_manager")
    assert delays["dme"][:2] == ("DME", "case_manager")
    assert "pharmacy" not in delays and "post_acute_authorization" not in delays
    child = case.child()
    assert child.instance().outcome == "APPROVED"
    assert {
        "post_acute_authorization_requested",
        "post_acute_authorization_submitted",
        "post_acute_authorization_arranged",
        "billing_ready",
    } <= set(case.milestone_names())
    assert 25 <= delays["transport"][2] <= 35 and 85 <= delays["dme"][2] <= 95
    assert {
        "CaseManagerTask",
        "EscalateCaseManagerTask",
        "ApplyCaseManagerDecision",
        "AwaitDeparture",
    } <= (case.entered_states())


def test_a_payer_still_deciding_at_the_threat_line_threatens_the_discharge(cloud):
    """The snf authorization pends with the payer past the threat line: the branch stops
    waiting (the prior authorization goes on by itself) and a case manager is asked."""
    case = pending(
        cloud,
        disposition="03",
        expected_in=timedelta(hours=3),
        payer=PayerRule(AuthDecision.PENDED),  # the payer never answers
    )
    child = case.child().started()
    child.wait_milestone("pended")
    advance_through_timer(cloud, timedelta(hours=2, minutes=1))  # the threat line: 2 h
    task = case.open_task()
    assert any(
        "post_acute_authorization not arranged (PENDING) (no decision by the threat line" in r
        for r in task.reasons
    )
    assert cloud.describe(child.arn)["status"] == "RUNNING"  # the child goes on
    assert "post_acute_authorization_waiting" in case.milestone_names()
    sfn = cloud.client("stepfunctions")
    for arn in (case.arn, child.arn):  # leave no timers to the session's other tests
        sfn.stop_execution(executionArn=arn)


def test_a_self_pay_patient_leaves_on_time_with_billing_not_ready(cloud):
    """No coverage: the home-health authorization is a person's (threatening the time) and
    billing readiness is pending on patient financial services, which holds no one."""
    case = pending(cloud, disposition="06", self_pay=True, expected_in=timedelta(hours=6))
    task = case.open_task()
    assert any("no active coverage" in r for r in task.reasons)
    assert not any(r.startswith("billing") for r in task.reasons)
    claim_and_complete(cloud, task, "ACCEPT_DELAY", actor="user:casemgr-lrossi")
    case.wait_milestone("case_manager_decided")
    cloud.clock.advance(timedelta(hours=5))
    discharged(cloud, case)
    assert case.drive(step=timedelta(minutes=15))["status"] == "SUCCEEDED"
    instance = case.instance()
    assert instance.outcome == "DISCHARGED"
    assert any(
        r.startswith("billing not ready: no active coverage") for r in instance.outcome_reasons
    )
    assert "billing_not_ready" in case.milestone_names()
    assert "ObtainPostAcuteAuthorization" not in case.entered_states()


@pytest.mark.parametrize(
    "detail_type", ["Encounter.AdmitCancelled", "Encounter.DischargeCancelled"]
)
def test_a11_or_a13_stops_the_coordination(cloud, detail_type):
    case = pending(cloud)
    case.wait_milestone("dependencies_arranged")
    encounter_event(cloud, case, detail_type)
    result = case.finish()
    assert result["status"] == "ABORTED"
    cloud.wait_for(
        lambda: case.instance().status == InstanceStatus.CANCELLED, 10, "cancelled instance"
    )


def test_an_a03_before_its_a16_starts_nothing_and_is_kept_as_unrouted(cloud):
    encounter_id = f"V{next(_numbers)}"
    encounter_event(
        cloud,
        encounter_id,
        "Encounter.Discharged",
        discharged_at=cloud.clock.now().isoformat(),
    )
    store = wiring.store()

    def kept():
        return [
            p
            for p in store.parked_events()
            if p.detail_type == "Encounter.Discharged"
            and p.kind == "unrouted"
            and "no instance of discharge-coordination" in p.reason
        ]

    assert cloud.wait_for(kept, 10, "the early A03 kept as unrouted")
    assert store.get_subject(WORKFLOW, "fac-north", encounter_id) is None


def test_an_a13_after_the_a03_withdraws_the_departure_and_a_new_a16_starts_again(cloud):
    """The patient is back: the concluded instance is marked CANCELLED, so the departure
    leaves the discharged counts; the discharge planned again (a new A16, later than the
    A13) starts a second coordination for the encounter (docs/decisions.md 34)."""
    case = pending(cloud)
    case.wait_milestone("dependencies_arranged")
    discharged(cloud, case)
    assert case.drive(step=timedelta(minutes=15))["status"] == "SUCCEEDED"
    encounter_event(cloud, case, "Encounter.DischargeCancelled")
    cloud.wait_for(
        lambda: case.instance().status == InstanceStatus.CANCELLED, 10, "withdrawn departure"
    )
    case.wait_milestone("dischargecancelled")
    assert case.instance().outcome == "DISCHARGED"

    cloud.clock.advance(timedelta(hours=2))
    key = f"encounter:{case.case_id}:A16:again"
    cloud.put_event(
        SOURCE,
        "Encounter.DischargePending",
        facility_id="fac-north",
        idempotency_key=key,
        data=_data(
            case.case_id,
            disposition="01",
            expected_discharge_at=(cloud.clock.now() + timedelta(hours=4)).isoformat(),
        ),
    )
    again = Case(cloud, case.case_id, instance_id_for(WORKFLOW, key), WORKFLOW).started()
    assert again.instance_id != case.instance_id
    again.wait_milestone("dependencies_arranged")
    subject = wiring.store().get_subject(WORKFLOW, "fac-north", case.case_id)
    assert subject is not None and subject.instance_id == again.instance_id and subject.reopened
    assert "reopened" in {a.action for a in wiring.store().audit_trail(again.instance_id)}
    assert case.instance().status == InstanceStatus.CANCELLED  # the first keeps its end

    cloud.clock.advance(timedelta(minutes=5))
    cloud.put_event(
        SOURCE,
        "Encounter.AdmitCancelled",
        facility_id="fac-north",
        idempotency_key=f"encounter:{case.case_id}:A11:again",
        data=_data(case.case_id),
    )
    assert again.finish()["status"] == "ABORTED"


# -- the discharge delay model (decision 47) -----------------------------------------------
# What each disposition needs, as the enterprise discharge policy has it (the model's input).
_NEEDS = {
    "01": ("transport", "pharmacy", "billing"),
    "03": ("transport", "post_acute_authorization", "billing"),
    "06": ("transport", "pharmacy", "dme", "post_acute_authorization", "billing"),
}


def _risk(cloud, facility: str, disposition: str, expected_in: timedelta):
    """The committed artifact's prediction for a discharge pending now (LocalPredictor)."""
    from careflow.adapters.predictor_local import LocalPredictor
    from careflow.facilities import zone_of
    from careflow.workflows.discharge_coordination import model

    now = cloud.clock.now()
    features = model.features_of(
        disposition=disposition,
        needs=_NEEDS[disposition],
        ordered_at=now,
        expected_at=now + expected_in,
        time_zone=zone_of(facility).key,
    )
    return LocalPredictor().predict(model.MODEL.id, features)


def _riskiest(cloud, facility="fac-north"):
    """Of a few plausible discharges pending now, the one the model is surest will slip."""
    from careflow.workflows.discharge_coordination.model import ON_TIME

    found = [
        (prediction.confidence, disposition, expected_in, prediction)
        for disposition in ("01", "03", "06")
        for expected_in in (timedelta(hours=h) for h in (3, 4, 6, 8, 12, 20, 30))
        if (prediction := _risk(cloud, facility, disposition, expected_in)).label != ON_TIME
    ]
    assert found, "the model foresees no delay for any candidate discharge"
    _, disposition, expected_in, prediction = max(found, key=lambda f: f[0])
    return disposition, expected_in, prediction


def _early_task(case):
    from careflow.domain.tasks import task_id_for
    from careflow.workflows.discharge_coordination.steps import EARLY_PURPOSE

    def find():
        return case.store.get_task(task_id_for(case.instance_id, EARLY_PURPOSE))

    return case.cloud.wait_for(find, 20, f"early task on {case.case_id}")


def _ours(case, model_id="discharge_delay"):
    return [
        a for a in case.store.audit_trail(case.instance_id) if a.detail.get("model_id") == model_id
    ]


def test_a_foreseen_delay_opens_the_case_managers_task_at_once_and_the_flow_goes_on(cloud):
    """The model on at a threshold its surest candidate reaches: the case manager's task
    opens at the A16 with the likely cause, and nothing waits on it: the arrangements, the
    threat-line evaluation and the departure go on as the rules have them."""
    disposition, expected_in, prediction = _riskiest(cloud)
    threshold = max(0.0, int(prediction.confidence * 100 - 2) / 100)
    with ai_models(cloud, "discharge_delay", mode="on", threshold=threshold):
        case = pending(cloud, disposition=disposition, expected_in=expected_in)
        early = _early_task(case)
        assert early.reasons[0].startswith(f"likely delay: {prediction.label}")
        assert early.task_token is None  # informational: the execution never waits on it
        assert early.suggestion and early.suggestion["decision"] == "EXPEDITE"
        assert early.suggestion["version"] == prediction.version
        assert "discharge_at_risk" in case.milestone_names()
        # the usual flow, with the early task still open
        case.cloud.wait_for(
            lambda: {"dependencies_arranged", "discharge_threatened"} & set(case.milestone_names()),
            30,
            "the threat-line evaluation",
        )
        if "discharge_threatened" in case.milestone_names():
            claim_and_complete(cloud, case.open_task(), "ACCEPT_DELAY", actor="user:casemgr-lrossi")
            case.wait_milestone("case_manager_decided")
        assert case.store.get_task(early.task_id).status.value == "OPEN"
        cloud.clock.advance(expected_in)
        discharged(cloud, case)
        result = case.drive(step=timedelta(minutes=15))
    assert result["status"] == "SUCCEEDED", result
    assert case.instance().outcome == "DISCHARGED"
    assert not {"IsTheDischargeAtRisk", "EarlyCaseManagerTask"} & case.entered_states()
    predicted = [a for a in _ours(case) if a.action == "model.predicted"]
    assert [a.detail["version"] for a in predicted] == [prediction.version]


def test_the_case_managers_other_decision_on_the_early_task_is_an_override(cloud):
    """ACCEPT_DELAY on the early task (the model suggested EXPEDITE): the decision is the
    person's, audited as ``model.overridden`` with the model's version."""
    disposition, expected_in, prediction = _riskiest(cloud)
    threshold = max(0.0, int(prediction.confidence * 100 - 2) / 100)
    with ai_models(cloud, "discharge_delay", mode="on", threshold=threshold):
        case = pending(cloud, disposition=disposition, expected_in=expected_in)
        early = _early_task(case)
    done = claim_and_complete(cloud, early, "ACCEPT_DELAY", actor="user:casemgr-lrossi")
    assert done.decision == "ACCEPT_DELAY"
    reviews = [a for a in _ours(case) if a.action in ("model.accepted", "model.overridden")]
    assert [
        (a.action, a.detail["version"], a.detail["suggested"], a.detail["decided"]) for a in reviews
    ] == [("model.overridden", prediction.version, "EXPEDITE", "ACCEPT_DELAY")]
    assert any(
        a.action == "task_completed" and a.detail.get("decision") == "ACCEPT_DELAY"
        for a in case.store.audit_trail(case.instance_id)
    )
    cloud.client("stepfunctions").stop_execution(executionArn=case.arn)  # leave no timers


def test_the_delay_model_switched_off_leaves_the_discharge_to_the_rules(cloud):
    """The discharge_delay row off: no prediction, no early task, ``model.skipped``; the
    discharge runs as its rules have it (test 1's home discharge, on time)."""
    disposition, expected_in, _ = _riskiest(cloud)
    with ai_models(cloud, "discharge_delay", mode="off") as version:
        case = pending(cloud, disposition=disposition, expected_in=expected_in)
        case.cloud.wait_for(
            lambda: {"dependencies_arranged", "discharge_threatened"} & set(case.milestone_names()),
            30,
            "the threat-line evaluation",
        )
    ours = _ours(case)
    assert [a.action for a in ours] == ["model.skipped"]
    assert ours[0].policy_version == version
    assert "discharge_at_risk" not in case.milestone_names()
    assert not [t for t in case.tasks() if t.task_token is None]  # no informational task
    cloud.client("stepfunctions").stop_execution(executionArn=case.arn)  # leave no timers
