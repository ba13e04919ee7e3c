"""Human tasks (open, escalate, claim, release, reassign, complete, acknowledge: who may, and
when) and the payer's decision callback."""

from datetime import UTC, datetime, timedelta

import pytest

from careflow.canonical.payer import AuthDecision, PriorAuthResponse
from careflow.domain.payer_decisions import DecisionMismatch, resume_on_decision
from careflow.domain.records import TaskStatus
from careflow.domain.tasks import (
    ACKNOWLEDGED,
    TaskError,
    acknowledge_task,
    claim_task,
    complete_task,
    escalate_task,
    open_task,
    queue_roles,
    reassign_task,
    release_task,
)
from careflow.events.envelope import EnvelopeError
from careflow.policies import FilePolicyStore, SnapshotVersion, resolve
from careflow.ports import ConnectorUnavailable
from tests.fakes import (
    TASK_POLICY_VERSION,
    FakeEngine,
    FakePayer,
    FakePublisher,
    InMemoryStateStore,
    task_directory,
    task_policies,
)

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
POLICIES = task_policies()
PEOPLE = task_directory()


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
        policy_version=TASK_POLICY_VERSION,
    )


def claim(store, task, actor="user:cc-1"):
    return claim_task(
        store, task_id=task.task_id, actor=actor, now=NOW, policies=POLICIES, directory=PEOPLE
    )


def complete(store, engine, task, actor="user:cc-1", decision="PROCEED", reason=""):
    return complete_task(
        store,
        engine,
        task_id=task.task_id,
        actor=actor,
        decision=decision,
        reason=reason,
        now=NOW,
        policies=POLICIES,
        directory=PEOPLE,
    )


def reassign(store, task, actor, to, reason="covering"):
    return reassign_task(
        store,
        task_id=task.task_id,
        actor=actor,
        to=to,
        reason=reason,
        now=NOW,
        policies=POLICIES,
        directory=PEOPLE,
    )


def refused(kind, fn, *args, **kwargs):
    with pytest.raises(TaskError) as err:
        fn(*args, **kwargs)
    assert err.value.kind == kind, err.value
    return str(err.value)


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


def test_escalation_drops_the_claim_and_the_next_queue_claims_afresh(world):
    store, pub, engine = world
    task = claim(store, opened(store, pub))
    escalate_task(store, pub, task_id=task.task_id, now=NOW)
    opened(store, pub, token="tok-2")
    assert store.audit_trail("i-1")[-1].detail["claim_released"] == "user:cc-1"
    refused("forbidden", complete, store, engine, task)  # no longer the coordinator's queue
    claim(store, task, "user:buyer-1")
    assert complete(store, engine, task, "user:buyer-1").status is TaskStatus.COMPLETED


def test_the_claimant_completes_and_the_execution_resumes_with_the_decision_audited(world):
    store, pub, engine = world
    task = opened(store, pub)
    claim(store, task)
    done = complete(store, engine, task, reason="loaner tray arranged")
    assert done.status is TaskStatus.COMPLETED
    assert (done.decision, done.completed_by) == ("PROCEED", "user:cc-1")
    assert engine.successes == [
        (
            "tok-1",
            {
                "task_id": task.task_id,
                "decision": "PROCEED",
                "actor": "user:cc-1",
                "note": "loaner tray arranged",
            },
        )
    ]
    claimed, completed = store.audit_trail("i-1")[-2:]
    assert (claimed.actor, claimed.action, claimed.at, claimed.policy_version) == (
        "user:cc-1",
        "task_claimed",
        NOW,
        TASK_POLICY_VERSION,
    )
    assert (completed.actor, completed.action, completed.reason, completed.policy_version) == (
        "user:cc-1",
        "task_completed",
        "loaner tray arranged",
        TASK_POLICY_VERSION,
    )
    assert completed.detail == {
        "task_id": task.task_id,
        "queue": "care_coordinator",
        "role": "care_coordinator",
        "decision": "PROCEED",
    }


@pytest.mark.parametrize("actor", ["", "   "])
def test_an_empty_actor_is_forbidden_and_the_refusal_audited(world, actor):
    store, pub, engine = world
    task = opened(store, pub)
    says = refused("forbidden", claim, store, task, actor)
    assert says == f"Task {task.task_id} can only be worked by a named person (user:<id>)."
    refused("forbidden", complete, store, engine, task, actor)
    audit = store.audit_trail("i-1")[-1]
    assert (audit.actor, audit.action, audit.detail["attempted"]) == (
        "(none)",
        "task_refused",
        "complete",
    )
    assert engine.successes == []


@pytest.mark.parametrize("actor", ["user:buyer-1", "user:nobody", "system:sla-timer"])
def test_an_actor_whose_roles_may_not_work_the_queue_is_forbidden(world, actor):
    store, pub, engine = world
    task = opened(store, pub)
    says = refused("forbidden", claim, store, task, actor)
    assert says == (
        f"{actor} holds no role that may work queue care_coordinator "
        f"under policy {TASK_POLICY_VERSION}."
    )
    assert "Case at risk" not in says and "implant" not in says  # no title, no reasons
    claim(store, task)  # a coordinator's claim does not let anyone else complete it
    refused("forbidden", complete, store, engine, task, actor)
    assert store.get_task(task.task_id).status is TaskStatus.CLAIMED
    assert [a.action for a in store.audit_trail("i-1")].count("task_refused") == 2


