"""Workforce: units, the roster, the staffing options and the coordinator's decision, as
the workforce system (and careflow's census) speak of them. Identifiers and counts only:
a staff member is an opaque id with a role and skills, never a name."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

UnitType = Literal["icu", "med-surg", "pacu"]
OptionKind = Literal["float_pool", "agency", "overtime", "flex_census"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Unit(_Model):
    """A nursing unit: its type decides the ratio and the skill a nurse needs there."""

    facility_id: str
    unit_id: str
    unit_type: UnitType
    beds: int = Field(ge=0)


class RosterEntry(_Model):
    """One person rostered on a unit for a shift (opaque staff id, role and skills)."""

    staff_id: str
    unit_id: str
    shift_start: datetime
    role: str  # RN, LPN, CNA...
    skills: tuple[str, ...] = ()


class StaffingOption(_Model):
    """A way to fill a gap, as the workforce system offers it now."""

    kind: OptionKind
    available: int = Field(ge=0)  # people (or, for flex_census, beds that can be held)
    lead_time_hours: float = Field(ge=0)
    cost_per_hour: float = Field(ge=0)  # per person; 0 for flex_census


class StaffingDecision(_Model):
    """The coordinator's decision on a gap, sent back to the workforce system."""

    decision_id: str
    facility_id: str
    unit_id: str
    shift_start: datetime
    gap: int = Field(ge=0)
    option: OptionKind | None  # None: left unfilled
    staff_count: int = Field(ge=0)
    decided_by: str
    decided_at: datetime


class RecordedDecision(_Model):
    decision_id: str
    status: Literal["ACCEPTED", "DUPLICATE"]


class CensusEntry(_Model):
    """Where one encounter is, as the last ADT event in time said (careflow's census).

    Kept per facility and encounter: a repeated or older event does not change it, so the
    census of a unit never counts a patient twice."""

    facility_id: str
    encounter_id: str
    unit: str | None
    acuity: int | None = Field(default=None, ge=1, le=5)
    present: bool
    as_of: datetime  # the event's time: an older event never overwrites a newer one
    event: str  # the detail-type that set it
