"""Surgical case readiness: the real ASL on the local cloud with the real handlers.

Every test books an appointment through EventBridge (the intake rule), so each
also proves the event → intake → Step Functions path. The last test checks that,
together, they entered every state of the machine.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, timedelta

import pytest

from careflow import wiring
from careflow.adapters.sandbox import HIP, SPINE, PayerRule, sandbox
from careflow.canonical.cases import Priority
from careflow.canonical.payer import AuthDecision
from careflow.domain.records import TaskStatus
from careflow.kit.registry import workflow as _workflow
from careflow.policies import FilePolicyStore, resolve
from tests.workflows.harness import Case, advance_through_timer, claim_and_complete, new_case

SURGICAL_CASE_READINESS = _workflow("surgical-case-readiness")
# fac-south's overlay of the surgical-readiness policy sets its coordinator task's SLA
SOUTH_TASK_SLA = timedelta(
    seconds=resolve("surgical-readiness", "fac-south", store=FilePolicyStore()).value(
        "coordinator_task_seconds"
    )
)

ENTERED: set[str] = set()


@pytest.fixture(scope="module")
def outcomes(cloud):
    """An SQS queue subscribed to the bus's Case.* events."""
    sqs, events = cloud.client("sqs"), cloud.client("events")
    url = sqs.create_queue(QueueName="test-case-outcomes")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="test-case-outcomes",
        EventBusName="careflow",
        EventPattern=json.dumps(
            {"source": ["careflow.workflow"], "detail-type": [{"prefix": "Case."}]}
        ),
    )
    events.put_targets(
        Rule="test-case-outcomes", EventBusName="careflow", Targets=[{"Id": "q", "Arn": arn}]
    )
    seen: list[dict] = []

    def for_instance(instance_id: str) -> list[dict]:
        def poll():
            for m in sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", []):
                seen.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            return [e for e in seen if e["detail"]["data"]["instance_id"] == instance_id]

        return cloud.wait_for(poll, 10, f"outcome event of {instance_id}")

    return for_instance


@pytest.fixture(autouse=True)
def _clean_faults():
    sandbox().clear_faults()
    yield
    sandbox().clear_faults()


def done(case: Case) -> None:
    ENTERED.update(case.entered_states())


def complete(cloud, task, decision, actor="user:coordinator-mdiaz", reason="checked"):
    return claim_and_complete(cloud, task, decision, actor=actor, reason=reason)


def test_all_clear_is_ready_with_milestones_and_a_case_ready_event(cloud, outcomes):
    case = new_case(cloud)
    out = case.output()
    assert out["outcome"] == "READY"
    assert case.instance().status.value == "READY"
    assert case.instance().service_line == "orthopedics"  # the case's (the harness seeds it)
    names = case.milestone_names()
    for expected in (
        "readiness_started",
        "authorization_submitted",
        "authorization_approved",
        "benefits_verified",
        "clinician_and_room_checked",
        "supplies_checked",
        "sterile_processing_checked",
        "readiness_evaluated",
        "case_ready",
    ):
        assert expected in names
    [event] = outcomes(case.instance_id)
    assert event["detail-type"] == "Case.Ready"
    assert event["detail"]["data"]["case_id"] == case.case_id
    assert event["detail"]["metadata"]["facility_id"] == "fac-north"
    assert case.tasks() == []
    done(case)


def test_a_pend_decided_after_two_days_is_ready_and_the_timestamps_show_it(cloud, outcomes):
    case = new_case(
        cloud, payer=PayerRule(AuthDecision.PENDED, timedelta(days=2), AuthDecision.APPROVED)
    )
    case.child().started().wait_milestone("pended")  # the child workflow waits on the payer
    cloud.clock.advance(timedelta(days=1))
    time.sleep(0.2)
    assert cloud.describe(case.arn)["status"] == "RUNNING"  # one day in, still waiting
    cloud.clock.advance(timedelta(days=1))
    assert case.output()["outcome"] == "READY"
    # the child's milestones, mirrored on the case's timeline at their own times
    pended = next(m for m in case.milestones() if m.name == "authorization_pended")
    approved = next(m for m in case.milestones() if m.name == "authorization_approved")
    assert approved.at - pended.at >= timedelta(days=2)
    assert approved.at - pended.at < timedelta(days=2, minutes=5)
    assert outcomes(case.instance_id)[0]["detail-type"] == "Case.Ready"
    done(case)


