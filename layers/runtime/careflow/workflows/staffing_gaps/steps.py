"""Staffing gap detection, one registered step per state-machine task.

What a step returns enters the execution's state: the unit, the shift, counts and
option kinds; never a patient. The census is kept by encounter in the state table.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from careflow.canonical import encounters as enc
from careflow.canonical.workforce import StaffingDecision
from careflow.domain.records import AuditEntry, InstanceStatus, Milestone
from careflow.kit.human_tasks import TaskSpec
from careflow.kit.instances import finish_instance, start_instance
from careflow.kit.steps import StepInput, StepOutput, step
from careflow.ports import EhrPort, StateStore, WorkforcePort
from careflow.workflows.staffing_gaps import rules as r
from careflow.workflows.staffing_gaps.kpis import MEASURED

if TYPE_CHECKING:
    from careflow.policies import PolicyReader

WORKFLOW_ID = "staffing-gaps"
PURPOSE = "staffing_gap"
# Surgical case readiness's instances are the OR schedule PACU recovers.
CASES_WORKFLOW = "surgical-case-readiness"
CASE_STATUSES = ("RUNNING", "WAITING", "READY", "AT_RISK")

Next = Literal["ASSESS", "DEBOUNCE", "UNCHANGED", "UNKNOWN_UNIT"]


# -- inputs and outputs --------------------------------------------------------------------
class CensusChange(StepInput):
    detail_type: str
    encounter_id: str
    unit: str | None = None
    acuity: int | None = None


class StartAssessment(StepInput):
    workflow_id: str = WORKFLOW_ID
    instance_id: str
    correlation_id: str
    facility_id: str
    occurred_at: datetime
    trigger: Literal["census", "schedule"]
    change: CensusChange | None = None
    unit: str | None = None
    shift_start: datetime | None = None


class Started(StepOutput):
    next: Next
    policy: r.Policy
    unit: str | None = None
    unit_type: str | None = None
    shift_start: datetime | None = None
    shift_end: datetime | None = None
    as_of: datetime | None = None  # the census change's time (the debounce compares)


class CheckSuperseded(StepInput):
    facility_id: str
    unit: str
    as_of: datetime


class SupersededOrNot(StepOutput):
    superseded: bool


class AssessUnit(StepInput):
    workflow_id: str = WORKFLOW_ID
    instance_id: str
    facility_id: str
    unit: str
    unit_type: str
    shift_start: datetime
    shift_end: datetime
    policy: r.Policy


class Assessment(StepOutput):
    gap: r.Gap
    has_gap: bool
    duplicate: bool  # a task for this unit and shift is already open
    found_early: bool
    options: tuple[r.CostedOption, ...] = ()
    task: TaskSpec | None = None
    task_due_s: int = 60


class CoordinatorAnswer(StepInput):
    task_id: str = ""
    decision: str
    actor: str = ""
    note: str = ""


class RecordDecision(StepInput):
    instance_id: str
    facility_id: str
    unit: str
    shift_start: datetime
    shift_end: datetime
    gap: r.Gap
    options: tuple[r.CostedOption, ...] = ()
    decision: CoordinatorAnswer


class Recorded(StepOutput):
    outcome: str
    option: str | None
    staff_count: int
    decision_id: str


class AssessmentSoFar(StepInput):
    has_gap: bool
    duplicate: bool = False
    found_early: bool = False


class RecordedSoFar(StepInput):
    outcome: str
    option: str | None = None
    staff_count: int = 0


class Finish(StepInput):
    """The whole state: the optional parts are there only on the paths that set them."""

    instance_id: str
    start: Started
    superseded: SupersededOrNot | None = None
    assessment: AssessmentSoFar | None = None
    recorded: RecordedSoFar | None = None
    escalation_exhausted: bool = False


class Finished(StepOutput):
    outcome: str


# -- helpers -------------------------------------------------------------------------------
def _zone(facility_id: str) -> ZoneInfo:
    from careflow.facilities import zone_of

    return zone_of(facility_id)


def _subject_ref(unit: str, shift_start: datetime) -> str:
    return f"unit-shift/{unit}@{shift_start.isoformat()}"


def _metric(name: str, value: float = 1) -> None:
    from careflow.observability import metrics

    metrics.add_metric(name=name, unit="Count", value=value)


# -- steps ---------------------------------------------------------------------------------
@step()
def start_assessment(
    inp: StartAssessment,
    *,
    store: StateStore,
    workforce: WorkforcePort,
    policies: PolicyReader,
    now: datetime,
) -> Started:
    """Applies the census change (once per event, never an older one over a newer),
    pins the staffing policy, finds the unit's type and its next shift."""
    from careflow.policies import resolve

    snapshot = resolve(r.POLICY, inp.facility_id, at=now, store=policies)
    policy = r.staffing_policy(snapshot)
    unit, as_of, written = inp.unit, None, True
    if inp.trigger == "census" and inp.change is not None:
        change = inp.change
        stored = store.census_entry(inp.facility_id, change.encounter_id)
        if change.detail_type == enc.UPDATED and not r.update_matters(
            stored, unit=change.unit, acuity=change.acuity
        ):
            written = False  # an A08 of demographics, or of someone not on a unit
            unit = stored.unit if stored is not None else change.unit
        else:
            entry = r.census_entry(
                inp.facility_id,
                change.detail_type,
                change.encounter_id,
                unit=change.unit,
                acuity=change.acuity,
                occurred_at=inp.occurred_at,
                stored=stored,
            )
            written = store.put_census_entry(entry)
            unit, as_of = entry.unit, entry.as_of
    units = {u.unit_id: u for u in workforce.units(inp.facility_id)}
    zone = _zone(inp.facility_id)
    if inp.shift_start is not None:
        shift_start = inp.shift_start
        shift_end = r.shift_end(shift_start, zone, policy)
    else:
        # a census change is assessed after the debounce: the shift next after that
        wait = policy.census_debounce_seconds if inp.trigger == "census" else 0
        shift_start, shift_end = r.next_shift(now + timedelta(seconds=wait), zone, policy)
    if not written:
        nxt: Next = "UNCHANGED"
    elif unit is None or unit not in units:
        nxt = "UNKNOWN_UNIT"
    else:
        nxt = "DEBOUNCE" if inp.trigger == "census" else "ASSESS"
    subject = f"{unit}@{shift_start.isoformat()}" if unit else "census"
    start_instance(
        store,
        workflow_id=inp.workflow_id,
        instance_id=inp.instance_id,
        subject_type="unit_shift",
        subject_id=subject,
        facility_id=inp.facility_id,
        correlation_id=inp.correlation_id,
        policy=snapshot,
        started="assessment_started",
        detail=f"{inp.trigger}: {unit or 'no unit'}, shift {shift_start.isoformat()}",
        actor="system:staffing",
        now=now,
    )
    return Started(
        next=nxt,
        policy=policy,
        unit=unit,
        unit_type=units[unit].unit_type if unit in units else None,
        shift_start=shift_start,
        shift_end=shift_end,
        as_of=as_of,
    )


