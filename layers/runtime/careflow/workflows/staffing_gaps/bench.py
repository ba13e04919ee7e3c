"""``make bench``'s case (careflow.kit.bench): the pre-shift check of a unit staffed to
ratio for its next shift → no gap, no coordinator.

``waiting``: South Bay's ICU (ICU-S, four nurses a shift) with twelve patients of acuity
3 on it, checked for one of its coming shifts: short, a staffing coordinator's task
(``staffing_coordinator``) that nobody decides. Each call checks a shift of its own (a
second check of the same unit's shift would find its gap already open)."""

from __future__ import annotations

import itertools
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from careflow.kit.bench import start_target

UNIT = ("fac-north", "5W")
SHORT_UNIT = ("fac-south", "ICU-S")  # no test or demo puts patients on it
SHORT_CENSUS = 12  # patients of acuity 3: more nurses than the four rostered
SHIFT_STARTS = (time(7), time(19))  # local, the sandbox policy's
_shifts = itertools.count(1)  # the coming shifts, one per waiting check of this process


def _check(key: str, facility_id: str, now: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """The intake target of one ``StaffingCheck.Due`` (the schedule's start event)."""
    return start_target(
        "staffing-gaps",
        "careflow.workforce",
        "StaffingCheck.Due",
        facility_id=facility_id,
        key=key,
        now=now,
        data=data,
    )


def case(cloud: Any, key: str) -> dict[str, Any]:
    facility_id, unit = UNIT
    return _check(key, facility_id, cloud.clock.now(), {"unit": unit})


def _shift_start(now: datetime, nth: int) -> datetime:
    """The ``nth`` shift start (1 the next) at least two hours after ``now``, in UTC."""
    from careflow.facilities import zone_of

    zone = zone_of(SHORT_UNIT[0])
    local = (now + timedelta(hours=2)).astimezone(zone)
    starts = sorted(
        datetime.combine(local.date() + timedelta(days=d), t, tzinfo=zone)
        for d in range(nth // 2 + 2)
        for t in SHIFT_STARTS
    )
    upcoming = [s for s in starts if s > local]
    return upcoming[nth - 1].astimezone(ZoneInfo("UTC"))


def waiting(cloud: Any, key: str) -> dict[str, Any]:
    from careflow import wiring
    from careflow.canonical.workforce import CensusEntry

    facility_id, unit = SHORT_UNIT
    now = cloud.clock.now()
    for n in range(SHORT_CENSUS):  # the same patients each call: the census stays twelve
        wiring.store().put_census_entry(
            CensusEntry(
                facility_id=facility_id,
                encounter_id=f"V-{unit}-{n:03d}",
                unit=unit,
                acuity=3,
                present=True,
                as_of=now - timedelta(hours=6),
                event="Encounter.Admitted",
            )
        )
    shift = _shift_start(now, next(_shifts))
    return _check(key, facility_id, now, {"unit": unit, "shift_start": shift.isoformat()})