def test_a_pend_later_denied_is_blocked_with_a_follow_up_task(cloud, outcomes):
    case = new_case(
        cloud, payer=PayerRule(AuthDecision.PENDED, timedelta(hours=20), AuthDecision.DENIED)
    )
    case.child().started().wait_milestone("pended")
    cloud.clock.advance(timedelta(hours=21))
    out = case.output()
    assert out["outcome"] == "BLOCKED"
    assert "denied" in out["reasons"][0]
    [task] = case.tasks()
    assert (task.queue, task.task_token, task.status) == (
        "utilization_review_nurse",
        None,
        TaskStatus.OPEN,
    )
    assert outcomes(case.instance_id)[0]["detail-type"] == "Case.Blocked"
    done(case)


def test_an_expedited_72_hour_pend_runs_in_seconds_and_the_milestones_show_72_hours(cloud):
    started = time.monotonic()
    case = new_case(
        cloud, payer=PayerRule(AuthDecision.PENDED), priority=Priority.EXPEDITED, supplies=SPINE
    )
    child = case.child().started()
    child.wait_milestone("pended")
    for n in (1, 2, 3):  # the child inquires at 24 h, escalates at 48 h, expires at 72 h
        advance_through_timer(cloud, timedelta(hours=24), case=child)  # its own timer
        cloud.wait_for(lambda n=n: child.milestone_names().count("inquired") >= n, 20, "inquiry")
    task = case.open_task()
    complete(cloud, task, "RESCHEDULE", reason="payer silent")
    out = case.output()
    wall = time.monotonic() - started
    assert wall < 10, f"took {wall:.1f} s of wall time"
    pended, escalated, expired = (
        next(m for m in case.milestones() if m.name == f"authorization_{name}")
        for name in ("pended", "escalated", "clock_expired")
    )
    assert timedelta(hours=48) <= escalated.at - pended.at < timedelta(hours=48, minutes=1)
    assert timedelta(hours=72) <= expired.at - pended.at < timedelta(hours=72, minutes=1)
    assert out["outcome"] == "AT_RISK"
    assert any("72 h decision clock" in r for r in out["reasons"])
    assert {t.queue for t in case.tasks()} == {"care_coordinator"}
    # the child chased the payer: its escalation task, routed by the policy to surgery's queue
    assert {t.queue for t in child.tasks()} == {"utilization_review_surgery"}
    done(case)


def test_a_modified_authorization_is_at_risk_after_the_coordinator_proceeds(cloud, outcomes):
    case = new_case(
        cloud, payer=PayerRule(AuthDecision.PENDED, timedelta(hours=1), AuthDecision.MODIFIED)
    )
    case.child().started().wait_milestone("pended")
    cloud.clock.advance(timedelta(hours=2))
    task = case.open_task()
    assert task.queue == "care_coordinator"
    assert task.escalation_chain[1] == "utilization_review_nurse"
    complete(cloud, task, "PROCEED")
    out = case.output()
    assert out["outcome"] == "AT_RISK"
    assert any("modified" in r for r in out["reasons"])
    assert outcomes(case.instance_id)[0]["detail-type"] == "Case.AtRisk"
    done(case)


