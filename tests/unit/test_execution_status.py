"""An execution that failed, timed out or was aborted is made visible on its instance
(``careflow.domain.executions``, the ``ExecutionStatus`` handler)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from careflow.domain.executions import (
    CAUSE_CHARS,
    DETAIL_TYPE,
    ExecutionEnded,
    ExecutionStatusError,
    record_execution_end,
)
from careflow.domain.records import HumanTask, Instance, InstanceStatus, TaskStatus
from tests.fakes import InMemoryStateStore

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MACHINE = "arn:aws:states:us-east-1:000000000000:stateMachine:careflow-dev-InvoiceExceptions"


def event(status: str = "FAILED", name: str = "ie-1", **detail: object) -> dict:
    return {
        "source": "aws.states",
        "detail-type": DETAIL_TYPE,
        "detail": {
            "executionArn": f"{MACHINE.replace('stateMachine', 'execution')}:{name}",
            "stateMachineArn": MACHINE,
            "name": name,
            "status": status,
            "error": "InvoiceNotMatched",
            "cause": "The invoice could not be matched",
            "input": json.dumps(
                {"workflow_id": "invoice-exceptions", "facility_id": "fac-north", "x": "y"}
            ),
        }
        | detail,
    }


def instance(status: InstanceStatus = InstanceStatus.RUNNING) -> Instance:
    return Instance(
        instance_id="ie-1",
        workflow_id="invoice-exceptions",
        subject_type="invoice",
        subject_id="INV-1",
        facility_id="fac-north",
        status=status,
        started_at=NOW - timedelta(hours=1),
        updated_at=NOW - timedelta(hours=1),
        correlation_id="c-1",
        execution_name="ie-1",
    )


def store_with(status: InstanceStatus, *, task: TaskStatus | None = None) -> InMemoryStateStore:
    store = InMemoryStateStore()
    store.put_instance(instance(status))
    if task is not None:
        store.put_task(
            HumanTask(
                task_id="t-1",
                instance_id="ie-1",
                workflow_id="invoice-exceptions",
                facility_id="fac-north",
                queue="ap_pricing",
                title="Invoice INV-1",
                subject_ref="invoice/INV-1",
                created_at=NOW,
                due_at=NOW + timedelta(days=1),
                status=task,
                task_token="tok",
                allowed_decisions=("RETURN",),
            )
        )
    return store


def record(store: InMemoryStateStore, ev: dict) -> dict:
    return record_execution_end(ExecutionEnded.from_event(ev), store=store, now=NOW)


@pytest.mark.parametrize(
    ("status", "becomes"),
    [
        ("FAILED", InstanceStatus.FAILED),
        ("TIMED_OUT", InstanceStatus.FAILED),
        ("ABORTED", InstanceStatus.CANCELLED),
    ],
)
def test_a_running_instance_takes_the_bad_end_and_its_open_tasks_close(status, becomes):
    store = store_with(InstanceStatus.WAITING, task=TaskStatus.CLAIMED)
    result = record(store, event(status))
    assert result == {"status": becomes.value, "instance_id": "ie-1"}
    got = store.get_instance("ie-1")
    assert got is not None
    assert (got.status, got.outcome) == (becomes, status)
    assert "InvoiceNotMatched" in got.outcome_reasons[-1]
    assert "The invoice could not be matched" in got.outcome_reasons[-1]
    assert store.get_task("t-1").status is TaskStatus.CLOSED  # type: ignore[union-attr]
    [m] = [m for m in store.milestones("ie-1") if m.name == f"execution_{status.lower()}"]
    assert m.status == "FAILED"
    [a] = [a for a in store.audit_trail("ie-1") if a.action == "execution_ended"]
    assert a.detail["status"] == status and a.actor == "system:executions"


def test_the_same_announcement_twice_changes_nothing_the_second_time():
    store = store_with(InstanceStatus.RUNNING)
    record(store, event())
    assert record(store, event()) == {"status": "duplicate", "instance_id": "ie-1"}
    assert len([a for a in store.audit_trail("ie-1") if a.action == "execution_ended"]) == 1


def test_a_concluded_instance_keeps_its_status_and_the_failure_is_on_record():
    # e.g. the outcome event could not be published after the last step
    store = store_with(InstanceStatus.COMPLETED)
    result = record(store, event(error="States.TaskFailed"))
    assert result["kept"] == "COMPLETED"
    assert store.get_instance("ie-1").status is InstanceStatus.COMPLETED  # type: ignore[union-attr]
    assert "execution_failed" in [m.name for m in store.milestones("ie-1")]


def test_an_instance_a_cancel_event_stopped_is_left_alone():
    store = store_with(InstanceStatus.CANCELLED)
    assert record(store, event("ABORTED"))["status"] == "already_cancelled"
    assert store.milestones("ie-1") == []


def test_an_execution_that_failed_before_its_first_step_gets_an_instance():
    store = InMemoryStateStore()
    result = record(store, event(name="ie-2"))
    assert result == {"status": "FAILED", "instance_id": "ie-2", "instance": "created"}
    got = store.get_instance("ie-2")
    assert got is not None
    assert (got.workflow_id, got.facility_id, got.status) == (
        "invoice-exceptions",
        "fac-north",
        InstanceStatus.FAILED,
    )


def test_without_an_instance_or_a_readable_input_only_the_entries_are_kept():
    store = InMemoryStateStore()
    result = record(store, event(name="ie-3", input="not json"))
    assert result["instance"] is None and store.get_instance("ie-3") is None
    assert [a.action for a in store.audit_trail("ie-3")] == ["execution_ended"]


def test_success_and_running_need_nothing():
    store = store_with(InstanceStatus.RUNNING)
    assert record(store, event("SUCCEEDED"))["status"] == "ignored"
    assert store.get_instance("ie-1").status is InstanceStatus.RUNNING  # type: ignore[union-attr]


def test_a_long_cause_is_cut_and_the_input_is_never_kept():
    store = store_with(InstanceStatus.RUNNING)
    record(store, event(cause="x" * 5000))
    got = store.get_instance("ie-1")
    assert got is not None
    assert len(got.outcome_reasons[-1]) < CAUSE_CHARS + 100
    kept = json.dumps([a.model_dump(mode="json") for a in store.audit_trail("ie-1")])
    assert '"x"' not in kept and '"input"' not in kept  # the execution's input stays out


@pytest.mark.parametrize(
    "bad",
    [
        {"detail-type": "Something else", "detail": {}},
        {"detail-type": DETAIL_TYPE, "detail": "not an object"},
        {"detail-type": DETAIL_TYPE, "detail": {"status": "FAILED"}},
    ],
)
def test_an_event_that_is_not_a_readable_status_change_is_refused_with_a_reason(bad):
    with pytest.raises(ExecutionStatusError, match=DETAIL_TYPE):
        ExecutionEnded.from_event(bad)


def test_a_concurrent_write_of_the_instance_is_read_again_and_decided_anew():
    # intake cancels the instance between this function's read and its write
    store = store_with(InstanceStatus.RUNNING)
    real_update = store.update_instance
    calls = {"n": 0}

    def cancel_first(instance, *, with_entries=()):
        calls["n"] += 1
        if calls["n"] == 1:
            real_update(
                store.get_instance("ie-1").model_copy(update={"status": InstanceStatus.CANCELLED})
            )
        return real_update(instance, with_entries=with_entries)

    store.update_instance = cancel_first  # type: ignore[method-assign]
    assert record(store, event("ABORTED"))["status"] == "already_cancelled"
    assert store.get_instance("ie-1").status is InstanceStatus.CANCELLED  # type: ignore[union-attr]
