"""The data of the events the post-procedure revenue cycle consumes and publishes.

It consumes ``careflow.ehr`` / ``SurgicalCase.Completed`` (identifiers only: the EHR is
re-read for what the case used, its charges, documentation, coding and holds) and
publishes ``careflow.workflow`` / ``RevenueCycle.Concluded``. Unknown fields are refused
(decision 23)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

SOURCE = "careflow.ehr"
COMPLETED = "SurgicalCase.Completed"
CONCLUDED = "RevenueCycle.Concluded"

_Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


class SurgicalCaseCompleted(BaseModel):
    """``careflow.ehr`` / ``SurgicalCase.Completed``: the case left the OR and its record
    closed (the facility is the envelope's ``metadata.facility_id``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: _Id = Field(description="the case's appointment id in the EHR")
    encounter_id: _Id = Field(description="the encounter's visit number (PV1-19)")
    procedure_end: datetime = Field(description="when the procedure ended (with its offset)")

    @field_validator("procedure_end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("procedure_end needs a UTC offset")
        return value


class RevenueCycleConcluded(BaseModel):
    """``careflow.workflow`` / ``RevenueCycle.Concluded``: how a case's billing ended."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: str
    instance_id: str
    outcome: str
    causes: list[str]
    claim_id: str | None
    charge_lag_days: int | None
    missing_charges: str  # dollars, a decimal string