@step()
def check_superseded(inp: CheckSuperseded, *, store: StateStore) -> SupersededOrNot:
    """Trailing debounce: after the wait, a later change to the unit runs its own check."""
    return SupersededOrNot(
        superseded=r.superseded(store.census(inp.facility_id), inp.unit, inp.as_of)
    )


def _case_starts(store: StateStore, ehr: EhrPort, facility_id: str) -> list[datetime]:
    """The OR schedule: surgical cases being readied at the facility, by their start (the
    instance's, once a reschedule has set it; else the case's in the EHR)."""
    starts = []
    for status in CASE_STATUSES:
        for inst in store.instances_by_status(CASES_WORKFLOW, status):
            if inst.facility_id != facility_id:
                continue
            if inst.scheduled_start is not None:
                starts.append(inst.scheduled_start)
            else:
                starts.append(ehr.get_surgical_case(inst.subject_id).scheduled_start)
    return starts


@step()
def assess_unit(
    inp: AssessUnit, *, store: StateStore, workforce: WorkforcePort, ehr: EhrPort, now: datetime
) -> Assessment:
    """Required staff (census by acuity, or PACU's scheduled cases) against the roster."""
    policy = inp.policy
    skill = policy.skills[inp.unit_type]
    if inp.unit_type == "pacu":
        cases = r.cases_in_window(
            _case_starts(store, ehr, inp.facility_id), inp.shift_start, inp.shift_end
        )
        required = r.required_staff("pacu", policy, cases=cases)
        demand = f"{cases} scheduled cases"
    else:
        patients = r.unit_census(store.census(inp.facility_id), inp.unit)
        required = r.required_staff(inp.unit_type, policy, acuities=[p.acuity for p in patients])
        demand = f"{len(patients)} patients"
    roster = workforce.roster(inp.facility_id, inp.unit, inp.shift_start)
    found = r.gap(required, r.rostered(roster, skill), skill)
    lead_s = (inp.shift_start - now).total_seconds()
    detail = f"{demand}: {found.required} nurses needed, {found.rostered} rostered"
    if found.size == 0:
        store.record_milestone(
            Milestone(instance_id=inp.instance_id, name="no_gap", at=now, detail=detail)
        )
        return Assessment(gap=found, has_gap=False, duplicate=False, found_early=False)
    ref = _subject_ref(inp.unit, inp.shift_start)
    open_ = store.open_tasks(policy.coordinator_queue, inp.facility_id)
    duplicate = any(t.subject_ref == ref for t in open_)
    early = lead_s >= policy.early_warning_seconds
    shift_hours = (inp.shift_end - inp.shift_start).total_seconds() / 3600
    options = r.costed_options(
        workforce.staffing_options(inp.facility_id, inp.unit, inp.shift_start, skill),
        found.size,
        hours_to_shift=max(0.0, lead_s / 3600),
        shift_hours=shift_hours,
    )
    store.record_milestone(
        Milestone(
            instance_id=inp.instance_id,
            name="gap_already_open" if duplicate else "gap_found",
            at=now,
            status="PENDING",
            detail=f"{detail}: short {found.size} ({skill})",
        )
    )
    if not duplicate:
        _metric("StaffingGapsFound")
        if early:
            _metric("StaffingGapsFoundEarly")
    steps_to_start = 1 + len(policy.escalation_chain)
    due = int(min(policy.coordinator_task_seconds, max(60.0, lead_s / steps_to_start)))
    local = inp.shift_start.astimezone(_zone(inp.facility_id))
    task = TaskSpec(
        facility_id=inp.facility_id,
        purpose=PURPOSE,
        title=(
            f"{inp.unit} short {found.size} nurse{'s' if found.size > 1 else ''} "
            f"({skill}) for the {local:%H:%M} shift on {local:%b %d}"
        ),
        subject_ref=ref,
        reasons=(detail, *(r.option_reason(o) for o in options)),
        escalation_chain=(policy.coordinator_queue, *policy.escalation_chain),
        allowed_decisions=policy.coordinator_decisions,
        policy_version=policy.policy_version,
    )
    return Assessment(
        gap=found,
        has_gap=True,
        duplicate=duplicate,
        found_early=early,
        options=tuple(options),
        task=None if duplicate else task,
        task_due_s=due,
    )


