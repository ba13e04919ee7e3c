"""The sandbox hospital's workforce system: its units, a roster for every shift, the
float pool, agency and overtime on offer; and the in-process sandbox that serves them
(the HTTP sandbox, ``workforce_server``, serves the same data over the REST contract).

Staff are opaque ids with a role and skills: no names, as in the real feed careflow reads.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from careflow.canonical.workforce import (
    RecordedDecision,
    RosterEntry,
    StaffingDecision,
    StaffingOption,
    Unit,
)

UNITS: tuple[Unit, ...] = (
    Unit(facility_id="fac-north", unit_id="ICU-N", unit_type="icu", beds=12),
    Unit(facility_id="fac-north", unit_id="4W", unit_type="med-surg", beds=28),
    Unit(facility_id="fac-north", unit_id="5W", unit_type="med-surg", beds=30),
    Unit(facility_id="fac-north", unit_id="PACU-N", unit_type="pacu", beds=10),
    Unit(facility_id="fac-south", unit_id="ICU-S", unit_type="icu", beds=8),
    Unit(facility_id="fac-south", unit_id="3E", unit_type="med-surg", beds=24),
    Unit(facility_id="fac-south", unit_id="PACU-S", unit_type="pacu", beds=6),
    Unit(facility_id="fac-asc", unit_id="PACU-ASC", unit_type="pacu", beds=8),
)
SKILL = {"icu": "critical-care", "med-surg": "med-surg", "pacu": "pacu"}

# Registered nurses rostered per shift (day starts before noon, local time), and aides.
RN_PER_SHIFT: dict[str, tuple[int, int]] = {
    "ICU-N": (6, 6),
    "4W": (5, 4),
    "5W": (6, 5),
    "PACU-N": (1, 0),
    "ICU-S": (4, 4),
    "3E": (5, 4),
    "PACU-S": (1, 0),
    "PACU-ASC": (2, 0),
}
CNA_PER_SHIFT = 2

# Per facility and skill: (float pool nurses, agency nurses, agency lead time in hours).
POOLS: dict[tuple[str, str], tuple[int, int, float]] = {
    ("fac-north", "critical-care"): (1, 2, 12.0),
    ("fac-north", "med-surg"): (2, 4, 8.0),
    ("fac-north", "pacu"): (1, 1, 24.0),
    ("fac-south", "critical-care"): (0, 1, 12.0),
    ("fac-south", "med-surg"): (1, 3, 8.0),
    ("fac-south", "pacu"): (0, 1, 24.0),
    ("fac-asc", "pacu"): (1, 1, 24.0),
}
COST_PER_HOUR = {"float_pool": 68.0, "agency": 145.0, "overtime": 96.0, "flex_census": 0.0}
OVERTIME_ELIGIBLE = 2  # per unit and shift: staff off that shift who may pick it up
OVERTIME_LEAD_H = 1.0
FLOAT_LEAD_H = 1.0
FLEX_BEDS = 4  # admissions a unit may hold for a shift


def unit(facility_id: str, unit_id: str) -> Unit | None:
    return next((u for u in UNITS if u.facility_id == facility_id and u.unit_id == unit_id), None)


def seeded_roster(found: Unit, shift_start: datetime, *, day: bool) -> list[RosterEntry]:
    rn = RN_PER_SHIFT.get(found.unit_id, (0, 0))[0 if day else 1]
    tag = f"{found.unit_id.lower()}-{shift_start:%Y%m%d}{'d' if day else 'n'}"
    skill = SKILL[found.unit_type]
    nurses = [
        RosterEntry(
            staff_id=f"rn-{tag}-{i:02d}",
            unit_id=found.unit_id,
            shift_start=shift_start,
            role="RN",
            skills=(skill, "bls"),
        )
        for i in range(1, rn + 1)
    ]
    aides = [
        RosterEntry(
            staff_id=f"cna-{tag}-{i:02d}",
            unit_id=found.unit_id,
            shift_start=shift_start,
            role="CNA",
            skills=("bls",),
        )
        for i in range(1, (CNA_PER_SHIFT if found.unit_type != "pacu" else 0) + 1)
    ]
    return nurses + aides


@dataclass
class WorkforceSandbox:
    """Implements :class:`careflow.ports.WorkforcePort` in process, over the seed.

    ``roster_changes`` adds (or, negative, removes) RNs of a unit's shift; a recorded
    decision takes its staff from the pool it used and puts them on the roster."""

    roster_changes: dict[tuple[str, str, datetime], int] = field(default_factory=dict)
    used: dict[tuple[str, str, str], int] = field(default_factory=dict)
    decisions: dict[str, StaffingDecision] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def units(self, facility_id: str) -> Sequence[Unit]:
        return [u for u in UNITS if u.facility_id == facility_id]

    def facility_unknown(self, facility_id: str, unit_id: str) -> bool:
        return unit(facility_id, unit_id) is None

    def roster(
        self, facility_id: str, unit_id: str, shift_start: datetime
    ) -> Sequence[RosterEntry]:
        from careflow.facilities import facility

        found = unit(facility_id, unit_id)
        if found is None:
            return []
        fac = facility(facility_id)
        local = fac.local(shift_start) if fac else shift_start
        entries = seeded_roster(found, shift_start, day=local.hour < 12)
        change = self.roster_changes.get((facility_id, unit_id, shift_start), 0)
        nurses = [e for e in entries if e.role == "RN"]
        others = [e for e in entries if e.role != "RN"]
        if change < 0:
            nurses = nurses[: max(0, len(nurses) + change)]
        extra = [
            RosterEntry(
                staff_id=f"rn-{unit_id.lower()}-extra-{i:02d}",
                unit_id=unit_id,
                shift_start=shift_start,
                role="RN",
                skills=(SKILL[found.unit_type], "bls"),
            )
            for i in range(1, max(0, change) + 1)
        ]
        return nurses + extra + others

    def staffing_options(
        self, facility_id: str, unit_id: str, shift_start: datetime, skill: str
    ) -> Sequence[StaffingOption]:
        float_pool, agency, agency_lead = POOLS.get((facility_id, skill), (0, 0, 24.0))
        used = self.used
        return [
            StaffingOption(
                kind="float_pool",
                available=max(0, float_pool - used.get((facility_id, skill, "float_pool"), 0)),
                lead_time_hours=FLOAT_LEAD_H,
                cost_per_hour=COST_PER_HOUR["float_pool"],
            ),
            StaffingOption(
                kind="agency",
                available=max(0, agency - used.get((facility_id, skill, "agency"), 0)),
                lead_time_hours=agency_lead,
                cost_per_hour=COST_PER_HOUR["agency"],
            ),
            StaffingOption(
                kind="overtime",
                available=OVERTIME_ELIGIBLE,
                lead_time_hours=OVERTIME_LEAD_H,
                cost_per_hour=COST_PER_HOUR["overtime"],
            ),
            StaffingOption(
                kind="flex_census",
                available=FLEX_BEDS,
                lead_time_hours=0.0,
                cost_per_hour=0.0,
            ),
        ]

    def record_decision(self, decision: StaffingDecision) -> RecordedDecision:
        with self._lock:
            if decision.decision_id in self.decisions:
                return RecordedDecision(decision_id=decision.decision_id, status="DUPLICATE")
            self.decisions[decision.decision_id] = decision
            if decision.option in ("float_pool", "agency", "overtime") and decision.staff_count:
                found = unit(decision.facility_id, decision.unit_id)
                if found is not None:
                    key = (decision.facility_id, SKILL[found.unit_type], decision.option)
                    self.used[key] = self.used.get(key, 0) + decision.staff_count
                shift = (decision.facility_id, decision.unit_id, decision.shift_start)
                self.roster_changes[shift] = (
                    self.roster_changes.get(shift, 0) + decision.staff_count
                )
        return RecordedDecision(decision_id=decision.decision_id, status="ACCEPTED")


_SANDBOX: WorkforceSandbox | None = None
_LOCK = threading.Lock()


def workforce_sandbox() -> WorkforceSandbox:
    global _SANDBOX
    with _LOCK:
        if _SANDBOX is None:
            _SANDBOX = WorkforceSandbox()
        return _SANDBOX


def reset_workforce_sandbox() -> WorkforceSandbox:
    global _SANDBOX
    with _LOCK:
        _SANDBOX = WorkforceSandbox()
        return _SANDBOX