def test_a_supervising_role_does_not_by_itself_work_the_queue(world):
    store, pub, _ = world
    refused("forbidden", claim, store, opened(store, pub), "user:cc-lead")


def test_a_queue_the_pinned_policy_does_not_name_is_worked_by_nobody(world):
    store, pub, _ = world
    task = store.update_task(opened(store, pub).model_copy(update={"queue": "ghost_queue"}))
    assert "queue ghost_queue" in refused("forbidden", claim, store, task)
    unpinned = store.update_task(task.model_copy(update={"policy_version": "v1"}))
    refused("forbidden", claim, store, unpinned)


def test_a_decision_outside_the_allowed_ones_is_invalid(world):
    store, pub, engine = world
    task = claim(store, opened(store, pub))
    says = refused("invalid", complete, store, engine, task, decision="MAYBE")
    assert says == "The decision must be one of PROCEED, CANCEL."
    refused("invalid", complete, store, engine, task, decision=ACKNOWLEDGED)
    assert engine.successes == []


def test_a_task_that_offers_no_decision_takes_an_acknowledgement_not_proceed(world):
    store, pub, engine = world
    task = claim(store, opened(store, pub, token=None, decisions=()))
    says = refused("invalid", complete, store, engine, task, decision="PROCEED")
    assert says == f"Task {task.task_id} offers no decision: acknowledge it (ACKNOWLEDGED)."
    done = acknowledge_task(
        store,
        engine,
        task_id=task.task_id,
        actor="user:cc-1",
        reason="payer called",
        now=NOW,
        policies=POLICIES,
        directory=PEOPLE,
    )
    assert (done.status, done.decision) == (TaskStatus.COMPLETED, ACKNOWLEDGED)
    audit = store.audit_trail("i-1")[-1]
    assert (audit.action, audit.reason, audit.detail["decision"]) == (
        "task_acknowledged",
        "payer called",
        ACKNOWLEDGED,
    )
    assert engine.successes == []  # nothing waited on it


def test_acknowledging_a_task_that_needs_a_decision_is_invalid(world):
    store, pub, engine = world
    task = claim(store, opened(store, pub))
    refused(
        "invalid",
        acknowledge_task,
        store,
        engine,
        task_id=task.task_id,
        actor="user:cc-1",
        reason="",
        now=NOW,
        policies=POLICIES,
        directory=PEOPLE,
    )


def test_completing_an_unclaimed_task_is_a_conflict(world):
    store, pub, engine = world
    task = opened(store, pub)
    says = refused("conflict", complete, store, engine, task)
    assert says == f"Task {task.task_id} is not claimed: claim it before you complete it."
    assert store.get_task(task.task_id).status is TaskStatus.OPEN
    assert engine.successes == []


def test_a_claimed_task_belongs_to_its_claimant(world):
    store, pub, engine = world
    task = opened(store, pub)
    claim(store, task, "user:cc-1")
    assert claim(store, task, "user:cc-1").claimed_by == "user:cc-1"  # again: no change
    says = refused("conflict", complete, store, engine, task, "user:cc-2")
    assert says == f"Task {task.task_id} is claimed by another person."
    refused("conflict", claim, store, task, "user:cc-2")
    assert [a.action for a in store.audit_trail("i-1")].count("task_claimed") == 1


def test_a_claim_that_loses_a_race_is_a_conflict(world, monkeypatch):
    store, pub, _ = world
    task = opened(store, pub)
    read_before_the_winner_wrote = store.get_task(task.task_id)
    claim(store, task, "user:cc-2")
    monkeypatch.setattr(store, "get_task", lambda task_id: read_before_the_winner_wrote)
    says = refused("conflict", claim, store, task, "user:cc-1")
    assert says == f"Task {task.task_id} changed meanwhile; read it again and retry."
    assert store.tasks[task.task_id].claimed_by == "user:cc-2"


def test_a_task_completes_once(world):
    store, pub, engine = world
    task = claim(store, opened(store, pub))
    complete(store, engine, task)
    refused("conflict", complete, store, engine, task)
    refused("conflict", claim, store, task, "user:cc-2")
    assert len(engine.successes) == 1


def test_a_supervisor_reassigns_a_claimed_task_and_the_new_claimant_completes(world):
    store, pub, engine = world
    task = claim(store, opened(store, pub), "user:cc-1")
    moved = reassign(store, task, "user:cc-lead", "user:cc-2", reason="cc-1 off shift")
    assert (moved.status, moved.claimed_by) == (TaskStatus.CLAIMED, "user:cc-2")
    audit = store.audit_trail("i-1")[-1]
    assert (audit.actor, audit.action, audit.reason, audit.policy_version) == (
        "user:cc-lead",
        "task_reassigned",
        "cc-1 off shift",
        TASK_POLICY_VERSION,
    )
    assert audit.detail == {
        "task_id": task.task_id,
        "queue": "care_coordinator",
        "role": "cc_lead",
        "previous": "user:cc-1",
        "to": "user:cc-2",
    }
    refused("conflict", complete, store, engine, task, "user:cc-1")
    assert complete(store, engine, task, "user:cc-2").completed_by == "user:cc-2"


