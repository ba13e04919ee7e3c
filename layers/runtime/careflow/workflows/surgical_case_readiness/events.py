"""The data of the events surgical case readiness consumes (the envelope is shared)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

_APPOINTMENT_ID = Field(
    min_length=1,
    max_length=64,
    pattern=r"^[A-Za-z0-9\-.]+$",
    description="the appointment's id (the case)",
)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise PydanticCustomError("naive_datetime", "a time without its UTC offset")
    return value


class AppointmentBooked(BaseModel):
    """``careflow.scheduling`` / ``Appointment.Booked``: a FHIR Appointment was booked.

    Unknown fields are refused (decision 23): the event is parked with the field's name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    appointment_id: str = _APPOINTMENT_ID
    appointment_type: Literal["procedure", "consult", "follow-up", "imaging"] = Field(
        description="the kind of appointment"
    )
    scheduled_start: datetime = Field(description="the case start time")

    _aware_start = field_validator("scheduled_start")(_aware)


class AppointmentRescheduled(BaseModel):
    """``careflow.scheduling`` / ``Appointment.Rescheduled``: a booked appointment moved."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    appointment_id: str = _APPOINTMENT_ID
    scheduled_start: datetime = Field(description="the new case start time")

    _aware_start = field_validator("scheduled_start")(_aware)


class AppointmentCancelled(BaseModel):
    """``careflow.scheduling`` / ``Appointment.Cancelled``: a booked appointment is off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    appointment_id: str = _APPOINTMENT_ID
    reason_code: Literal["patient", "provider", "payer", "clinical", "other"] = Field(
        default="other", description="a coded cancellation reason (never free text)"
    )


class CaseOutcome(BaseModel):
    """``careflow.workflow`` / ``Case.Ready|AtRisk|Blocked``: what readiness concluded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: str
    instance_id: str
    outcome: Literal["READY", "AT_RISK", "BLOCKED"]
    reasons: list[str]
    scheduled_start: datetime