def test_an_implant_shortage_requisitions_escalates_and_the_recheck_decides(cloud):
    case = new_case(cloud, supplies=HIP, facility="fac-south", starts_in=timedelta(days=5))
    task = case.open_task()
    assert "requisition_created" in case.milestone_names()
    assert any("after the hard stop" in r for r in task.reasons)
    assert task.due_at == task.created_at + SOUTH_TASK_SLA
    assert (
        task.policy_version.startswith("surgical-readiness@") and "fac-south" in task.policy_version
    )
    advance_through_timer(cloud, SOUTH_TASK_SLA, case=case)
    escalated = case.open_task(level=1)
    assert escalated.task_id == task.task_id
    assert escalated.queue == "supply_chain_buyer"
    assert "task_escalated" in case.milestone_names()
    sandbox().transfer_stock("IMP-THA-STEM-12", 1, "fac-north", "fac-south")
    complete(cloud, escalated, "PROCEED", actor="user:buyer-jlee", reason="stem transferred")
    out = case.output()
    assert out["outcome"] == "READY"
    audit = [a.action for a in wiring.store().audit_trail(case.instance_id)]
    assert {
        "requisition_created",
        "task_escalated",
        "task_claimed",
        "task_completed",
        "outcome",
    } <= set(audit)
    sandbox().transfer_stock("IMP-THA-STEM-12", 1, "fac-south", "fac-north")
    done(case)


def test_a_shortage_task_ranks_the_actions_and_the_coordinators_other_choice_wins(cloud):
    from careflow.ml.registry import artifact

    case = new_case(cloud, supplies=HIP, facility="fac-south", starts_in=timedelta(days=5))
    task = case.open_task()
    suggestion = task.suggestion
    assert suggestion is not None and suggestion["model_id"] == "supply_disruption"
    actions = ["SUBSTITUTE", "TRANSFER", "EXPEDITE", "RESCHEDULE"]
    assert sorted(a for a, _ in suggestion["ranked"]) == sorted(actions)
    assert suggestion["decision"] == suggestion["ranked"][0][0]
    assert set(actions) <= set(task.allowed_decisions)
    assert any("suggested actions" in r and "supply_disruption" in r for r in task.reasons)
    other = next(a for a in ("EXPEDITE", "TRANSFER") if a != suggestion["decision"])
    complete(cloud, task, other, reason="the vendor confirmed")
    out = case.output()
    assert out["outcome"] == "AT_RISK"  # still short: the recheck finds no stock yet
    assert any(f"resolves the shortage: {other}" in r for r in out["reasons"])
    trail = wiring.store().audit_trail(case.instance_id)
    (overridden,) = [a for a in trail if a.action == "model.overridden"]
    assert overridden.detail["model_id"] == "supply_disruption"
    assert overridden.detail["version"] == artifact("supply_disruption")["version"]
    assert (overridden.detail["suggested"], overridden.detail["decided"]) == (
        suggestion["decision"],
        other,
    )
    done(case)


def test_a_task_nobody_answers_escalates_to_the_end_of_its_chain_then_is_at_risk(cloud):
    case = new_case(cloud, supplies=HIP, facility="fac-south", starts_in=timedelta(days=5))
    task = case.open_task()
    for level in range(1, len(task.escalation_chain) + 1):
        advance_through_timer(cloud, SOUTH_TASK_SLA, case=case)
        if level < len(task.escalation_chain):
            case.open_task(level=level)
    out = case.output()
    assert out["outcome"] == "AT_RISK"
    assert "no decision from the escalation chain before its last SLA" in out["reasons"]
    assert case.tasks()[0].queue == "department_director"
    done(case)


def test_the_coordinator_can_cancel_a_case(cloud, outcomes):
    case = new_case(cloud, supplies=HIP, facility="fac-south", starts_in=timedelta(days=5))
    complete(cloud, case.open_task(), "CANCEL", reason="patient withdrew")
    out = case.output()
    assert out["outcome"] == "BLOCKED"
    assert outcomes(case.instance_id)[0]["detail-type"] == "Case.Blocked"
    done(case)


def test_a_denial_is_blocked(cloud):
    case = new_case(cloud, payer=PayerRule(AuthDecision.DENIED))
    out = case.output()
    assert out["outcome"] == "BLOCKED"
    assert case.instance().outcome_reasons == tuple(out["reasons"])
    done(case)