def test_a_supervisor_assigns_an_open_task(world):
    store, pub, _ = world
    task = opened(store, pub)
    assert reassign(store, task, "user:cc-lead", "user:cc-1").claimed_by == "user:cc-1"
    assert store.audit_trail("i-1")[-1].detail["previous"] is None


def test_the_claimant_hands_a_task_over(world):
    store, pub, _ = world
    task = claim(store, opened(store, pub), "user:cc-1")
    moved = reassign(store, task, "user:cc-1", "user:cc-2")
    assert moved.claimed_by == "user:cc-2"
    assert store.audit_trail("i-1")[-1].detail["role"] == "claimant"


def test_reassigning_needs_the_claimant_or_a_supervisor_and_an_assignee_who_may_work_it(world):
    store, pub, _ = world
    task = claim(store, opened(store, pub), "user:cc-1")
    says = refused("forbidden", reassign, store, task, "user:cc-2", "user:cc-2")
    assert says == (
        "user:cc-2 holds no role that may supervise queue care_coordinator "
        f"under policy {TASK_POLICY_VERSION}."
    )
    says = refused("forbidden", reassign, store, task, "user:cc-lead", "user:buyer-1")
    assert says.startswith("user:buyer-1 holds no role that may work queue care_coordinator")
    refused("forbidden", reassign, store, task, "user:cc-lead", "")
    assert store.get_task(task.task_id).claimed_by == "user:cc-1"


def test_release_by_the_claimant_or_a_supervisor_puts_the_task_back_in_its_queue(world):
    store, pub, _ = world
    task = claim(store, opened(store, pub), "user:cc-1")

    def release(actor):
        return release_task(
            store,
            task_id=task.task_id,
            actor=actor,
            now=NOW,
            reason="",
            policies=POLICIES,
            directory=PEOPLE,
        )

    refused("forbidden", release, "user:cc-2")
    back = release("user:cc-1")
    assert (back.status, back.claimed_by) == (TaskStatus.OPEN, None)
    assert store.audit_trail("i-1")[-1].action == "task_released"
    refused("conflict", release, "user:cc-1")  # not claimed any more
    claim(store, task, "user:cc-2")
    release("user:cc-lead")
    assert store.audit_trail("i-1")[-1].detail == {
        "task_id": task.task_id,
        "queue": "care_coordinator",
        "role": "cc_lead",
        "previous": "user:cc-2",
    }


def test_completing_a_task_whose_execution_stopped_waiting_closes_it(world):
    store, pub, engine = world
    task = claim(store, opened(store, pub))
    engine.stale.add("tok-1")
    with pytest.raises(TaskError, match="stopped waiting"):
        complete(store, engine, task)
    assert store.get_task(task.task_id).status is TaskStatus.CLOSED


def test_unknown_task_is_not_found(world):
    store, _, engine = world
    with pytest.raises(TaskError) as err:
        complete_task(
            store,
            engine,
            task_id="nope",
            actor="user:cc-1",
            decision="X",
            reason="",
            now=NOW,
            policies=POLICIES,
        )
    assert err.value.kind == "not_found"


def test_every_queue_a_packaged_policy_can_route_to_has_roles_that_may_work_it():
    """The queues the packaged policies name (values, table outputs, their overlays) and the
    surgical readiness step's own informational chain each have ``queue_roles``."""
    files = FilePolicyStore()
    step_chain = {"utilization_review_nurse", "scheduler", "department_director"}
    for name, facility in (
        ("surgical-readiness", None),
        ("surgical-readiness", "fac-south"),
        ("prior-authorization", None),
        ("prior-authorization", "fac-south"),
    ):
        snapshot = resolve(name, facility, store=files)
        assert SnapshotVersion.parse(snapshot.version).name == name
        queues = set(step_chain) if name == "surgical-readiness" else set()
        for key, value in snapshot.values.items():
            if key.endswith(("_queue", "_chain")):
                queues.update([value] if isinstance(value, str) else value)
        for table in snapshot.tables.values():
            for out in [r.then for r in table.rows] + [table.default or {}]:
                for key in ("queue", "chain"):
                    value = out.get(key)
                    queues.update([value] if isinstance(value, str) else value or [])
        for queue in sorted(queues):
            task = opened(InMemoryStateStore(), FakePublisher()).model_copy(
                update={
                    "queue": queue,
                    "facility_id": facility or "fac-north",
                    "policy_version": snapshot.version,
                }
            )
            roles = queue_roles(task, files)
            assert roles.work and roles.supervise, (snapshot.version, queue)


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
