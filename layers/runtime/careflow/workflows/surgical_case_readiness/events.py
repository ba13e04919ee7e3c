"""The data of the events surgical case readiness consumes (the envelope is shared)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class AppointmentBooked(BaseModel):
    """``careflow.scheduling`` / ``Appointment.Booked``: a FHIR Appointment was booked."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    appointment_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-.]+$")
    appointment_type: Literal["procedure", "consult", "follow-up", "imaging"]
    scheduled_start: datetime

    @field_validator("scheduled_start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("scheduled_start must carry a UTC offset")
        return value


class CaseOutcome(BaseModel):
    """``careflow.workflow`` / ``Case.Ready|AtRisk|Blocked``: what readiness concluded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: str
    instance_id: str
    outcome: Literal["READY", "AT_RISK", "BLOCKED"]
    reasons: list[str]
    scheduled_start: datetime
