"""The staffing demo: two stories a staffing office knows.

(a) An admission surge on 4W (med-surg, North Valley): six admissions in half an
hour on top of the morning's census; after the census has been quiet for the debounce,
the unit's next shift is short → the staffing coordinator takes a float pool nurse.
(b) A heavy OR day at North Valley: eight cases booked for tomorrow (each readied by
surgical case readiness); the pre-shift check of PACU-N finds one nurse rostered for
the cases' recovery → the coordinator books overtime.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from careflow.kit.spec import Scenario

if TYPE_CHECKING:
    from careflow.localcloud.demo import CaseReport, Demo

WORKFLOW = "staffing-gaps"
FACILITY = "fac-north"

MILESTONES = {
    "assessment_started": "Staffing check started",
    "no_gap": "Staffed to ratio",
    "gap_found": "Staffing gap found",
    "gap_already_open": "Gap already with the coordinator",
    "task_completed": "Coordinator decided",
    "decision_recorded": "Decision sent to the workforce system",
    "assessment_filled": "Gap filled",
    "assessment_unfilled": "Gap unfilled at shift start",
    "assessment_no_gap": "No gap",
    "assessment_superseded": "A later census change took over",
}
OUTCOMES = {
    "FILLED": "Gap filled",
    "UNFILLED": "Gap unfilled",
    "NO_GAP": "No gap",
    "SUPERSEDED": "Superseded",
}

SCENARIOS = (
    Scenario("a", "surge-4W", "admission surge on 4W → float pool nurse"),
    Scenario("b", "or-day", "heavy OR day, PACU short → overtime"),
)

BASELINE = [2] * 18  # 4W's census as the morning's ADT left it
SURGE = [3, 4, 3, 4, 4, 3]  # the afternoon's admissions, by acuity


def _surge(demo: Demo) -> None:
    from careflow import wiring
    from careflow.canonical.workforce import CensusEntry

    cloud = demo.cloud
    morning = cloud.clock.now() - timedelta(hours=6)
    for i, acuity in enumerate(BASELINE):
        wiring.store().put_census_entry(
            CensusEntry(
                facility_id=FACILITY,
                encounter_id=f"V4W{i:03d}",
                unit="4W",
                acuity=acuity,
                present=True,
                as_of=morning,
                event="Encounter.Admitted",
            )
        )
    demo.say(f"  (a) 4W has {len(BASELINE)} patients; {len(SURGE)} admissions in 30 minutes")
    key = ""
    for i, acuity in enumerate(SURGE):
        key = f"adt:V4WS{i:02d}:A01"
        cloud.put_event(
            "careflow.ehr",
            "Encounter.Admitted",
            facility_id=FACILITY,
            idempotency_key=key,
            data={
                "encounter_id": f"V4WS{i:02d}",
                "patient_id": f"MRN77{i:03d}",
                "patient_id_authority": "NVMC",
                "unit": "4W",
                "patient_class": "I",
                "acuity": acuity,
                "admitted_at": cloud.clock.now().isoformat(),
            },
        )
        if i < len(SURGE) - 1:
            demo.advance(timedelta(minutes=5))
    demo.started(WORKFLOW, "surge-4W", key)
    arn = demo.arn_when_started("surge-4W")
    sfn = cloud.client("stepfunctions")

    def waiting() -> bool:
        events = sfn.get_execution_history(executionArn=arn, maxResults=100)["events"]
        return any(e["type"] == "WaitStateEntered" for e in events)

    cloud.wait_for(waiting, 30, "the last admission's debounce")
    # the Wait's timer starts just after its WaitStateEntered: advancing before it would
    # leave the debounce waiting (on a busy machine, the coordinator's task never came)
    if cloud.clock.wait_for_timer(0, timedelta(minutes=15), timeout=30) is None:
        raise TimeoutError("no debounce timer started")
    demo.advance(timedelta(minutes=15))  # the census is quiet: the last change assesses


def _or_day(demo: Demo) -> datetime:
    from careflow.adapters.sandbox import KNEE, CaseSeed, PayerRule, _cpt
    from careflow.canonical.payer import AuthDecision
    from careflow.facilities import facility

    cloud = demo.cloud
    zone = facility(FACILITY).zone  # type: ignore[union-attr]
    now = cloud.clock.now()
    day = (now.astimezone(zone) + timedelta(days=1)).date()
    shift = datetime.combine(day, time(7, 0), tzinfo=zone).astimezone(UTC)
    for i in range(8):
        start = shift + timedelta(minutes=30 + 70 * i)
        case_id = f"appt-5{i:03d}"
        cloud.add_case(
            CaseSeed(
                case_id,
                FACILITY,
                _cpt("27447", "Total knee arthroplasty"),
                "orthopedics",
                start - now,
                PayerRule(AuthDecision.APPROVED),
                tuple(KNEE),
                ("TRAY-KNEE-01",),
                "Practitioner/dr-okafor",
                "Location/or-north-3",
            )
        )
        cloud.book_appointment(case_id, start, FACILITY)
    demo.say("  (b) 8 knee replacements booked at North Valley for tomorrow's day shift")
    for i in range(8):
        demo.started(
            "surgical-case-readiness", f"appt-5{i:03d}", f"appointment:appt-5{i:03d}:booked"
        )
        cloud.wait_for_execution(demo.arn_when_started(f"appt-5{i:03d}"), 60)
    key = f"schedule:PACU-N:{shift.isoformat()}"
    cloud.put_event(
        "careflow.workforce",
        "StaffingCheck.Due",
        facility_id=FACILITY,
        idempotency_key=key,
        data={"unit": "PACU-N", "shift_start": shift.isoformat()},
    )
    demo.say("  (b) the pre-shift schedule checks PACU-N's day shift")
    demo.started(WORKFLOW, "or-day", key)
    demo.arn_when_started("or-day")
    return shift


def run(demo: Demo) -> list[CaseReport]:
    from careflow.localcloud.demo import Wording

    _surge(demo)
    task = demo.open_task("surge-4W")
    demo.say(f"  (a) task for the staffing coordinator: {task.title}")
    demo.claim(task, "user:staffing-jortiz")
    demo.decide(task, "user:staffing-jortiz", "FLOAT_POOL", "float pool nurse to 4W")
    done = demo.cloud.wait_for_execution(demo.arn("surge-4W"), 60)
    surge_shift = datetime.fromisoformat(json.loads(done["output"])["start"]["shift_start"])

    shift = _or_day(demo)
    task = demo.open_task("or-day")
    demo.say(f"  (b) task for the staffing coordinator: {task.title}")
    demo.claim(task, "user:staffing-jortiz")
    demo.decide(task, "user:staffing-jortiz", "OVERTIME", "a PACU nurse picks up the shift")
    demo.cloud.wait_for_execution(demo.arn("or-day"), 60)

    wording = Wording(MILESTONES, OUTCOMES, start="shift start")
    return [
        demo.report(
            SCENARIOS[0],
            what="4W next shift",
            facility_id=FACILITY,
            scheduled_start=surge_shift,
            wording=wording,
        ),
        demo.report(
            SCENARIOS[1],
            what="PACU-N day shift",
            facility_id=FACILITY,
            scheduled_start=shift,
            wording=wording,
        ),
    ]
