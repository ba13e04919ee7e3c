"""An execution that ended without its workflow concluding it: FAILED, TIMED_OUT or ABORTED.

Step Functions announces every execution's end on the account's default bus
(``aws.states`` / ``Step Functions Execution Status Change``); careflow's rule takes the
three bad ends of its own state machines to the ``ExecutionStatus`` function, which makes
them visible on the instance: a failed or timed-out execution's instance becomes FAILED
(an aborted one CANCELLED) with the error and cause as its reason, its open tasks close
(nothing waits on them any more), and a milestone and an audit entry say so. An instance
that had already concluded (a failure after its last step, e.g. publishing the outcome
event) keeps its status and gets the milestone and the audit entry. An instance a cancel
event already stopped is left alone. The local cloud announces the same event when one of
its executions ends badly (``careflow.localcloud.moto.children``).

Only the execution's identifiers, its error name and its cause (the ASL's own Fail text,
or the step's error message, which carries identifiers only) are read or written: never
its input or output.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from careflow.domain.records import (
    AuditEntry,
    Instance,
    InstanceStatus,
    Milestone,
    TaskStatus,
)
from careflow.ports import ConcurrentUpdate, StateStore

SOURCE = "aws.states"
DETAIL_TYPE = "Step Functions Execution Status Change"
ENDED_BADLY = ("FAILED", "TIMED_OUT", "ABORTED")
ACTOR = "system:executions"
ACTION = "execution_ended"
CAUSE_CHARS = 500  # a cause is kept to this many characters on the instance


def execution_status_pattern(state_machine_arns: Sequence[str]) -> dict[str, Any]:
    """The rule's pattern: the bad ends of these state machines' executions."""
    return {
        "source": [SOURCE],
        "detail-type": [DETAIL_TYPE],
        "detail": {"status": list(ENDED_BADLY), "stateMachineArn": list(state_machine_arns)},
    }


class ExecutionStatusError(ValueError):
    """The event is not an execution status change careflow can read."""


class ExecutionEnded(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    execution_arn: str
    state_machine_arn: str
    name: str
    status: str
    error: str | None = None
    cause: str | None = None
    workflow_id: str | None = None  # from the execution's input, only when no instance exists
    facility_id: str | None = None
    correlation_id: str | None = None

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> ExecutionEnded:
        detail = event.get("detail") if isinstance(event, Mapping) else None
        if event.get("detail-type") != DETAIL_TYPE or not isinstance(detail, Mapping):
            raise ExecutionStatusError(f"not a {DETAIL_TYPE} event")
        started = _input(detail.get("input"))
        try:
            return cls(
                execution_arn=detail["executionArn"],
                state_machine_arn=detail["stateMachineArn"],
                name=detail["name"],
                status=detail["status"],
                error=detail.get("error"),
                cause=detail.get("cause"),
                workflow_id=_text(started.get("workflow_id")),
                facility_id=_text(started.get("facility_id")),
                correlation_id=_text(started.get("correlation_id")),
            )
        except (KeyError, ValidationError) as exc:
            raise ExecutionStatusError(f"{DETAIL_TYPE} without {exc}") from None

    def reason(self) -> str:
        what = {"FAILED": "failed", "TIMED_OUT": "timed out", "ABORTED": "was aborted"}
        text = f"the execution {what.get(self.status, self.status.lower())}"
        if self.error:
            text += f": {self.error}"
        if self.cause:
            cause = self.cause if len(self.cause) <= CAUSE_CHARS else self.cause[:CAUSE_CHARS]
            text += f" ({cause})"
        return text


def _input(raw: Any) -> dict[str, Any]:
    """The execution's input, only for its envelope identifiers (never kept)."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


_LEFT_ALONE = (InstanceStatus.CANCELLED, InstanceStatus.FAILED)
_STILL_WORKING = (InstanceStatus.RUNNING, InstanceStatus.WAITING)


def record_execution_end(
    ended: ExecutionEnded, *, store: StateStore, now: datetime, attempts: int = 3
) -> dict[str, Any]:
    """Makes a bad end visible on the execution's instance (named after it); idempotent on
    the execution (EventBridge delivers at least once). A concurrent write of the instance
    (intake cancelling it, its last step) is re-read and decided again."""
    for attempt in range(attempts):
        try:
            return _record_once(ended, store=store, now=now)
        except ConcurrentUpdate:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _record_once(ended: ExecutionEnded, *, store: StateStore, now: datetime) -> dict[str, Any]:
    if ended.status not in ENDED_BADLY:
        return {"status": "ignored", "reason": f"{ended.status} needs nothing"}
    instance_id = ended.name
    if any(
        a.action == ACTION and a.detail.get("execution_arn") == ended.execution_arn
        for a in store.audit_trail(instance_id)
    ):
        return {"status": "duplicate", "instance_id": instance_id}
    name = f"execution_{ended.status.lower()}"
    entries: list[Milestone | AuditEntry] = [
        Milestone(
            instance_id=instance_id, name=name, at=now, status="FAILED", detail=ended.error or ""
        ),
        AuditEntry(
            instance_id=instance_id,
            at=now,
            actor=ACTOR,
            action=ACTION,
            reason=ended.reason(),
            detail={
                "execution_arn": ended.execution_arn,
                "status": ended.status,
                "error": ended.error,
            },
        ),
    ]
    new_status = InstanceStatus.CANCELLED if ended.status == "ABORTED" else InstanceStatus.FAILED
    instance = store.get_instance(instance_id)
    if instance is None:
        if ended.workflow_id is None:
            store.record(*entries)
            return {"status": "recorded", "instance_id": instance_id, "instance": None}
        # It ended before its first step wrote the instance: one is written, so that it
        # shows among the workflow's instances with why it ended.
        store.put_instance(
            Instance(
                instance_id=instance_id,
                workflow_id=ended.workflow_id,
                subject_type="unknown",
                subject_id="",
                facility_id=ended.facility_id or "",
                status=new_status,
                started_at=now,
                updated_at=now,
                correlation_id=ended.correlation_id or instance_id,
                execution_name=instance_id,
                outcome=ended.status,
                outcome_reasons=(ended.reason(),),
            ),
            with_entries=entries,
        )
        return {"status": new_status.value, "instance_id": instance_id, "instance": "created"}
    if instance.status in _LEFT_ALONE:
        if instance.status is InstanceStatus.CANCELLED and ended.status == "ABORTED":
            return {"status": "already_cancelled", "instance_id": instance_id}
        store.record(*entries)
        return {"status": "recorded", "instance_id": instance_id}
    if instance.status not in _STILL_WORKING:  # concluded, then failed (e.g. its event)
        store.record(*entries)
        return {"status": "recorded", "instance_id": instance_id, "kept": instance.status.value}
    for task in store.tasks_for_instance(instance_id):  # nothing waits on them any more
        if task.status in (TaskStatus.OPEN, TaskStatus.CLAIMED):
            store.update_task(task.model_copy(update={"status": TaskStatus.CLOSED}))
    store.update_instance(
        instance.model_copy(
            update={
                "status": new_status,
                "outcome": ended.status,
                "outcome_reasons": (*instance.outcome_reasons, ended.reason()),
                "updated_at": now,
            }
        ),
        with_entries=entries,
    )
    return {"status": new_status.value, "instance_id": instance_id}
