"""``careflow.kit.instances.conclude``: the last step's writes, the same for every workflow."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from careflow.domain.records import AuditEntry, InstanceStatus, Milestone
from careflow.kit.instances import Concluded, conclude, start_instance
from tests.fakes import InMemoryStateStore

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


class WithDelays(Concluded):
    delays: tuple[int, ...]


def _started() -> InMemoryStateStore:
    store = InMemoryStateStore()
    start_instance(
        store,
        workflow_id="example",
        instance_id="inst-1",
        subject_type="thing",
        subject_id="t-1",
        facility_id="fac-north",
        correlation_id="corr-1",
        policy=SimpleNamespace(version="2026.12.0", hash="sha256:0"),
        started="example_started",
        detail="t-1",
        actor="system:example",
        now=NOW,
    )
    return store


def _conclude(store: InMemoryStateStore, **kw):  # type: ignore[no-untyped-def]
    args = {
        "instance_id": "inst-1",
        "facility_id": "fac-north",
        "correlation_id": "corr-1",
        "now": NOW,
        "outcome": "DONE_WELL",
        "reasons": ("all met",),
        "milestone_name": "example_concluded",
        "succeeded": True,
        "detail_type": "Example.Concluded",
        "data": {"thing_id": "t-1", "outcome": "DONE_WELL"},
        "actor": "system:example",
        "policy_version": "2026.12.0",
    }
    return conclude(store, **(args | kw))


def test_conclude_writes_measurement_milestone_status_and_builds_the_event() -> None:
    store = _started()
    early = AuditEntry(
        instance_id="inst-1",
        at=NOW,
        actor="system:example",
        action="delay_recorded",
        reason="transport",
        policy_version="2026.12.0",
        detail={"minutes": 30},
    )
    out = _conclude(store, measured=("example_measured", {"seconds": 42}), entries=(early,))

    instance = store.get_instance("inst-1")
    assert instance is not None
    assert instance.status == InstanceStatus.COMPLETED
    assert instance.outcome == "DONE_WELL"
    assert instance.outcome_reasons == ("all met",)
    actions = [a.action for a in store.audit_trail("inst-1")]
    assert actions[-2:] == ["delay_recorded", "example_measured"]
    measured = store.audit_trail("inst-1")[-1]
    assert (measured.reason, measured.detail) == ("DONE_WELL", {"seconds": 42})
    last = store.milestones("inst-1")[-1]
    assert isinstance(last, Milestone)
    assert (last.name, last.status, last.detail) == ("example_concluded", "DONE", "DONE_WELL")
    assert out.detail_type == "Example.Concluded"
    assert out.detail["metadata"]["event_id"] == "inst-1:DONE_WELL"
    assert out.detail["metadata"]["idempotency_key"] == "inst-1:outcome"
    assert out.detail["metadata"]["facility_id"] == "fac-north"
    assert out.detail["data"] == {"thing_id": "t-1", "outcome": "DONE_WELL"}


def test_a_failed_outcome_without_measurement_and_a_subclass_output() -> None:
    store = _started()
    before = len(store.audit_trail("inst-1"))
    out = _conclude(store, outcome="GAVE_UP", succeeded=False, output=WithDelays, delays=(5, 7))

    assert isinstance(out, WithDelays) and out.delays == (5, 7)
    assert len(store.audit_trail("inst-1")) == before  # no measurement asked for
    last = store.milestones("inst-1")[-1]
    assert (last.status, last.detail) == ("FAILED", "GAVE_UP")
    assert out.detail["metadata"]["event_id"] == "inst-1:GAVE_UP"


def test_conclude_closes_the_alerts_nobody_answered_and_leaves_awaited_tasks() -> None:
    from datetime import timedelta

    from careflow.domain.records import HumanTask, TaskStatus

    store = _started()

    def task(task_id: str, token: str | None, status: TaskStatus = TaskStatus.OPEN) -> HumanTask:
        t = HumanTask(
            task_id=task_id,
            instance_id="inst-1",
            workflow_id="example",
            facility_id="fac-north",
            queue="ap_receiving",
            title="t",
            subject_ref="thing/t-1",
            created_at=NOW,
            due_at=NOW + timedelta(hours=1),
            task_token=token,
            status=status,
        )
        store.put_task(t)
        return t

    task("alert", None)  # informational: nothing waits on it
    task("answered", None, TaskStatus.COMPLETED)
    task("awaited", "tok-1")  # a workflow waits on it: not the conclusion's to close
    _conclude(store)
    status = {t.task_id: t.status for t in store.tasks_for_instance("inst-1")}
    assert status == {
        "alert": TaskStatus.CLOSED,
        "answered": TaskStatus.COMPLETED,
        "awaited": TaskStatus.OPEN,
    }
    closed = [a for a in store.audit_trail("inst-1") if a.action == "task_closed"]
    assert [a.detail["task_id"] for a in closed] == ["alert"]
    assert "DONE_WELL" in closed[0].reason