def test_inactive_coverage_is_blocked(cloud):
    case = new_case(cloud, coverage_ref=None, auth_required=False)
    out = case.output()
    assert out["outcome"] == "BLOCKED"
    assert "coverage is not active: no coverage on file" in out["reasons"]
    done(case)


def test_connector_outages_are_retried_then_routed_to_a_person(cloud):
    for target in ("payer", "ehr.appointment_participants", "erp", "sterile"):
        sandbox().fault(target).fail_always = True
    case = new_case(cloud)
    task = None
    deadline = time.monotonic() + 30
    while task is None and time.monotonic() < deadline:
        cloud.clock.advance(timedelta(minutes=2))
        time.sleep(0.05)
        open_tasks = [t for t in case.tasks() if t.task_token]
        task = open_tasks[0] if open_tasks else None
    assert task is not None, "the failed checks never reached a person"
    failed = [m.name for m in case.milestones() if m.status == "FAILED"]
    assert set(failed) >= {
        "authorization_check_failed",
        "benefits_check_failed",
        "clinician_and_room_check_failed",
        "supplies_check_failed",
        "sterile_processing_check_failed",
    }
    assert any("ConnectorUnavailable" in r for r in task.reasons)
    history = case.history()
    failures = [e for e in history if e["type"] == "LambdaFunctionFailed"]
    assert len(failures) == 4 * 4  # four checks, each tried once and retried three times
    # the fifth, the authorization, failed the same way inside its child workflow
    child_failures = [e for e in case.child().history() if e["type"] == "LambdaFunctionFailed"]
    assert len(child_failures) == 4
    sandbox().clear_faults()
    complete(cloud, task, "PROCEED")
    out = case.output()
    assert out["outcome"] == "AT_RISK"  # authorization cannot be re-checked by hand here
    done(case)


def test_a_failed_recheck_keeps_the_case_at_risk(cloud):
    case = new_case(cloud, supplies=HIP, facility="fac-south", starts_in=timedelta(days=5))
    task = case.open_task()
    sandbox().fault("erp").fail_always = True
    complete(cloud, task, "PROCEED")
    d = case.drive()
    assert d["status"] == "SUCCEEDED"
    assert json.loads(d["output"])["outcome"] == "AT_RISK"
    done(case)


def test_a_payer_that_fails_the_pend_routes_to_a_person(cloud):
    case = new_case(cloud, payer=PayerRule(AuthDecision.PENDED))
    child = case.child().started()
    child.wait_milestone("pended")
    waiting = cloud.wait_for(
        lambda: wiring.store().take_wait(f"PA-{case.case_id}"), 10, "the parked token"
    )
    sandbox().fault("payer.inquire").fail_always = True  # the payer stops answering
    try:
        wiring.engine().send_task_failure(waiting[0], "PayerRejected", "payer withdrew it")
        deadline = time.monotonic() + 30
        while child.instance().outcome is None and time.monotonic() < deadline:
            cloud.clock.advance(timedelta(minutes=2))  # through the inquiry's retries
            time.sleep(0.05)
    finally:
        sandbox().fault("payer.inquire").fail_always = False
    assert child.instance().outcome == "ERROR"
    task = case.open_task()
    assert any("authorization check failed" in r for r in task.reasons)
    engine_sfn = cloud.client("stepfunctions")
    engine_sfn.send_task_failure(taskToken=task.task_token, error="InboxClosed", cause="test")
    out = case.output()
    assert out["outcome"] == "AT_RISK"
    done(case)


def test_a_case_without_coverage_is_not_sent_for_authorization_and_is_blocked(cloud):
    case = new_case(cloud, coverage_ref=None, payer_id=None)
    out = case.output()
    assert out["outcome"] == "BLOCKED"  # no active coverage: benefits block the case
    assert any("NoCoverageOnTheCase" in r for r in out["reasons"])  # nothing asked of a payer
    assert "authorization_check_failed" in case.milestone_names()
    assert not any(e["type"] == "TaskSubmitted" for e in case.history())  # no child started
    done(case)


