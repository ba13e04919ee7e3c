"""The inpatient encounter as careflow's workflows hear of it: the data of the
``careflow.ehr`` / ``Encounter.*`` events, one model per detail-type, shared by every
workflow that consumes them (the registry allows one schema per detail-type).

They arrive from HL7 v2 ADT (A01 admit, A02 transfer, A03 discharge, A08 update, A11
cancel admit, A13 cancel discharge, A16 pending discharge) through the HL7 v2 adapter, or
from FHIR Encounter changes. Identifiers only: the patient is PID-3's identifier and its
assigning authority, the visit is PV1-19, the location PV1-3's unit, room and bed. Names,
addresses, birth dates, SSNs and next of kin stop at the adapter.

Unknown fields are refused (decision 23), as for every consumed event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

SOURCE = "careflow.ehr"

ADMITTED = "Encounter.Admitted"  # A01
TRANSFERRED = "Encounter.Transferred"  # A02
UPDATED = "Encounter.Updated"  # A08
ADMIT_CANCELLED = "Encounter.AdmitCancelled"  # A11
DISCHARGE_PENDING = "Encounter.DischargePending"  # A16
DISCHARGED = "Encounter.Discharged"  # A03
DISCHARGE_CANCELLED = "Encounter.DischargeCancelled"  # A13

_Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
# Unit, room and bed names as ADT feeds send them ("HUH AE OMU", "Bed 03", "4 East, room
# 136"): the HL7 fixtures proved the identifier pattern too narrow for locations.
_Place = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._:,/#-]*$"),
]
_Code = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")]

# HL7 table 0004, patient class (PV1-2)
PatientClass = Literal["I", "O", "E", "P", "R", "B", "N", "U"]


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise PydanticCustomError("naive_datetime", "a time without its UTC offset")
    return value


class _Encounter(BaseModel):
    """What every encounter event carries: which visit, whose, where."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    encounter_id: _Id = Field(description="the visit number (PV1-19)")
    patient_id: _Id = Field(description="the patient's identifier (PID-3.1)")
    patient_id_authority: _Id = Field(description="who assigned the patient's identifier (PID-3.4)")
    unit: _Place | None = Field(default=None, description="the nursing unit (PV1-3.1)")
    room: _Place | None = Field(default=None, description="the room (PV1-3.2)")
    bed: _Place | None = Field(default=None, description="the bed (PV1-3.3)")
    patient_class: PatientClass | None = Field(
        default=None, description="inpatient, outpatient, emergency... (PV1-2, table 0004)"
    )
    acuity: int | None = Field(
        default=None, ge=1, le=5, description="nursing acuity, 1 (lowest) to 5, when sent"
    )
    message_id: _Id | None = Field(
        default=None, description="the HL7 v2 message control id (MSH-10) it came from"
    )


class EncounterAdmitted(_Encounter):
    """A01: the patient is admitted to ``unit``."""

    admitted_at: datetime = Field(description="when the patient was admitted (PV1-44)")

    _aware = field_validator("admitted_at")(_aware)


class EncounterTransferred(_Encounter):
    """A02: the patient moved from ``prior_unit`` to ``unit`` (census moves)."""

    prior_unit: _Place | None = Field(default=None, description="where from (PV1-6.1)")
    transferred_at: datetime = Field(description="when the move happened (EVN-6 or EVN-2)")

    _aware = field_validator("transferred_at")(_aware)


class EncounterUpdated(_Encounter):
    """A08: the encounter's details changed (location, class, acuity, expected discharge)."""

    expected_discharge_at: datetime | None = Field(
        default=None, description="the expected discharge time (PV2-9)"
    )

    _aware = field_validator("expected_discharge_at")(_aware)


class EncounterAdmitCancelled(_Encounter):
    """A11: the admission was entered in error or did not happen."""


class EncounterDischargePending(_Encounter):
    """A16: a discharge is planned: coordination starts."""

    expected_discharge_at: datetime | None = Field(
        default=None, description="the expected discharge time (PV2-9), when sent"
    )
    disposition: _Code | None = Field(
        default=None, description="where the patient goes (PV1-36, table 0112)"
    )

    _aware = field_validator("expected_discharge_at")(_aware)


class EncounterDischarged(_Encounter):
    """A03: the patient left."""

    discharged_at: datetime = Field(description="when the patient left (PV1-45)")
    disposition: _Code | None = Field(
        default=None, description="where the patient went (PV1-36, table 0112)"
    )

    _aware = field_validator("discharged_at")(_aware)


class EncounterDischargeCancelled(_Encounter):
    """A13: the discharge is cancelled: the patient is back (reopen)."""


EVENT_SCHEMAS: dict[str, type[_Encounter]] = {
    ADMITTED: EncounterAdmitted,
    TRANSFERRED: EncounterTransferred,
    UPDATED: EncounterUpdated,
    ADMIT_CANCELLED: EncounterAdmitCancelled,
    DISCHARGE_PENDING: EncounterDischargePending,
    DISCHARGED: EncounterDischarged,
    DISCHARGE_CANCELLED: EncounterDischargeCancelled,
}
