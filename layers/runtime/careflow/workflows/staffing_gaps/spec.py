"""Staffing gap detection, as the registry reads it."""

from __future__ import annotations

from typing import Any

from careflow.canonical import encounters as enc
from careflow.kit.spec import Kpi, Schedule, Sla, Trigger, Workflow, step_function
from careflow.workflows.staffing_gaps import kpis
from careflow.workflows.staffing_gaps.events import CHECK_DUE, SOURCE, StaffingCheckDue

_STEPS = "careflow.workflows.staffing_gaps.steps"

# The ADT events that move the census (A01, A02, A03, A11, A13).
CENSUS_EVENTS = (
    enc.ADMITTED,
    enc.TRANSFERRED,
    enc.DISCHARGED,
    enc.ADMIT_CANCELLED,
    enc.DISCHARGE_CANCELLED,
    enc.UPDATED,  # A08: a new unit or acuity of an encounter on the census
)


def _census_change(event: Any) -> dict[str, Any]:
    """The census change, by encounter: identifiers, the unit and the acuity only."""
    data = event.data
    return {
        "trigger": "census",
        "change": {
            "detail_type": event.detail_type,
            "encounter_id": data.encounter_id,
            "unit": data.unit,
            "acuity": data.acuity,
        },
        "unit": None,
        "shift_start": None,
    }


def _check_due(event: Any) -> dict[str, Any]:
    data = event.data
    start = data.shift_start.isoformat() if data.shift_start else None
    return {"trigger": "schedule", "change": None, "unit": data.unit, "shift_start": start}


# The units checked ahead of each shift (the sandbox hospital's; a deployment lists its
# own): shifts start at 07:00 and 19:00 local (policy ``shift_starts``), so each unit's
# check runs 4 h before, at 03:00 and 15:00 in the facility's zone, and checks the next.
PRE_SHIFT_UNITS = {
    "fac-north": ("ICU-N", "4W", "5W", "PACU-N"),
    "fac-south": ("ICU-S", "3E", "PACU-S"),
    "fac-asc": ("PACU-ASC",),
}
PRE_SHIFT_CRON = "cron(0 3,15 * * ? *)"
TIME_ZONE = "America/Chicago"


def _schedules() -> tuple[Schedule, ...]:
    return tuple(
        Schedule(
            name="StaffingCheck" + "".join(p.capitalize() for p in f"{fac}-{unit}".split("-")),
            expression=PRE_SHIFT_CRON,
            time_zone=TIME_ZONE,
            source=SOURCE,
            detail_type=CHECK_DUE,
            facility_id=fac,
            data={"unit": unit},
            description=f"{unit} at {fac}: staffing checked 4 h before each shift",
        )
        for fac, units in PRE_SHIFT_UNITS.items()
        for unit in units
    )


def _step(name: str, step: str, description: str, **kw: Any) -> Any:
    return step_function(name, f"{_STEPS}:{step}", description, **kw)


SPEC = Workflow(
    id="staffing-gaps",
    name="StaffingGaps",
    title="Staffing gap detection",
    asl="staffing_gaps.asl.json",
    type="STANDARD",
    subject_type="unit_shift",
    policy="staffing",
    steps=(
        _step(
            "StartStaffingAssessment",
            "start_assessment",
            "Applies a census change, pins the staffing policy, picks the unit's shift",
            store_access=("census",),
        ),
        _step(
            "CheckCensusSuperseded",
            "check_superseded",
            "After the debounce: has a later census change taken over?",
            store_access=("census",),
        ),
        _step(
            "AssessUnitStaffing",
            "assess_unit",
            "Required staff vs the roster: the gap",
            store_access=("census", "open_tasks", "instances_by_status"),
        ),
        _step(
            "RecordStaffingDecision",
            "record_decision",
            "Sends the coordinator's decision to the workforce system",
        ),
        _step("FinishStaffingAssessment", "finish_assessment", "Writes the outcome and KPIs"),
    ),
    triggers=(
        *(
            Trigger(source=enc.SOURCE, detail_type=dt, build_input=_census_change)
            for dt in CENSUS_EVENTS
        ),
        Trigger(source=SOURCE, detail_type=CHECK_DUE, build_input=_check_due),
    ),
    schedules=_schedules(),
    event_schemas={
        **{dt: enc.EVENT_SCHEMAS[dt] for dt in CENSUS_EVENTS},
        CHECK_DUE: StaffingCheckDue,
    },
    slas=(
        Sla("coordinator_task", 2 * 3600, "the staffing coordinator acts on a gap"),
        Sla("early_warning", 4 * 3600, "a gap is found at least this long before its shift"),
    ),
    kpis=(
        Kpi("StaffingGapsFound", "Count", "unit-shifts found short of staff"),
        Kpi("StaffingGapsFoundEarly", "Count", "gaps found at least 4 h before the shift"),
        Kpi("StaffingGapsFilled", "Count", "gaps the coordinator filled with an option"),
        Kpi("StaffingGapsUnfilledAtShiftStart", "Count", "gaps still open when the shift began"),
        Kpi("OvertimeHours", "Count", "overtime hours the coordinator's decisions booked"),
    ),
    served_kpis=kpis.DEFINITIONS,
    kpi_values="careflow.workflows.staffing_gaps.kpis:values",
    demo="careflow.workflows.staffing_gaps.demo:run",
    bench="careflow.workflows.staffing_gaps.bench:case",
)