@step()
def record_decision(
    inp: RecordDecision, *, store: StateStore, workforce: WorkforcePort, now: datetime
) -> Recorded:
    """The coordinator's decision, sent to the workforce system (idempotent on the task)."""
    option = r.DECISION_OPTIONS.get(inp.decision.decision)
    covers = next((o.covers for o in inp.options if o.kind == option), inp.gap.size)
    count = covers if option and option != "flex_census" else 0
    decision_id = f"{inp.instance_id}-{inp.decision.task_id or 'decision'}"
    workforce.record_decision(
        StaffingDecision(
            decision_id=decision_id,
            facility_id=inp.facility_id,
            unit_id=inp.unit,
            shift_start=inp.shift_start,
            gap=inp.gap.size,
            option=option,
            staff_count=count,
            decided_by=inp.decision.actor or "unknown",
            decided_at=now,
        )
    )
    store.record_milestone(
        Milestone(
            instance_id=inp.instance_id,
            name="decision_recorded",
            at=now,
            detail=f"{inp.decision.decision}: {count} staff",
        )
    )
    return Recorded(
        outcome=r.outcome_of(inp.decision.decision),
        option=option,
        staff_count=count,
        decision_id=decision_id,
    )


@step()
def finish_assessment(inp: Finish, *, store: StateStore, now: datetime) -> Finished:
    """How the assessment ended: UNCHANGED, UNKNOWN_UNIT, SUPERSEDED, NO_GAP,
    GAP_ALREADY_OPEN, FILLED or UNFILLED (at the shift start: its chain ran out)."""
    outcome: str
    if inp.start.next in ("UNCHANGED", "UNKNOWN_UNIT"):
        outcome = inp.start.next
    elif inp.superseded is not None and inp.superseded.superseded:
        outcome = "SUPERSEDED"
    elif inp.assessment is None or not inp.assessment.has_gap:
        outcome = "NO_GAP"
    elif inp.assessment.duplicate:
        outcome = "GAP_ALREADY_OPEN"
    elif inp.recorded is not None:
        outcome = inp.recorded.outcome
    else:
        outcome = "UNFILLED"
    overtime, unfilled = 0.0, False
    if outcome == "FILLED":
        _metric("StaffingGapsFilled")
        rec = inp.recorded
        begin, end = inp.start.shift_start, inp.start.shift_end
        if rec is not None and rec.option == "overtime" and begin and end:
            hours = (end - begin).total_seconds() / 3600
            overtime = rec.staff_count * hours
            _metric("OvertimeHours", overtime)
    if outcome == "UNFILLED" and (inp.escalation_exhausted or inp.recorded is None):
        unfilled = True
        _metric("StaffingGapsUnfilledAtShiftStart")
    entries: list[Milestone | AuditEntry] = []
    if outcome in ("FILLED", "UNFILLED") and inp.assessment is not None:  # a new gap
        entries.append(  # what GET /v1/kpis reads: numbers and the unit-shift, no patient
            AuditEntry(
                instance_id=inp.instance_id,
                at=now,
                actor="system:staffing",
                action=MEASURED,
                reason=outcome,
                policy_version=inp.start.policy.policy_version,
                detail={
                    "unit": inp.start.unit,
                    "shift_start": inp.start.shift_start.isoformat()
                    if inp.start.shift_start
                    else None,
                    "found_early": inp.assessment.found_early,
                    "unfilled_at_shift_start": unfilled,
                    "overtime_hours": overtime,
                },
            )
        )
    # Ended whatever the outcome (an unfilled gap's shift has begun): COMPLETED, the
    # workflow's own word in ``outcome`` (KPIs count it ended, not running).
    finish_instance(
        store,
        inp.instance_id,
        status=InstanceStatus.COMPLETED,
        outcome=outcome,
        reasons=(outcome.lower(),),
        entries=[
            *entries,
            Milestone(
                instance_id=inp.instance_id,
                name=f"assessment_{outcome.lower()}",
                at=now,
                status="FAILED" if outcome == "UNFILLED" else "DONE",
            ),
        ],
        now=now,
    )
    return Finished(outcome=outcome)
