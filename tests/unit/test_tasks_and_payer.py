"""Human tasks (open, escalate, claim, complete) and the payer's decision callback."""

from datetime import UTC, datetime, timedelta

import pytest

from careflow.canonical.payer import AuthDecision, PriorAuthResponse
from careflow.domain.payer_decisions import DecisionMismatch, resume_on_decision
from careflow.domain.records import TaskStatus
from careflow.domain.tasks import TaskError, claim_task, complete_task, escalate_task, open_task
from careflow.events.envelope import EnvelopeError
from careflow.ports import ConnectorUnavailable
from tests.fakes import FakeEngine, FakePayer, FakePublisher, InMemoryStateStore

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def opened(store, publisher, token="tok-1", decisions=("PROCEED", "CANCEL")):
    return open_task(
        store,
        publisher,
        instance_id="i-1",
        workflow_id="surgical-case-readiness",
        facility_id="fac-north",
        purpose="coordinator",
        title="Case at risk",
        reasons=("implant short",),
        subject_ref="case/appt-1",
        escalation_chain=("care_coordinator", "supply_chain_buyer", "department_director"),
        due_in_seconds=4 * 3600,
        token=token,
        allowed_decisions=decisions,
        now=NOW,
    )


@pytest.fixture
def world():
    return InMemoryStateStore(), FakePublisher(), FakeEngine()


def test_opening_a_task_records_due_time_milestone_audit_and_event(world):
    store, pub, _ = world
    task = opened(store, pub)
    assert task.queue == "care_coordinator"
    assert task.due_at == NOW + timedelta(hours=4)
    assert store.open_tasks("care_coordinator", "fac-north") == [task]
    assert [m.name for m in store.milestones("i-1")] == ["task_opened"]
    assert store.audit_trail("i-1")[0].action == "task_opened"
    assert pub.types() == ["HumanTask.Opened"]


def test_escalation_moves_the_task_up_the_chain_and_reopening_keeps_its_id(world):
    store, pub, _ = world
    task = opened(store, pub)
    escalated = escalate_task(store, pub, task_id=task.task_id, now=NOW + timedelta(hours=4))
    assert (escalated.queue, escalated.escalation_level, escalated.task_token) == (
        "supply_chain_buyer",
        1,
        None,
    )
    assert store.open_tasks("care_coordinator", "fac-north") == []
    reopened = opened(store, pub, token="tok-2")
    assert reopened.task_id == task.task_id
    assert reopened.task_token == "tok-2"
    assert reopened.queue == "supply_chain_buyer"
    assert "Workflow.Escalated" in pub.types()


def test_escalation_stays_at_the_top_of_the_chain(world):
    store, pub, _ = world
    task = opened(store, pub)
    for _ in range(4):
        task = escalate_task(store, pub, task_id=task.task_id, now=NOW)
    assert task.queue == "department_director"
    assert task.escalation_level == 4


def test_completing_resumes_the_execution_with_the_decision_and_audits_it(world):
    store, pub, engine = world
    task = opened(store, pub)
    done = complete_task(
        store,
        engine,
        task_id=task.task_id,
        actor="user:nurse-1",
        decision="PROCEED",
        reason="loaner tray arranged",
        now=NOW,
    )
    assert done.status is TaskStatus.COMPLETED
    assert engine.successes == [
        (
            "tok-1",
            {
                "task_id": task.task_id,
                "decision": "PROCEED",
                "actor": "user:nurse-1",
                "note": "loaner tray arranged",
            },
        )
    ]
    audit = store.audit_trail("i-1")[-1]
    assert (audit.actor, audit.action, audit.reason, audit.policy_version) == (
        "user:nurse-1",
        "task_completed",
        "loaner tray arranged",
        "v1",
    )


def test_a_decision_outside_the_allowed_ones_is_refused(world):
    store, pub, engine = world
    task = opened(store, pub)
    with pytest.raises(TaskError) as err:
        complete_task(
            store, engine, task_id=task.task_id, actor="u", decision="MAYBE", reason="", now=NOW
        )
    assert err.value.kind == "invalid"
    assert engine.successes == []


