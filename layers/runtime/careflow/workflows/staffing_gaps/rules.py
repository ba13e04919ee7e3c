"""Staffing gap detection: the census, the shift, the staff a unit needs and the gap.

Pure functions over canonical models; the steps fetch through ports and call these.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from careflow.canonical import encounters as enc
from careflow.canonical.workforce import (
    CensusEntry,
    OptionKind,
    RosterEntry,
    StaffingOption,
    UnitType,
)

POLICY = "staffing"
SHIFT_HOURS_FALLBACK = 12

# What each ADT event says of where the encounter is now.
PRESENT_AFTER = {
    enc.ADMITTED: True,
    enc.TRANSFERRED: True,
    enc.DISCHARGE_CANCELLED: True,
    enc.DISCHARGED: False,
    enc.ADMIT_CANCELLED: False,
    # A08 admits no one: it changes a present encounter's unit or acuity (see
    # update_matters); its presence stays the stored one
    enc.UPDATED: True,
}
CENSUS_EVENTS = tuple(PRESENT_AFTER)


class Policy(BaseModel):
    """What one assessment runs by, resolved at its start and pinned with its version."""

    model_config = ConfigDict(frozen=True)

    policy_version: str
    shift_starts: tuple[str, ...]
    census_debounce_seconds: int
    early_warning_seconds: int
    coordinator_task_seconds: int
    coordinator_queue: str
    escalation_chain: tuple[str, ...]
    coordinator_decisions: tuple[str, ...]
    pacu_cases_per_nurse: int
    ratios: dict[str, float]  # unit type -> patients per nurse
    skills: dict[str, str]  # unit type -> the skill a nurse needs there
    acuity_weights: dict[int, float]  # acuity 1..5 -> weight


def staffing_policy(snapshot: Any) -> Policy:
    ratio = snapshot.table("ratio")
    weight = snapshot.table("acuity_weight")
    unit_types: tuple[UnitType, ...] = ("icu", "med-surg", "pacu")
    rows = {t: ratio.decide({"unit_type": t}).outputs for t in unit_types}
    return Policy(
        policy_version=snapshot.version,
        shift_starts=tuple(snapshot.value("shift_starts")),
        census_debounce_seconds=int(snapshot.value("census_debounce_seconds")),
        early_warning_seconds=int(snapshot.value("early_warning_seconds")),
        coordinator_task_seconds=int(snapshot.value("coordinator_task_seconds")),
        coordinator_queue=str(snapshot.value("coordinator_queue")),
        escalation_chain=tuple(snapshot.value("escalation_chain")),
        coordinator_decisions=tuple(snapshot.value("coordinator_decisions")),
        pacu_cases_per_nurse=int(snapshot.value("pacu_cases_per_nurse")),
        ratios={t: float(r["patients_per_nurse"]) for t, r in rows.items()},
        skills={t: str(r["skill"]) for t, r in rows.items()},
        acuity_weights={
            a: float(weight.decide({"acuity": a}).outputs["weight"]) for a in range(1, 6)
        },
    )


# -- census ----------------------------------------------------------------------------------
def census_entry(
    facility_id: str,
    detail_type: str,
    encounter_id: str,
    *,
    unit: str | None,
    acuity: int | None,
    occurred_at: datetime,
    stored: CensusEntry | None,
) -> CensusEntry:
    """The encounter's entry after ``detail_type``: where it is, its acuity, as of when.

    A cancelled discharge puts the patient back where the stored entry last had them
    when the event names no unit; an acuity the event does not send is kept."""
    return CensusEntry(
        facility_id=facility_id,
        encounter_id=encounter_id,
        unit=unit or (stored.unit if stored else None),
        acuity=acuity if acuity is not None else (stored.acuity if stored else None),
        present=PRESENT_AFTER[detail_type],
        as_of=occurred_at,
        event=detail_type,
    )


def update_matters(stored: CensusEntry | None, *, unit: str | None, acuity: int | None) -> bool:
    """Whether an A08 (``Encounter.Updated``) changes the census: only for an encounter
    the census holds as present, and only a new unit or a new acuity. Most A08s carry
    demographics (a new address, a corrected name): they change no staffing."""
    if stored is None or not stored.present:
        return False
    return (unit is not None and unit != stored.unit) or (
        acuity is not None and acuity != stored.acuity
    )


def unit_census(entries: Iterable[CensusEntry], unit: str) -> list[CensusEntry]:
    """The patients on ``unit`` now (one entry per encounter, by construction)."""
    return [e for e in entries if e.present and e.unit == unit]


def superseded(entries: Iterable[CensusEntry], unit: str, as_of: datetime) -> bool:
    """A later change touched the unit: its own assessment will run (trailing debounce)."""
    return any(e.unit == unit and e.as_of > as_of for e in entries)


# -- shifts ----------------------------------------------------------------------------------
def _starts(policy: Policy) -> list[time]:
    return sorted(time.fromisoformat(s) for s in policy.shift_starts)


def next_shift(now: datetime, zone: ZoneInfo, policy: Policy) -> tuple[datetime, datetime]:
    """The next shift to start after ``now`` (aware): its start and end, in UTC."""
    local = now.astimezone(zone)
    candidates = [
        datetime.combine(local.date() + timedelta(days=d), t, tzinfo=zone)
        for d in (0, 1, 2)
        for t in _starts(policy)
    ]
    upcoming = sorted(c for c in candidates if c > local)
    return upcoming[0].astimezone(UTC), upcoming[1].astimezone(UTC)


def shift_end(start: datetime, zone: ZoneInfo, policy: Policy) -> datetime:
    local = start.astimezone(zone)
    candidates = [
        datetime.combine(local.date() + timedelta(days=d), t, tzinfo=zone)
        for d in (0, 1)
        for t in _starts(policy)
    ]
    later = sorted(c for c in candidates if c > local)
    end = later[0] if later else start + timedelta(hours=SHIFT_HOURS_FALLBACK)
    return end.astimezone(UTC)


# -- required staff --------------------------------------------------------------------------
def weighted_patients(acuities: Iterable[int | None], policy: Policy) -> float:
    return sum(policy.acuity_weights.get(a, 1.0) if a else 1.0 for a in acuities)


def _ceil(value: float) -> int:
    return math.ceil(round(value, 6))  # 10.000000001 is 10 nurses, not 11


def required_staff(
    unit_type: str, policy: Policy, *, acuities: Sequence[int | None] = (), cases: int = 0
) -> int:
    """ceil(weighted patients / patients per nurse); PACU: ceil(cases / cases per nurse)."""
    if unit_type == "pacu":
        return _ceil(cases / policy.pacu_cases_per_nurse) if cases else 0
    if not acuities:
        return 0
    return _ceil(weighted_patients(acuities, policy) / policy.ratios[unit_type])


def rostered(roster: Iterable[RosterEntry], skill: str, role: str = "RN") -> int:
    """Rostered nurses who can take the unit's patients (the role and the unit's skill)."""
    return sum(1 for r in roster if r.role == role and skill in r.skills)


def cases_in_window(starts: Iterable[datetime], begin: datetime, end: datetime) -> int:
    """Scheduled cases starting in [begin, end): PACU recovers them this shift."""
    return sum(1 for s in starts if begin <= s < end)


class Gap(BaseModel):
    model_config = ConfigDict(frozen=True)

    required: int
    rostered: int
    size: int  # nurses short (0: no gap)
    skill: str


def gap(required: int, on_roster: int, skill: str) -> Gap:
    return Gap(
        required=required, rostered=on_roster, size=max(0, required - on_roster), skill=skill
    )


# -- options ---------------------------------------------------------------------------------
class CostedOption(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str
    covers: int  # how many of the gap it fills
    lead_time_hours: float
    in_time: bool  # its lead time fits before the shift starts
    cost: float  # for the whole shift


def costed_options(
    options: Iterable[StaffingOption], size: int, hours_to_shift: float, shift_hours: float
) -> list[CostedOption]:
    """Each option: how much of the gap it covers, whether it is in time, what it costs for
    the shift; the in-time ones first, cheapest first."""
    out = [
        CostedOption(
            kind=o.kind,
            covers=min(size, o.available),
            lead_time_hours=o.lead_time_hours,
            in_time=o.lead_time_hours <= hours_to_shift,
            cost=round(min(size, o.available) * o.cost_per_hour * shift_hours, 2),
        )
        for o in options
        if o.available > 0
    ]
    return sorted(out, key=lambda c: (not c.in_time, c.cost, c.kind))


def option_reason(o: CostedOption) -> str:
    timing = "in time" if o.in_time else "too late"
    return (
        f"{o.kind}: covers {o.covers}, lead time {o.lead_time_hours:g} h ({timing}), "
        f"${o.cost:,.0f} for the shift"
    )


DECISION_OPTIONS: dict[str, OptionKind] = {
    "FLOAT_POOL": "float_pool",
    "AGENCY": "agency",
    "OVERTIME": "overtime",
    "FLEX_CENSUS": "flex_census",
}


def outcome_of(decision: str | None) -> str:
    """FILLED when the coordinator chose an option, UNFILLED otherwise."""
    return "FILLED" if decision in DECISION_OPTIONS else "UNFILLED"
