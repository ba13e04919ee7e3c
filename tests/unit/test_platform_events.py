"""careflow's own task events wear the envelope of docs/events.md and carry identifiers only."""

import json
from datetime import UTC, datetime, timedelta

from careflow.domain.tasks import claim_task, complete_task, escalate_task, open_task
from careflow.events.envelope import parse_event
from careflow.events.platform import PLATFORM_SCHEMAS, HumanTaskOpened, WorkflowEscalated
from tests.fakes import (
    TASK_POLICY_VERSION,
    FakeEngine,
    FakePublisher,
    InMemoryStateStore,
    task_directory,
    task_policies,
)

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
ALLOWED_DATA = {"task_id", "instance_id", "queue", "facility_id", "due_at", "level"}
FREE_TEXT = ("Jane Roe", "MRN 0042", "spoke with the patient's daughter")


def open_(store, pub, *, token, now):
    return open_task(
        store,
        pub,
        instance_id="i-7",
        workflow_id="prior-authorization",
        facility_id="fac-north",
        purpose="documents",
        title=f"Documents for {FREE_TEXT[0]}",
        reasons=(f"payer asks for the chart of {FREE_TEXT[1]}",),
        subject_ref="preauth/pa-7",
        escalation_chain=("utilization_review_nurse", "department_director"),
        due_in_seconds=3600,
        token=token,
        allowed_decisions=("ATTACHED", "UNAVAILABLE"),
        now=now,
        policy_version=TASK_POLICY_VERSION,
    )


def run_the_loop(store, pub, engine, *, start):
    """open → escalate → re-open with a fresh token → claim → complete, as the workflow does."""
    task = open_(store, pub, token="tok-1", now=start)
    escalate_task(store, pub, task_id=task.task_id, now=start + timedelta(hours=1))
    open_(store, pub, token="tok-2", now=start + timedelta(hours=1))
    governed = {"policies": task_policies(), "directory": task_directory()}
    later = start + timedelta(hours=2)
    claim_task(store, task_id=task.task_id, actor="user:director-1", now=later, **governed)
    complete_task(
        store,
        engine,
        task_id=task.task_id,
        actor="user:director-1",
        decision="ATTACHED",
        reason=FREE_TEXT[2],
        now=later,
        **governed,
    )
    return task


def test_every_task_event_parses_with_the_envelope_and_carries_identifiers_only():
    store, pub, engine = InMemoryStateStore(), FakePublisher(), FakeEngine()
    task = run_the_loop(store, pub, engine, start=NOW)

    assert pub.types() == ["HumanTask.Opened", "Workflow.Escalated"]
    parsed = []
    for source, detail_type, detail in pub.events:
        # as EventBridge delivers it: the detail went through JSON
        event = {
            "source": source,
            "detail-type": detail_type,
            "detail": json.loads(json.dumps(detail)),
        }
        parsed.append(parse_event(event, schemas=PLATFORM_SCHEMAS))
        assert set(detail) == {"metadata", "data"}
        assert set(detail["data"]) <= ALLOWED_DATA
        assert not any(text in json.dumps(detail) for text in FREE_TEXT)

    opened, escalated = parsed
    assert opened.source == escalated.source == "careflow.workflow"
    assert opened.data == HumanTaskOpened(
        task_id=task.task_id,
        instance_id="i-7",
        queue="utilization_review_nurse",
        facility_id="fac-north",
        due_at=NOW + timedelta(hours=1),
    )
    assert escalated.data == WorkflowEscalated(
        task_id=task.task_id,
        instance_id="i-7",
        queue="department_director",
        facility_id="fac-north",
        level=1,
    )
    assert (opened.metadata.occurred_at, escalated.metadata.occurred_at) == (
        NOW,
        NOW + timedelta(hours=1),
    )
    assert opened.metadata.facility_id == escalated.metadata.facility_id == "fac-north"
    assert opened.metadata.correlation_id == escalated.metadata.correlation_id == "i-7"
    assert opened.metadata.event_id == opened.metadata.idempotency_key
    assert opened.metadata.event_id != escalated.metadata.event_id


def test_event_ids_are_deterministic_and_a_second_round_gets_new_ones():
    def ids(*, second_round_at=None):
        store, pub, engine = InMemoryStateStore(), FakePublisher(), FakeEngine()
        run_the_loop(store, pub, engine, start=NOW)
        if second_round_at is not None:  # the payer asks for documents again: same task id
            run_the_loop(store, pub, engine, start=second_round_at)
        return [d["metadata"]["idempotency_key"] for _, _, d in pub.events]

    first = ids()
    assert first == ids()  # a replay of the same run keys its events the same way
    both = ids(second_round_at=NOW + timedelta(days=1))
    assert both[:2] == first
    assert len(set(both)) == 4