def test_a_task_completes_once(world):
    store, pub, engine = world
    task = opened(store, pub)
    complete_task(
        store, engine, task_id=task.task_id, actor="u", decision="PROCEED", reason="", now=NOW
    )
    with pytest.raises(TaskError) as err:
        complete_task(
            store, engine, task_id=task.task_id, actor="u", decision="PROCEED", reason="", now=NOW
        )
    assert err.value.kind == "conflict"
    assert len(engine.successes) == 1


def test_a_claimed_task_belongs_to_its_claimant(world):
    store, pub, engine = world
    task = opened(store, pub)
    claim_task(store, task_id=task.task_id, actor="user:a", now=NOW)
    with pytest.raises(TaskError, match="claimed by someone else"):
        complete_task(
            store,
            engine,
            task_id=task.task_id,
            actor="user:b",
            decision="PROCEED",
            reason="",
            now=NOW,
        )
    with pytest.raises(TaskError):
        claim_task(store, task_id=task.task_id, actor="user:b", now=NOW)


def test_completing_a_task_whose_execution_stopped_waiting_closes_it(world):
    store, pub, engine = world
    task = opened(store, pub)
    engine.stale.add("tok-1")
    with pytest.raises(TaskError, match="stopped waiting"):
        complete_task(
            store, engine, task_id=task.task_id, actor="u", decision="PROCEED", reason="", now=NOW
        )
    assert store.get_task(task.task_id).status is TaskStatus.CLOSED


def test_unknown_task_is_not_found(world):
    store, _, engine = world
    with pytest.raises(TaskError) as err:
        complete_task(store, engine, task_id="nope", actor="u", decision="X", reason="", now=NOW)
    assert err.value.kind == "not_found"


def decided(ref="PA-1", decision="APPROVED"):
    return {
        "source": "careflow.payer",
        "detail-type": "PriorAuth.Decided",
        "detail": {
            "metadata": {
                "event_id": "e",
                "idempotency_key": "k",
                "facility_id": "payer",
                "occurred_at": NOW.isoformat(),
                "schema_version": "1.0",
                "correlation_id": "c",
            },
            "data": {"preauth_ref": ref, "decision": decision, "decided_at": NOW.isoformat()},
        },
    }


def payer_says(decision: AuthDecision, ref: str = "PA-1", **kw) -> FakePayer:
    return FakePayer(inquiries={ref: PriorAuthResponse(decision=decision, preauth_ref=ref, **kw)})


def test_a_payer_decision_resumes_the_waiting_execution_with_the_payers_answer(world):
    store, _, engine = world
    store.put_wait("PA-1", "tok-9", "i-1", NOW)
    payer = payer_says(AuthDecision.APPROVED)
    out = resume_on_decision(decided(), store=store, engine=engine, payer=payer, now=NOW)
    assert out["status"] == "resumed"
    assert payer.inquired == ["PA-1"]  # one $inquire per signal
    token, answer = engine.successes[0]
    assert token == "tok-9"
    assert (answer["decision"], answer["verified"]) == ("APPROVED", True)
    assert store.take_wait("PA-1") is None
    assert [a.action for a in store.audit] == ["payer_decided"]


def test_a_forged_approval_while_the_payer_still_pends_resumes_nothing_and_is_audited(world):
    store, _, engine = world
    store.put_wait("PA-1", "tok-9", "i-1", NOW)
    payer = payer_says(AuthDecision.PENDED)
    out = resume_on_decision(decided(), store=store, engine=engine, payer=payer, now=NOW)
    assert out["status"] == "still_pended"
    assert engine.successes == []  # nothing approved
    assert store.peek_wait("PA-1") == ("tok-9", "i-1")  # still waiting on its own clock
    (audit,) = store.audit_trail("i-1")
    assert audit.action == "payer_decision_mismatch"
    assert audit.detail == {
        "preauth_ref": "PA-1",
        "event_id": "e",
        "claimed": "APPROVED",
        "payer": "PENDED",
    }
    # the payer's real decision afterwards still resumes it, with what the payer says
    payer.inquiries["PA-1"] = PriorAuthResponse(decision=AuthDecision.DENIED, preauth_ref="PA-1")
    out = resume_on_decision(
        decided(decision="DENIED"), store=store, engine=engine, payer=payer, now=NOW
    )
    assert out["status"] == "resumed"
    assert engine.successes[0][1]["decision"] == "DENIED"
    assert payer.inquired == ["PA-1", "PA-1"]


