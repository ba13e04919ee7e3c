"""The ``/v1`` API's response shapes and problem details, as pydantic models: what the
OpenAPI document says each route answers (:mod:`careflow.api.openapi`). The route
functions build plain dicts; a test validates their real answers against the document's
schemas, so a view and its model cannot drift apart.

Identifiers, codes, statuses and times only: never free text that may hold PHI.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from careflow.domain.records import InstanceStatus, TaskStatus
from careflow.events.envelope import Metadata


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class Health(_View):
    status: Literal["ok"]


class InstanceView(_View):
    instance_id: str
    workflow_id: str
    facility_id: str
    subject_type: str
    subject_id: str
    status: InstanceStatus
    outcome: str | None
    started_at: str = Field(description="ISO 8601 with offset")
    updated_at: str = Field(description="ISO 8601 with offset")
    scheduled_start: str | None = Field(description="ISO 8601 with offset")
    service_line: str | None = Field(
        default=None,
        description="the subject's clinical service line (orthopedics, imaging, surgery, ...); "
        "null when it has none (an invoice, a purchase order)",
    )


class MilestoneView(_View):
    name: str
    status: str = Field(description="DONE | PENDING | FAILED | ESCALATED")
    at: str = Field(description="ISO 8601 with offset")


class TaskView(_View):
    task_id: str
    instance_id: str
    workflow_id: str
    facility_id: str
    queue: str
    status: TaskStatus
    created_at: str = Field(description="ISO 8601 with offset")
    due_at: str = Field(description="ISO 8601 with offset")
    escalation_level: int
    allowed_decisions: list[str]
    claimed_by: str | None
    decision: str | None
    completed_by: str | None
    completed_at: str | None
    policy_version: str
    priority: float = Field(
        ge=0,
        le=1,
        description="the task priority model's score: the chance its work goes wrong if it "
        "waits (0 when not scored; see prioritized)",
    )
    prioritized: bool = Field(description="the task priority model scored the task")
    priority_reasons: list[str] = Field(
        description="the features behind its priority, strongest first (empty when not scored)"
    )


class InstanceDetail(InstanceView):
    milestones: list[MilestoneView] = Field(description="by time")
    open_tasks: list[TaskView] = Field(description="open and claimed, by due time")


class InstancePage(_View):
    items: list[InstanceView] = Field(description="newest update first")
    next: str | None = Field(description="the token of the next page; null on the last")


class TaskList(_View):
    items: list[TaskView] = Field(
        description="open and claimed tasks, by priority (highest first), then the tasks "
        "without one by due time"
    )


class StartResult(_View):
    instance_id: str
    status: Literal["started"]


class EventAccepted(_View):
    event_id: str
    status: Literal["accepted"]


class NotificationAccepted(_View):
    decisions: int = Field(ge=0, description="PriorAuth.Decided events put on the bus")


# -- request bodies the handler validates by other means ---------------------------------------
class EventDetail(BaseModel):
    metadata: Metadata
    data: dict[str, Any] = Field(description="the detail-type's data (see docs/events.md)")


class PartnerEvent(BaseModel):
    """An EventBridge event as ``parse_event`` reads it (envelope and the detail-type's
    data schema); partners may put the sources listed."""

    model_config = ConfigDict(populate_by_name=True)

    source: str = Field(
        json_schema_extra={
            "enum": [
                "careflow.ehr",
                "careflow.erp",
                "careflow.payer",
                "careflow.scheduling",
                "careflow.workforce",
            ]
        }
    )
    detail_type: str = Field(alias="detail-type", pattern=r"^[A-Z][A-Za-z]+\.[A-Z][A-Za-z]+$")
    detail: EventDetail


class PasNotification(BaseModel):
    """A PAS Subscription notification Bundle (FHIR R4), read by the payer adapter: a
    JSON object; what it must hold is the adapter's (422 when it cannot read it)."""

    model_config = ConfigDict(extra="allow")


# -- errors -----------------------------------------------------------------------------------
class FieldError(_View):
    field: str = Field(description="where: body.x, query.y, header.Z (never the value)")
    reason: str = Field(description="pydantic's error type, or missing / invalid")


class ProblemDetails(_View):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    # present only where they apply (never null)
    errors: list[FieldError] = Field(default_factory=list, description="on 400: each field")
    instance_id: str = Field(default="", description="on a 409 start: the subject's instance")


# -- the operations page's reads (careflow.ops) --------------------------------------------
class BoardCard(_View):
    instance_id: str
    status: InstanceStatus
    facility_id: str
    service_line: str | None
    subject_type: str
    subject_id: str | None = Field(
        description="null unless the caller's roles work or supervise one of the workflow's "
        "queues (a token naming no roles: its scopes decide, as elsewhere in /v1)"
    )
    milestone: str = Field(description="the latest milestone's name (started when none)")
    milestone_status: str
    since: str | None = Field(description="when the latest milestone was reached")
    started_at: str | None
    scheduled_start: str | None
    open_tasks: int
    overdue_tasks: int


class BoardColumn(_View):
    milestone: str
    count: int
    instances: list[BoardCard]


class BoardWorkflow(_View):
    workflow_id: str
    title: str
    running: int = Field(description="instances not yet ended")
    listed: int = Field(description="of them, those listed (the oldest change first)")
    subjects_visible: bool
    milestones: list[BoardColumn]


class Board(_View):
    at: str
    workflows: list[BoardWorkflow]


class QueueRow(_View):
    queue: str
    facility_id: str
    workflow_ids: list[str]
    open: int = Field(description="open or claimed tasks")
    claimed: int
    overdue: int
    escalated: int
    oldest_age_minutes: int
    aging: dict[str, int] = Field(description="open tasks by age bucket (see buckets)")
    top_priority: float = Field(
        ge=0, le=1, description="its most urgent task's priority (0 when none is scored)"
    )
    may_work: bool | None
    may_supervise: bool | None


class QueueReport(_View):
    at: str
    buckets: list[str]
    queues: list[QueueRow] = Field(description="the most urgent work first (top_priority)")


class SeriesPoint(_View):
    since: str
    until: str
    started: dict[str, int]
    ended: dict[str, int]
    tasks_opened: int
    sla_met: int
    sla_missed: int
    sla_adherence: float | None


class KpiSeries(_View):
    interval_seconds: int
    since: str
    until: str
    facilities: list[str]
    workflow_ids: list[str]
    points: list[SeriesPoint]
