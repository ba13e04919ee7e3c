"""The data of the events prior authorization consumes and publishes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

_ID = r"^[A-Za-z0-9\-.]+$"
_REF = r"^[A-Za-z]+/[A-Za-z0-9\-.]+$"


class ProcedureCode(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str = Field(min_length=1, max_length=256)
    code: str = Field(min_length=1, max_length=32)
    display: str | None = Field(default=None, max_length=256)


class PriorAuthRequested(BaseModel):
    """``careflow.<system>`` / ``PriorAuth.Requested``: a service needs the payer's approval.

    Identifiers and codes only: the patient and coverage are references into the EHR.
    Unknown fields are refused (decision 23)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str = Field(
        min_length=1, max_length=64, pattern=_ID, description="the order's request id"
    )
    service_line: Literal["imaging", "infusion", "surgery", "post-acute", "other"]
    patient_ref: str = Field(pattern=_REF, max_length=128)
    coverage_ref: str = Field(pattern=_REF, max_length=128)
    payer_id: str = Field(min_length=1, max_length=64, pattern=_ID)
    procedure_codes: tuple[ProcedureCode, ...] = Field(min_length=1, max_length=25)
    service_date: datetime = Field(description="the date of service")
    priority: Literal["routine", "expedited"] = "routine"

    @field_validator("service_date")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise PydanticCustomError("naive_datetime", "a time without its UTC offset")
        return value


class PriorAuthDecided(BaseModel):
    """``careflow.payer`` / ``PriorAuth.Decided``: a payer decided a pended authorization.

    A signal, not the truth: ``PayerDecision`` re-reads the decision from the payer
    (``Claim/$inquire``) before the waiting workflow resumes, and acts on the payer's answer.
    UNKNOWN: the payer's response has a review action careflow cannot read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preauth_ref: str = Field(min_length=1, max_length=128)
    decision: Literal["APPROVED", "DENIED", "MODIFIED", "PARTIAL", "UNKNOWN"]
    decided_at: datetime
    items: list[dict[str, Any]] = Field(default_factory=list)


class PriorAuthConcluded(BaseModel):
    """``careflow.workflow`` / ``PriorAuth.Concluded``: how a prior authorization ended."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str
    instance_id: str
    outcome: str
    preauth_ref: str | None
    reasons: list[str]
    turnaround_seconds: int
    first_pass: bool
