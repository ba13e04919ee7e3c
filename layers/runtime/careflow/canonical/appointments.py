"""The surgical schedule as careflow's workflows hear of it: the data of the
``careflow.scheduling`` / ``Appointment.*`` events, one model per detail-type, shared by
every workflow that consumes them (surgical case readiness starts, moves and stops a case
on them; supply replenishment reviews the facility; the registry allows one schema per
detail-type). They arrive from HL7 v2 SIU (S12 booked, S13/S14 rescheduled, S15
cancelled) through the HL7 v2 adapter, or from FHIR Appointment changes. Identifiers and
codes only.

Unknown fields are refused (decision 23), as for every consumed event.
"""

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
