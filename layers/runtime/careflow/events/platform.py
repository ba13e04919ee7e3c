"""The data of careflow's own platform events: the human-task loop, not one workflow's.

Identifiers only: a task's title, reasons and a person's free text may name the patient,
so they never leave the state store in an event.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

_TASK_ID = r"^task-[0-9a-f]{16}$"


class _TaskEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task_id: str = Field(pattern=_TASK_ID)
    instance_id: str = Field(min_length=1, max_length=128)
    queue: str = Field(min_length=1, max_length=64)
    facility_id: str = Field(min_length=1, max_length=64)


class HumanTaskOpened(_TaskEvent):
    """``careflow.workflow`` / ``HumanTask.Opened``: a task waits in ``queue`` until ``due_at``."""

    due_at: datetime

    @field_validator("due_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("due_at must carry a UTC offset")
        return value


class WorkflowEscalated(_TaskEvent):
    """``careflow.workflow`` / ``Workflow.Escalated``: an overdue task moved up to ``queue``."""

    level: int = Field(ge=1)


PLATFORM_SCHEMAS: dict[str, type[BaseModel]] = {
    "HumanTask.Opened": HumanTaskOpened,
    "Workflow.Escalated": WorkflowEscalated,
}
