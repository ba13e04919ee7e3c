"""The data of the events staffing gap detection consumes besides the ADT feed (whose
models are careflow.canonical.encounters, shared with every workflow that hears them)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

SOURCE = "careflow.workforce"
CHECK_DUE = "StaffingCheck.Due"


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise PydanticCustomError("naive_datetime", "a time without its UTC offset")
    return value


class StaffingCheckDue(BaseModel):
    """``careflow.workforce`` / ``StaffingCheck.Due``: a unit's upcoming shift is to be
    checked (put on the bus by the unit's EventBridge Scheduler schedule ahead of each
    shift, or by ``careflow staffing check``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$", description="the unit"
    )
    shift_start: datetime | None = Field(
        default=None, description="the shift to check; the next one to start when absent"
    )

    _aware = field_validator("shift_start")(_aware)
