"""Staffing gap detection on the local cloud: the real ASL and handlers, each run started
by an event on the bus (an ADT event, or the pre-shift schedule's), reaching each outcome."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from careflow import wiring
from careflow.canonical.workforce import CensusEntry
from careflow.domain.intake import instance_id_for
from careflow.localcloud.sandboxes.workforce_seed import workforce_sandbox
from tests.workflows.harness import Case, advance_through_timer, claim_and_complete

WORKFLOW = "staffing-gaps"


def _census(cloud, facility: str, unit: str, acuities: list[int]) -> None:
    """Patients already on the unit (as earlier ADT events left them)."""
    at = cloud.clock.now() - timedelta(days=1)
    for a in acuities:
        wiring.store().put_census_entry(
            CensusEntry(
                facility_id=facility,
                encounter_id=f"V{uuid.uuid4().hex[:10]}",
                unit=unit,
                acuity=a,
                present=True,
                as_of=at,
                event="Encounter.Admitted",
            )
        )


def _start(cloud, source: str, detail_type: str, data: dict, facility: str) -> Case:
    key = f"test:{uuid.uuid4().hex}"
    cloud.put_event(source, detail_type, data=data, facility_id=facility, idempotency_key=key)
    instance_id = instance_id_for(WORKFLOW, key)
    return Case(cloud, instance_id, instance_id, WORKFLOW).started()


def _check(cloud, unit: str, facility: str, shift_start: datetime | None = None) -> Case:
    data = {"unit": unit, **({"shift_start": shift_start.isoformat()} if shift_start else {})}
    return _start(cloud, "careflow.workforce", "StaffingCheck.Due", data, facility)


def _outcome(case: Case) -> str:
    return str(case.output()["final"]["outcome"])


def test_a_staffed_unit_has_no_gap(cloud):
    case = _check(cloud, "5W", "fac-north")  # 5W's census is empty: no nurse is short
    assert _outcome(case) == "NO_GAP"
    assert "no_gap" in case.milestone_names()


def test_an_admission_that_opens_a_gap_is_filled_from_the_float_pool(cloud):
    _census(cloud, "fac-north", "ICU-N", [2] * 12)  # 12 weighted / 2 = 6 nurses, 6 rostered
    now = cloud.clock.now()
    case = _start(
        cloud,
        "careflow.ehr",
        "Encounter.Admitted",
        {
            "encounter_id": f"V{uuid.uuid4().hex[:10]}",
            "patient_id": "MRN0042",
            "patient_id_authority": "NVMC",
            "unit": "ICU-N",
            "patient_class": "I",
            "acuity": 5,
            "admitted_at": now.isoformat(),
        },
        "fac-north",
    )
    advance_through_timer(
        cloud, timedelta(minutes=15), slack=timedelta(minutes=1), case=case
    )  # debounce
    task = case.open_task()
    assert task.queue == "staffing_coordinator"
    assert task.title.startswith("ICU-N short 1 nurse (critical-care)")
    assert any(r.startswith("float_pool: covers 1") for r in task.reasons)
    claim_and_complete(cloud, task, "FLOAT_POOL", actor="user:staffing-jortiz")
    assert _outcome(case) == "FILLED"
    sent = [d for d in workforce_sandbox().decisions.values() if d.unit_id == "ICU-N"]
    assert [(d.option, d.staff_count) for d in sent] == [("float_pool", 1)]
    history = json.dumps(case.history(), default=str)
    assert "MRN0042" not in history  # the census change enters the state by encounter only


def test_a_gap_nobody_fills_is_unfilled_at_the_shift_start(cloud):
    _census(cloud, "fac-south", "3E", [2] * 30)  # 30 / 5 = 6 nurses, 5 (day) or 4 rostered
    shift = (cloud.clock.now() + timedelta(hours=2)).astimezone(UTC)
    case = _check(cloud, "3E", "fac-south", shift_start=shift)
    task = case.open_task(timeout=60)  # due in 1 h: the shift is 2 h away, over two queues
    advance_through_timer(cloud, timedelta(hours=1), case=case)
    escalated = case.open_task(level=1, timeout=60)
    assert (escalated.task_id, escalated.queue) == (task.task_id, "house_supervisor")
    advance_through_timer(cloud, timedelta(hours=1), case=case)
    assert _outcome(case) == "UNFILLED"
    assert (case.instance().status, case.instance().outcome) == ("COMPLETED", "UNFILLED")
