"""What the state store keeps: workflow instances, milestones, human tasks, audit."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InstanceStatus(StrEnum):
    RUNNING = "RUNNING"
    WAITING = "WAITING"  # on a person or a payer
    READY = "READY"
    AT_RISK = "AT_RISK"
    BLOCKED = "BLOCKED"
    FAILED = "FAILED"
    COMPLETED = "COMPLETED"  # ended; its workflow's own outcome is in ``outcome``
    CANCELLED = "CANCELLED"  # its subject was cancelled (e.g. Appointment.Cancelled)


class Instance(Record):
    instance_id: str
    workflow_id: str
    subject_type: str  # case | encounter | invoice | po ...
    subject_id: str
    facility_id: str
    status: InstanceStatus
    started_at: datetime
    updated_at: datetime
    correlation_id: str
    execution_name: str
    outcome_reasons: tuple[str, ...] = ()
    # The workflow's own word for how it ended (APPROVED, DENIED, ...), when its status
    # is COMPLETED; READY / AT_RISK / BLOCKED are statuses of their own.
    outcome: str | None = None
    # The subject's references in its system of record ({"patient": "Patient/..",
    # "coverage": "Coverage/.."}): kept here, in the encrypted table, for the steps that
    # need them, never in the execution's state or history.
    subject_refs: dict[str, str] = {}
    # When the subject is due (a case's start), once an event has said so (a reschedule).
    scheduled_start: datetime | None = None
    # The clinical service line the subject belongs to (orthopedics, imaging, surgery, ...);
    # None where the subject has none (an invoice, a purchase order). Optional: instances
    # written before it was kept read as None.
    service_line: str | None = None
    version: int = 0  # optimistic locking


class Milestone(Record):
    instance_id: str
    name: str
    at: datetime
    status: str = "DONE"  # DONE | PENDING | FAILED | ESCALATED
    detail: str = ""


class TaskStatus(StrEnum):
    OPEN = "OPEN"
    CLAIMED = "CLAIMED"
    COMPLETED = "COMPLETED"
    CLOSED = "CLOSED"  # superseded (escalated with a new token) or informational


class HumanTask(Record):
    task_id: str
    instance_id: str
    workflow_id: str
    facility_id: str
    queue: str  # role queue: care_coordinator, supply_chain_buyer, ...
    title: str
    reasons: tuple[str, ...] = ()
    subject_ref: str  # e.g. "case/appt-1001": an identifier, never a name
    created_at: datetime
    due_at: datetime
    escalation_level: int = 0
    escalation_chain: tuple[str, ...] = ()
    status: TaskStatus = TaskStatus.OPEN
    task_token: str | None = None  # None: informational task, nothing waits on it
    allowed_decisions: tuple[str, ...] = ()
    # Separation of duties: people who may not claim or decide it (the clerk who accepted
    # a variance does not approve it).
    excluded_actors: tuple[str, ...] = ()
    claimed_by: str | None = None
    decision: str | None = None
    completed_by: str | None = None
    completed_at: datetime | None = None
    policy_version: str = "v1"
    version: int = 0
    # What the task priority model reads (careflow.ml.priority): when the subject's own
    # deadline falls (the surgery, the expected discharge, the payment due date), its value.
    deadline_at: datetime | None = None
    value_usd: float | None = None
    # The task priority model's answer: the chance the task's work goes wrong if it waits
    # (0-1; None: not scored, the model off), and the features behind it.
    priority: float | None = None
    priority_reasons: tuple[str, ...] = ()
    # A model's suggestion for the person to confirm (careflow.ml.governance.Suggestion.ref
    # with "decision": the allowed decision that follows it); deciding otherwise overrides it.
    suggestion: dict[str, Any] | None = None

    @property
    def informational(self) -> bool:
        """Opened with no task token and never escalated: nothing waits on it (an alert, or
        a model's early warning whose decision is recorded but resumes nothing). A task the
        workflow waits on loses its token only while it escalates (level 1 and up)."""
        return self.task_token is None and self.escalation_level == 0

    @property
    def awaits_decision(self) -> bool:
        """Open, with a workflow waiting on it for one of its allowed decisions."""
        return (
            self.status is TaskStatus.OPEN
            and bool(self.task_token)
            and bool(self.allowed_decisions)
        )


class AuditEntry(Record):
    instance_id: str
    at: datetime
    actor: str  # a user id or "system:<function>"
    action: str
    reason: str = ""
    policy_version: str = "v1"
    detail: dict[str, Any] = Field(default_factory=dict)


class ParkedEvent(Record):
    """An accepted event that could not be processed, kept with its reason.

    ``kind`` is ``parked`` (a workflow's rule took it, intake refused it) or ``unrouted``
    (no workflow's rule took it). ``status`` becomes ``REDRIVEN`` once ``careflow parked
    redrive`` put it back on the bus; intake parking it again makes it ``PARKED`` anew."""

    event_id: str
    detail_type: str
    source: str
    reason: str
    parked_at: datetime
    facility_id: str | None = None
    kind: Literal["parked", "unrouted"] = "parked"
    status: Literal["PARKED", "REDRIVEN"] = "PARKED"
    redriven_at: datetime | None = None
    times_parked: int = 1


class SubjectRecord(Record):
    """The one instance a workflow runs for a business subject at a facility.

    Written (conditionally, first writer wins) before the execution starts; the execution
    name is its ``instance_id``, so a start that failed after the write is retried under
    the same name, and a second event for the subject finds the execution already there.
    ``CANCELLED`` with no instance: the subject was cancelled before anything started it.

    ``occurred_at`` is when the event that wrote it occurred (its ``metadata.occurred_at``):
    on a ``CANCELLED`` record, the cancellation's, which a start trigger that ``reopens``
    compares with its own (only a later start starts a new instance). ``reopened``: the
    record was started again after a cancellation (it names the new instance). Both are
    optional: records written before they were kept read as ``None`` and ``False``."""

    workflow_id: str
    facility_id: str
    subject_id: str
    instance_id: str | None
    status: Literal["STARTED", "CANCELLED"] = "STARTED"
    event_id: str  # the event that wrote it
    at: datetime
    version: int = 0
    occurred_at: datetime | None = None  # when the event that wrote it occurred
    reopened: bool = False
