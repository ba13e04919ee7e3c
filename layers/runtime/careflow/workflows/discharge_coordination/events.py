"""The data of the events discharge coordination consumes and publishes.

It consumes the canonical encounter events (``careflow.ehr`` / ``Encounter.*``), shared with
every workflow that hears of encounters: they are imported from
:mod:`careflow.canonical.encounters`, never copied (one model per detail-type)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from careflow.canonical.encounters import (
    ADMIT_CANCELLED,
    DISCHARGE_CANCELLED,
    DISCHARGE_PENDING,
    DISCHARGED,
    SOURCE,
    EncounterAdmitCancelled,
    EncounterDischargeCancelled,
    EncounterDischarged,
    EncounterDischargePending,
)

__all__ = [
    "ADMIT_CANCELLED",
    "DISCHARGED",
    "DISCHARGE_CANCELLED",
    "DISCHARGE_PENDING",
    "SOURCE",
    "DischargeConcluded",
    "EncounterAdmitCancelled",
    "EncounterDischargeCancelled",
    "EncounterDischargePending",
    "EncounterDischarged",
]

CONCLUDED = "Discharge.Concluded"


class DelayRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dependency: str
    cause: str
    owner: str
    minutes: int


class DischargeConcluded(BaseModel):
    """``careflow.workflow`` / ``Discharge.Concluded``: how a discharge's coordination ended
    (DISCHARGED, or NOT_DISCHARGED when no departure came), with its delays by cause."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    encounter_id: str
    instance_id: str
    outcome: str
    expected_discharge_at: str
    departed_at: str | None
    order_to_departure_seconds: int | None
    before_noon: bool | None
    delays: list[DelayRecord]
    # MET, PENDING (patient financial services acts) or ERROR; None when not checked
    billing_readiness: str | None = None