def test_an_unknown_appointment_fails_the_execution_loudly(cloud):
    case = new_case(cloud, book=False)
    cloud.book_appointment(
        "appt-0000",
        case.cloud.clock.now() + timedelta(days=3),
        "fac-north",
        idempotency_key="appointment:appt-0000:booked",
    )
    from careflow.domain.intake import instance_id_for

    missing = Case(
        cloud,
        "appt-0000",
        instance_id_for("surgical-case-readiness", "appointment:appt-0000:booked"),
    )
    d = missing.finish()
    assert d["status"] == "FAILED"
    assert d["error"] == "CaseNotRegistered"
    done(missing)


def test_a_declined_surgeon_and_a_missing_tray_are_at_risk(cloud):
    from careflow.canonical.cases import Participant, ParticipantStatus

    case = new_case(cloud, trays=("TRAY-LOST-9",), book=False)
    sb = sandbox()
    with sb.lock:
        sb.participants[case.case_id][0] = Participant(
            role="surgeon", ref="Practitioner/dr-okafor", status=ParticipantStatus.DECLINED
        )

    cloud.book_appointment(
        case.case_id,
        sb.cases[case.case_id].scheduled_start,
        "fac-north",
        idempotency_key=f"appointment:{case.case_id}:booked",
    )
    task = case.open_task()
    assert any("declined" in r for r in task.reasons)
    assert "tray TRAY-LOST-9 is missing" in task.reasons
    assert task.escalation_chain == (
        "care_coordinator",
        "scheduler",
        "sterile_processing_lead",
        "department_director",
    )
    complete(cloud, task, "RESCHEDULE")
    assert case.output()["outcome"] == "AT_RISK"
    done(case)


def test_zz_every_state_of_the_machine_was_entered(cloud):
    definition = SURGICAL_CASE_READINESS.expanded()

    def names(d):
        for name, state in d["States"].items():
            yield name
            for branch in state.get("Branches", []):
                yield from names(branch)

    all_states = set(names(definition))
    assert all_states - ENTERED == set()


def test_an_siu_s12_over_mllp_starts_readiness_as_the_fhir_event_does(cloud):
    """An interface engine's SIU S12 (HL7 v2.5.1 over real MLLP, the facility by its HL7
    name) starts the same workflow, for the same case, as the FHIR booking event."""
    from careflow.adapters.hl7v2.mllp import MllpServer, send
    from careflow.adapters.hl7v2.mllp_service import handler

    case = new_case(cloud, book=False)
    start = sandbox().cases[case.case_id].scheduled_start.astimezone(UTC)
    s12 = (
        f"MSH|^~\\&|ORSCHED|NVMC|CAREFLOW|CAREFLOW|{start:%Y%m%d%H%M%S}+0000||SIU^S12^SIU_S12|"
        f"S12-{case.case_id}|P|2.5.1\r"
        f"SCH|{case.case_id}|{case.case_id}|||||||||^^^{start:%Y%m%d%H%M%S}+0000\r"
        "PID|1||MRN-S12^^^NVMC^MR||DOE^JANE\r"
        "RGS|1\r"
        f"AIS|1||27447^Total knee arthroplasty^CPT|{start:%Y%m%d%H%M%S}+0000\r"
    )
    with MllpServer(0, handler()) as listener:
        [ack] = send("127.0.0.1", listener.port, [s12])
    msa = next(s for s in ack.split("\r") if s.startswith("MSA")).split("|")
    assert msa[1:3] == ["AA", f"S12-{case.case_id}"]
    store = wiring.store()
    instance = cloud.wait_for(
        lambda: next(iter(store.instances_for_subject("case", case.case_id)), None),
        20,
        "the S12's instance",
    )
    assert (instance.workflow_id, instance.facility_id) == (
        SURGICAL_CASE_READINESS.id,
        "fac-north",
    )
    assert instance.scheduled_start == start
    instance_id = instance.instance_id
    cloud.wait_for(
        lambda: "readiness_evaluated" in {m.name for m in store.milestones(instance_id)},
        30,
        "the S12 case evaluated",
    )