def test_a_forged_approval_of_a_denial_resumes_with_the_denial(world):
    store, _, engine = world
    store.put_wait("PA-1", "tok-9", "i-1", NOW)
    payer = payer_says(AuthDecision.DENIED)
    resume_on_decision(decided(), store=store, engine=engine, payer=payer, now=NOW)
    answer = engine.successes[0][1]
    assert (answer["decision"], answer["claimed"]) == ("DENIED", "APPROVED")
    assert [a.action for a in store.audit] == ["payer_decision_mismatch", "payer_decided"]


def test_an_answer_with_conformance_problems_travels_to_the_workflow(world):
    store, _, engine = world
    store.put_wait("PA-1", "tok-9", "i-1", NOW)
    payer = payer_says(AuthDecision.APPROVED, conformance=("Bundle.timestamp is missing",))
    resume_on_decision(decided(), store=store, engine=engine, payer=payer, now=NOW)
    assert engine.successes[0][1]["conformance"] == ["Bundle.timestamp is missing"]


def test_a_decision_that_overtakes_the_workflow_is_kept_for_it_as_the_payer_says_it(world):
    store, _, engine = world
    payer = payer_says(AuthDecision.DENIED)
    out = resume_on_decision(
        decided(decision="DENIED"), store=store, engine=engine, payer=payer, now=NOW
    )
    assert out["status"] == "kept"
    kept = store.take_early_answer("PA-1")
    assert (kept["decision"], kept["verified"]) == ("DENIED", True)


def test_a_forged_decision_nobody_waits_on_is_parked_with_its_reason(world):
    store, _, engine = world
    payer = payer_says(AuthDecision.PENDED)
    with pytest.raises(DecisionMismatch) as err:
        resume_on_decision(decided(), store=store, engine=engine, payer=payer, now=NOW)
    assert err.value.reason.startswith("payer_decision_mismatch:")
    assert store.answers == {}


def test_a_decision_on_an_authorization_the_payer_does_not_know_is_refused(world):
    store, _, engine = world
    store.put_wait("PA-1", "tok-9", "i-1", NOW)
    with pytest.raises(EnvelopeError, match="resolves no authorization"):
        resume_on_decision(decided(), store=store, engine=engine, payer=FakePayer(), now=NOW)
    assert engine.successes == [] and store.peek_wait("PA-1") is not None


def test_a_payer_that_is_down_fails_the_signal_for_a_retry(world):
    store, _, engine = world

    class Down(FakePayer):
        def inquire(self, preauth_ref):
            raise ConnectorUnavailable("payer down")

    with pytest.raises(ConnectorUnavailable):
        resume_on_decision(decided(), store=store, engine=engine, payer=Down(), now=NOW)


def test_a_decision_event_of_the_wrong_shape_is_rejected(world):
    store, _, engine = world
    bad = decided()
    bad["detail"]["data"]["decision"] = "PENDED"
    with pytest.raises(EnvelopeError):
        resume_on_decision(bad, store=store, engine=engine, payer=FakePayer(), now=NOW)


def test_a_decision_event_without_an_authorization_reference_is_refused_not_a_null(world):
    """A notification whose focus gave no authorization number becomes an event the
    handler parks with its reason (the field), never a decision for nobody."""
    store, _, engine = world
    bad = decided()
    bad["detail"]["data"]["preauth_ref"] = None
    payer = payer_says(AuthDecision.APPROVED)
    with pytest.raises(EnvelopeError) as err:
        resume_on_decision(bad, store=store, engine=engine, payer=payer, now=NOW)
    assert "preauth_ref" in err.value.reason
    assert payer.inquired == [] and engine.successes == []
