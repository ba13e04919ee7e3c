"""What every workflow's first and last steps do to its instance record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from careflow.domain.records import AuditEntry, Instance, InstanceStatus, Milestone
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
) -> None:
    """Registers the instance (once: a retried step is not a new instance) with its first
    milestone, and audits the policy version it pins (and the decision rows that applied).
    ``scheduled_start``: when the subject is due (a case's start), if it has such a time."""
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
