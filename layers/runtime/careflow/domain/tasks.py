"""Human tasks: opened by a waiting workflow, escalated when overdue, completed by a person.

A task that a workflow waits on carries the Step Functions task token; completing
it resumes the execution. Every decision is audited with actor, time, reason and
the policy version that applied.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from careflow.domain.records import AuditEntry, HumanTask, Milestone, TaskStatus
from careflow.events.envelope import envelope
from careflow.ports import EventPublisher, StaleTaskToken, StateStore, WorkflowEngine

SOURCE = "careflow.workflow"


class TaskError(Exception):
    """A task request that cannot be honoured; ``kind`` maps to an HTTP status."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # not_found | conflict | invalid


def task_id_for(instance_id: str, purpose: str) -> str:
    digest = hashlib.sha256(f"{instance_id}|{purpose}".encode()).hexdigest()[:16]
    return f"task-{digest}"


def _task_event(
    task: HumanTask, what: str, *, level: int, now: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    """The envelope of a task event; ``data`` carries identifiers only (never title or reasons).

    The key is deterministic per task, round and level: ``created_at`` tells apart the rounds
    of a task re-opened under the same id after completion (another documents request), so
    a consumer deduplicating on it drops redeliveries, not the next round.
    """
    key = f"{task.task_id}:{what}:{level}@{task.created_at.isoformat()}"
    return envelope(
        event_id=key,
        idempotency_key=key,
        facility_id=task.facility_id,
        occurred_at=now,
        correlation_id=task.instance_id,  # the instance's correlation id would cost a read
        data=data,
    )


def open_task(
    store: StateStore,
    publisher: EventPublisher,
    *,
    instance_id: str,
    workflow_id: str,
    facility_id: str,
    purpose: str,
    title: str,
    reasons: Sequence[str],
    subject_ref: str,
    escalation_chain: Sequence[str],
    due_in_seconds: int,
    token: str | None,
    allowed_decisions: Sequence[str],
    now: datetime,
    policy_version: str = "v1",
) -> HumanTask:
    """Opens the task, or re-opens it with a fresh token after an escalation."""
    task_id = task_id_for(instance_id, purpose)
    existing = store.get_task(task_id)
    if existing is not None and existing.status in (TaskStatus.OPEN, TaskStatus.CLAIMED):
        task = existing.model_copy(
            update={"task_token": token, "due_at": now + timedelta(seconds=due_in_seconds)}
        )
        return store.update_task(task)
    chain = tuple(escalation_chain) or ("department_director",)
    task = HumanTask(
        task_id=task_id,
        instance_id=instance_id,
        workflow_id=workflow_id,
        facility_id=facility_id,
        queue=chain[0],
        title=title,
        reasons=tuple(reasons),
        subject_ref=subject_ref,
        created_at=now,
        due_at=now + timedelta(seconds=due_in_seconds),
        escalation_chain=chain,
        task_token=token,
        allowed_decisions=tuple(allowed_decisions),
        policy_version=policy_version,
    )
    store.put_task(task)
    store.record_milestone(
        Milestone(
            instance_id=instance_id, name="task_opened", at=now, detail=f"{task.queue}: {title}"
        )
    )
    store.record_audit(
        AuditEntry(
            instance_id=instance_id,
            at=now,
            actor="system:human-task",
            action="task_opened",
            reason="; ".join(reasons),
            policy_version=policy_version,
            detail={"task_id": task_id, "queue": task.queue},
        )
    )
    publisher.publish(
        SOURCE,
        "HumanTask.Opened",
        _task_event(
            task,
            "opened",
            level=task.escalation_level,
            now=now,
            data={
                "task_id": task_id,
                "instance_id": instance_id,
                "queue": task.queue,
                "facility_id": facility_id,
                "due_at": task.due_at.isoformat(),
            },
        ),
    )
    return task


def escalate_task(
    store: StateStore,
    publisher: EventPublisher,
    *,
    task_id: str,
    now: datetime,
) -> HumanTask:
    """Moves an overdue task one step up its escalation chain (stays at the top when there)."""
    task = store.get_task(task_id)
    if task is None:
        raise TaskError("not_found", f"no task {task_id}")
    level = min(task.escalation_level + 1, len(task.escalation_chain) - 1)
    queue = task.escalation_chain[level] if task.escalation_chain else task.queue
    escalated = store.update_task(
        task.model_copy(
            update={
                "escalation_level": task.escalation_level + 1,
                "queue": queue,
                "task_token": None,
                "status": TaskStatus.OPEN,
                "claimed_by": None,
            }
        )
    )
    store.record_milestone(
        Milestone(
            instance_id=task.instance_id,
            name="task_escalated",
            at=now,
            status="ESCALATED",
            detail=f"level {escalated.escalation_level} to {queue}",
        )
    )
    store.record_audit(
        AuditEntry(
            instance_id=task.instance_id,
            at=now,
            actor="system:sla-timer",
            action="task_escalated",
            reason=f"task overdue since {task.due_at.isoformat()}",
            policy_version=task.policy_version,
            detail={"task_id": task_id, "queue": queue, "level": escalated.escalation_level},
        )
    )
    publisher.publish(
        SOURCE,
        "Workflow.Escalated",
        _task_event(
            escalated,
            "escalated",
            level=escalated.escalation_level,
            now=now,
            data={
                "task_id": task_id,
                "instance_id": task.instance_id,
                "queue": queue,
                "facility_id": task.facility_id,
                "level": escalated.escalation_level,
            },
        ),
    )
    return escalated


def claim_task(store: StateStore, *, task_id: str, actor: str, now: datetime) -> HumanTask:
    task = store.get_task(task_id)
    if task is None:
        raise TaskError("not_found", f"no task {task_id}")
    if task.status is TaskStatus.CLAIMED and task.claimed_by == actor:
        return task
    if task.status is not TaskStatus.OPEN:
        raise TaskError("conflict", f"task {task_id} is {task.status.value}")
    claimed = store.update_task(
        task.model_copy(update={"status": TaskStatus.CLAIMED, "claimed_by": actor})
    )
    store.record_audit(
        AuditEntry(
            instance_id=task.instance_id,
            at=now,
            actor=actor,
            action="task_claimed",
            policy_version=task.policy_version,
            detail={"task_id": task_id},
        )
    )
    return claimed


def complete_task(
    store: StateStore,
    engine: WorkflowEngine,
    *,
    task_id: str,
    actor: str,
    decision: str,
    reason: str,
    now: datetime,
) -> HumanTask:
    """Records the decision and resumes the waiting execution with it."""
    task = store.get_task(task_id)
    if task is None:
        raise TaskError("not_found", f"no task {task_id}")
    if task.status not in (TaskStatus.OPEN, TaskStatus.CLAIMED):
        raise TaskError("conflict", f"task {task_id} is {task.status.value}")
    if task.status is TaskStatus.CLAIMED and task.claimed_by not in (None, actor):
        raise TaskError("conflict", f"task {task_id} is claimed by someone else")
    if task.allowed_decisions and decision not in task.allowed_decisions:
        raise TaskError("invalid", f"decision must be one of {', '.join(task.allowed_decisions)}")
    if task.allowed_decisions and task.task_token is None:
        raise TaskError("conflict", f"task {task_id} is being escalated; retry in a moment")
    completed = store.update_task(
        task.model_copy(
            update={
                "status": TaskStatus.COMPLETED,
                "decision": decision,
                "completed_by": actor,
                "completed_at": now,
            }
        )
    )
    store.record_audit(
        AuditEntry(
            instance_id=task.instance_id,
            at=now,
            actor=actor,
            action="task_completed",
            reason=reason,
            policy_version=task.policy_version,
            detail={"task_id": task_id, "decision": decision},
        )
    )
    store.record_milestone(
        Milestone(
            instance_id=task.instance_id,
            name="task_completed",
            at=now,
            detail=f"{decision} by {actor}",
        )
    )
    if task.task_token:
        try:
            engine.send_task_success(
                task.task_token,
                {"task_id": task_id, "decision": decision, "actor": actor, "note": reason},
            )
        except StaleTaskToken:
            store.update_task(completed.model_copy(update={"status": TaskStatus.CLOSED}))
            raise TaskError("conflict", f"the workflow stopped waiting on task {task_id}") from None
    return completed
