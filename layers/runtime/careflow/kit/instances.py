"""What every workflow's first and last steps do to its instance record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from careflow.domain.records import AuditEntry, Instance, InstanceStatus, Milestone, TaskStatus
from careflow.events.envelope import envelope
from careflow.kit.steps import StepOutput
from careflow.ports import StateStore


def start_instance(
    store: StateStore,
    *,
    workflow_id: str,
    instance_id: str,
    subject_type: str,
    subject_id: str,
    facility_id: str,
    correlation_id: str,
    policy: Any,
    started: str,
    detail: str,
    actor: str,
    now: datetime,
    decisions: Mapping[str, str] | None = None,
    subject_refs: Mapping[str, str] | None = None,
    scheduled_start: datetime | None = None,
    service_line: str | None = None,
) -> None:
    """Registers the instance (once: a retried step is not a new instance) with its first
    milestone, and audits the policy version it pins (and the decision rows that applied).
    ``scheduled_start``: when the subject is due (a case's start), if it has such a time.
    ``service_line``: the subject's clinical service line (orthopedics, imaging, ...), if it
    has one (an invoice has none)."""
    audit: dict[str, Any] = {"hash": policy.hash}
    if decisions:
        audit["rows"] = dict(decisions)
    store.put_instance(
        Instance(
            instance_id=instance_id,
            workflow_id=workflow_id,
            subject_type=subject_type,
            subject_id=subject_id,
            facility_id=facility_id,
            status=InstanceStatus.RUNNING,
            started_at=now,
            updated_at=now,
            correlation_id=correlation_id,
            execution_name=instance_id,
            subject_refs=dict(subject_refs or {}),
            scheduled_start=scheduled_start,
            service_line=service_line,
        ),
        with_entries=[
            Milestone(instance_id=instance_id, name=started, at=now, detail=detail),
            AuditEntry(
                instance_id=instance_id,
                at=now,
                actor=actor,
                action="policy_pinned",
                reason=f"{policy.version} in force for {facility_id}",
                policy_version=policy.version,
                detail=audit,
            ),
        ],
    )


def finish_instance(
    store: StateStore,
    instance_id: str,
    *,
    status: InstanceStatus,
    reasons: Sequence[str],
    entries: Sequence[Milestone | AuditEntry],
    now: datetime,
    outcome: str | None = None,
) -> None:
    """Writes how the instance ended, with its last milestones and audit entries."""
    instance = store.get_instance(instance_id)
    if instance is None:
        store.record(*entries)
        return
    store.update_instance(
        instance.model_copy(
            update={
                "status": status,
                "outcome": outcome,
                "updated_at": now,
                "outcome_reasons": tuple(reasons),
            }
        ),
        with_entries=entries,
    )


def milestone(
    store: StateStore,
    instance_id: str,
    name: str,
    now: datetime,
    status: str = "DONE",
    detail: str = "",
) -> None:
    """Records one milestone of the instance (what every workflow's steps write)."""
    store.record_milestone(
        Milestone(instance_id=instance_id, name=name, at=now, status=status, detail=detail)
    )


def child_milestones(
    store: StateStore,
    child_instance_id: str | None,
    parent_instance_id: str,
    names: Mapping[str, str],
) -> list[Milestone]:
    """A child execution's milestones as its parent's timeline names them (``names``: the
    child's name -> the parent's; others are left out), for the parent to record."""
    if not child_instance_id:
        return []
    return [
        m.model_copy(update={"instance_id": parent_instance_id, "name": names[m.name]})
        for m in store.milestones(child_instance_id)
        if m.name in names
    ]


class Concluded(StepOutput):
    """What a workflow's last step returns: its outcome, and the outcome event the ASL
    publishes (``detail_type`` and ``detail``, built with the envelope of every event)."""

    outcome: str
    reasons: tuple[str, ...]
    detail_type: str
    detail: dict[str, Any]


C = TypeVar("C", bound=Concluded)


def conclude(
    store: StateStore,
    *,
    instance_id: str,
    facility_id: str,
    correlation_id: str,
    now: datetime,
    outcome: str,
    reasons: Sequence[str],
    milestone_name: str,
    succeeded: bool,
    detail_type: str,
    data: Mapping[str, Any],
    actor: str,
    policy_version: str,
    measured: tuple[str, Mapping[str, Any]] | None = None,
    entries: Sequence[Milestone | AuditEntry] = (),
    status: InstanceStatus = InstanceStatus.COMPLETED,
    output: type[C] = Concluded,  # type: ignore[assignment]
    **extra: Any,
) -> C:
    """The last step's writes, the same in every workflow: the workflow's own ``entries``
    (delays by cause, ...), then the measurement audit entry ``/v1/kpis`` reads
    (``measured``: its action and its numbers, never PHI), then the concluding milestone
    (DONE when ``succeeded``, else FAILED, with the outcome as its detail); the instance's
    status, outcome and reasons in the same write; and the outcome event, keyed by the
    instance so that a retried step publishes the same event (``data`` plus nothing else).
    ``output`` is the step's own subclass of :class:`Concluded` when it returns more
    (``extra`` fills its fields).
    """
    written: list[Milestone | AuditEntry] = list(entries)
    if measured is not None:
        action, numbers = measured
        written.append(
            AuditEntry(
                instance_id=instance_id,
                at=now,
                actor=actor,
                action=action,
                reason=outcome,
                policy_version=policy_version,
                detail=dict(numbers),
            )
        )
    written.append(
        Milestone(
            instance_id=instance_id,
            name=milestone_name,
            at=now,
            status="DONE" if succeeded else "FAILED",
            detail=outcome,
        )
    )
    finish_instance(
        store,
        instance_id,
        status=status,
        outcome=outcome,
        reasons=reasons,
        entries=written,
        now=now,
    )
    _close_informational_tasks(store, instance_id, outcome=outcome, actor=actor, now=now)
    detail = envelope(
        event_id=f"{instance_id}:{outcome}",
        idempotency_key=f"{instance_id}:outcome",
        facility_id=facility_id,
        occurred_at=now,
        correlation_id=correlation_id,
        data=dict(data),
    )
    return output(
        outcome=outcome, reasons=tuple(reasons), detail_type=detail_type, detail=detail, **extra
    )


def _close_informational_tasks(
    store: StateStore, instance_id: str, *, outcome: str, actor: str, now: datetime
) -> None:
    """An alert nobody answered (an informational task: nothing waits on it, e.g. a model's
    early warning) leaves the inboxes when its instance ends, closed with the outcome."""
    for task in store.tasks_for_instance(instance_id):
        if task.status in (TaskStatus.OPEN, TaskStatus.CLAIMED) and task.informational:
            store.update_task(task.model_copy(update={"status": TaskStatus.CLOSED}))
            store.record_audit(
                AuditEntry(
                    instance_id=instance_id,
                    at=now,
                    actor=actor,
                    action="task_closed",
                    reason=f"the instance concluded ({outcome}) before anyone answered it",
                    policy_version=task.policy_version,
                    detail={"task_id": task.task_id, "queue": task.queue},
                )
            )
