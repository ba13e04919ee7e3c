"""Every step of staffing gap detection, through the kit's entry point, with fakes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from careflow.canonical.workforce import RosterEntry, StaffingOption, Unit
from careflow.domain.records import HumanTask, Instance, InstanceStatus, TaskStatus
from careflow.kit.runtime import invoke
from careflow.policies import FilePolicyStore
from tests.fakes import FakeEhr, FakePublisher, FakeWorkforce, InMemoryStateStore

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # 06:00 in Chicago
SHIFT = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)  # the 07:00 shift
SHIFT_END = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
STEPS = "careflow.workflows.staffing_gaps.steps"
UNITS = (
    Unit(facility_id="fac-north", unit_id="4W", unit_type="med-surg", beds=28),
    Unit(facility_id="fac-north", unit_id="PACU-N", unit_type="pacu", beds=10),
)


def nurses(n: int, unit: str = "4W", skill: str = "med-surg") -> list[RosterEntry]:
    return [
        RosterEntry(staff_id=f"rn-{i}", unit_id=unit, shift_start=SHIFT, role="RN", skills=(skill,))
        for i in range(n)
    ]


OPTIONS = (
    StaffingOption(kind="float_pool", available=2, lead_time_hours=1, cost_per_hour=68),
    StaffingOption(kind="agency", available=3, lead_time_hours=8, cost_per_hour=145),
    StaffingOption(kind="overtime", available=2, lead_time_hours=1, cost_per_hour=96),
)


class World:
    def __init__(self, roster=()) -> None:
        self.store = InMemoryStateStore()
        self.workforce = FakeWorkforce(UNITS, roster, OPTIONS)
        self.ports = {
            "store": self.store,
            "workforce": self.workforce,
            "ehr": FakeEhr(),
            "publisher": FakePublisher(),
            "policies": FilePolicyStore(),
            "now": NOW,
        }

    def run(self, step: str, event: dict) -> dict:
        out = invoke(
            f"{STEPS}:{step}",
            json.loads(json.dumps(event, default=str)),
            ports=self.ports.__getitem__,
        )
        return json.loads(json.dumps(out))

    def admit(self, encounter: str, at: datetime, acuity: int = 2, kind="Encounter.Admitted"):
        return self.run(
            "start_assessment",
            {
                "instance_id": f"i-{encounter}-{at:%H%M}",
                "correlation_id": "c",
                "facility_id": "fac-north",
                "occurred_at": at.isoformat(),
                "trigger": "census",
                "change": {
                    "detail_type": kind,
                    "encounter_id": encounter,
                    "unit": "4W",
                    "acuity": acuity,
                },
                "unit": None,
                "shift_start": None,
            },
        )

    def assess(self, unit: str = "4W", unit_type: str = "med-surg") -> dict:
        started = self.run(
            "start_assessment",
            {
                "instance_id": "i-1",
                "correlation_id": "c",
                "facility_id": "fac-north",
                "occurred_at": NOW.isoformat(),
                "trigger": "schedule",
                "change": None,
                "unit": unit,
                "shift_start": None,
            },
        )
        assert started["next"] == "ASSESS" and started["unit_type"] == unit_type
        out = self.run(
            "assess_unit",
            {"instance_id": "i-1", "facility_id": "fac-north", **started},
        )
        return {"start": started, "assessment": out}


def test_a_census_change_is_applied_once_and_never_by_an_older_event():
    w = World()
    first = w.admit("V1", NOW - timedelta(hours=1))
    assert first["next"] == "DEBOUNCE" and first["unit"] == "4W"
    assert datetime.fromisoformat(first["shift_start"]) == SHIFT
    assert w.admit("V1", NOW - timedelta(hours=1))["next"] == "UNCHANGED"  # repeated
    w.admit("V1", NOW, kind="Encounter.Discharged")
    assert w.admit("V1", NOW - timedelta(minutes=30))["next"] == "UNCHANGED"  # out of order
    assert [e.present for e in w.store.census("fac-north")] == [False]
    assert w.store.get_instance("i-V1-1100").subject_type == "unit_shift"


def test_an_a08_changes_the_census_only_with_a_new_unit_or_acuity_of_a_present_encounter():
    w = World()
    updated = "Encounter.Updated"
    # an A08 for an encounter the census does not hold admits no one
    assert w.admit("V9", NOW - timedelta(hours=2), kind=updated)["next"] == "UNCHANGED"
    assert w.store.census("fac-north") == []
    w.admit("V1", NOW - timedelta(hours=1), acuity=2)
    # demographics only (same unit and acuity): no census write, no assessment
    assert w.admit("V1", NOW - timedelta(minutes=50), acuity=2, kind=updated)["next"] == (
        "UNCHANGED"
    )
    # the acuity rose: the census takes it, the unit is assessed after the debounce
    out = w.admit("V1", NOW - timedelta(minutes=40), acuity=4, kind=updated)
    assert out["next"] == "DEBOUNCE" and out["unit"] == "4W"
    [entry] = w.store.census("fac-north")
    assert (entry.present, entry.acuity, entry.event) == (True, 4, updated)
    # after the departure, a late A08 does not bring the patient back
    w.admit("V1", NOW - timedelta(minutes=30), kind="Encounter.Discharged")
    assert w.admit("V1", NOW - timedelta(minutes=20), acuity=5, kind=updated)["next"] == (
        "UNCHANGED"
    )
    assert [e.present for e in w.store.census("fac-north")] == [False]


def test_the_debounce_lets_the_last_change_assess():
    w = World()
    w.admit("V1", NOW - timedelta(minutes=10))
    w.admit("V2", NOW - timedelta(minutes=5))
    check = {"facility_id": "fac-north", "unit": "4W"}
    earlier = (NOW - timedelta(minutes=10)).isoformat()
    assert w.run("check_superseded", {**check, "as_of": earlier})["superseded"] is True
    latest = (NOW - timedelta(minutes=5)).isoformat()
    assert w.run("check_superseded", {**check, "as_of": latest})["superseded"] is False


def test_a_short_unit_gets_a_task_with_its_options():
    w = World(roster=nurses(4))
    for i in range(26):  # 22 x acuity 2 + 4 x acuity 4 = 28 weighted / 5 -> 6 nurses
        w.admit(f"V{i}", NOW - timedelta(minutes=60 - i), acuity=4 if i < 4 else 2)
    out = w.assess()["assessment"]
    assert out["gap"] == {"required": 6, "rostered": 4, "size": 2, "skill": "med-surg"}
    assert out["has_gap"] and not out["duplicate"] and not out["found_early"]  # 1 h ahead
    task = out["task"]
    assert task["subject_ref"] == f"unit-shift/4W@{SHIFT.isoformat()}"
    assert task["escalation_chain"] == ["staffing_coordinator", "house_supervisor"]
    assert task["reasons"][0] == "26 patients: 6 nurses needed, 4 rostered"
    assert task["reasons"][1].startswith("float_pool: covers 2, lead time 1 h (in time), $1,632")
    assert out["task_due_s"] == 1800  # an hour to the shift, over two queues
    assert "FLOAT_POOL" in task["allowed_decisions"]


def test_a_gap_with_its_task_open_is_not_opened_twice():
    w = World(roster=nurses(0))
    w.admit("V1", NOW - timedelta(hours=1))
    first = w.assess()["assessment"]
    w.store.put_task(
        HumanTask(
            task_id="t-1",
            instance_id="i-0",
            workflow_id="staffing-gaps",
            facility_id="fac-north",
            queue="staffing_coordinator",
            title="x",
            subject_ref=first["task"]["subject_ref"],
            status=TaskStatus.OPEN,
            created_at=NOW,
            due_at=NOW + timedelta(hours=1),
        )
    )
    again = w.assess()["assessment"]
    assert again["duplicate"] and again["task"] is None


def test_a_staffed_unit_has_no_gap_and_pacu_counts_the_or_schedule():
    w = World(roster=nurses(1))
    w.admit("V1", NOW - timedelta(hours=1))
    assert w.assess()["assessment"]["has_gap"] is False
    w = World(roster=nurses(1, "PACU-N", "pacu"))
    assert w.assess("PACU-N", "pacu")["assessment"]["has_gap"] is False  # no cases: none needed


def test_pacu_is_short_on_a_busy_or_day():
    w = World(roster=nurses(1, "PACU-N", "pacu"))
    for i in range(14):  # 13 start in the day shift, one at 19:30 (the night's)
        start = SHIFT + timedelta(minutes=50 * i)
        w.store.put_instance(
            Instance(
                instance_id=f"case-{i}",
                workflow_id="surgical-case-readiness",
                subject_type="case",
                subject_id=f"appt-{i}",
                facility_id="fac-north",
                status=InstanceStatus.READY,
                started_at=NOW,
                updated_at=NOW,
                correlation_id="c",
                execution_name=f"case-{i}",
                scheduled_start=start if i < 13 else SHIFT_END + timedelta(minutes=30),
            )
        )
    out = w.assess("PACU-N", "pacu")["assessment"]
    # 13 cases / 6 per nurse = 2.17 -> 3 nurses; 1 rostered
    assert out["gap"] == {"required": 3, "rostered": 1, "size": 2, "skill": "pacu"}
    assert out["task"]["reasons"][0] == "13 scheduled cases: 3 nurses needed, 1 rostered"


def test_the_decision_goes_to_the_workforce_system_and_the_outcome_is_written():
    w = World(roster=nurses(4))
    for i in range(26):
        w.admit(f"V{i}", NOW - timedelta(minutes=60 - i), acuity=4 if i < 4 else 2)
    state = w.assess()
    recorded = w.run(
        "record_decision",
        {
            "instance_id": "i-1",
            "facility_id": "fac-north",
            "unit": "4W",
            "shift_start": SHIFT.isoformat(),
            "shift_end": SHIFT_END.isoformat(),
            "gap": state["assessment"]["gap"],
            "options": state["assessment"]["options"],
            "decision": {"task_id": "t-9", "decision": "FLOAT_POOL", "actor": "user:sc-1"},
        },
    )
    assert recorded["outcome"] == "FILLED" and recorded["staff_count"] == 2
    sent = w.workforce.decisions["i-1-t-9"]
    assert (sent.option, sent.staff_count, sent.decided_by) == ("float_pool", 2, "user:sc-1")
    final = w.run("finish_assessment", {"instance_id": "i-1", **state, "recorded": recorded})
    assert final["outcome"] == "FILLED"
    assert w.store.get_instance("i-1").outcome == "FILLED"


@pytest.mark.parametrize(
    ("extra", "outcome"),
    [
        ({"escalation_exhausted": True}, "UNFILLED"),
        ({"assessment": {"has_gap": False}}, "NO_GAP"),
        ({"superseded": {"superseded": True}}, "SUPERSEDED"),
    ],
)
def test_each_way_an_assessment_ends(extra, outcome):
    w = World(roster=nurses(0))
    w.admit("V1", NOW - timedelta(hours=1))
    state = w.assess()
    final = w.run("finish_assessment", {"instance_id": "i-1", **state, **extra})
    assert final["outcome"] == outcome


def test_a_change_just_before_a_shift_is_assessed_for_the_next_one():
    w = World()
    w.ports["now"] = SHIFT - timedelta(minutes=10)  # 06:50: the debounce ends after 07:00
    started = w.admit("V1", SHIFT - timedelta(minutes=10))
    assert datetime.fromisoformat(started["shift_start"]) == SHIFT_END  # the 19:00 shift


def test_the_last_step_records_a_gaps_numbers_for_the_kpis():
    w = World(roster=nurses(0))
    w.admit("V1", NOW - timedelta(hours=1))
    state = w.assess()
    w.run("finish_assessment", {"instance_id": "i-1", **state, "escalation_exhausted": True})
    (measured,) = [a for a in w.store.audit_trail("i-1") if a.action == "staffing_measured"]
    assert measured.reason == "UNFILLED"
    assert measured.detail == {
        "unit": "4W",
        "shift_start": SHIFT.isoformat(),
        "found_early": state["assessment"]["found_early"],
        "unfilled_at_shift_start": True,
        "overtime_hours": 0.0,
    }
    overtime = {"outcome": "FILLED", "option": "overtime", "staff_count": 2}
    w.run("finish_assessment", {"instance_id": "i-1", **state, "recorded": overtime})
    last = [a for a in w.store.audit_trail("i-1") if a.action == "staffing_measured"][-1]
    assert last.detail["overtime_hours"] == 24.0  # 2 nurses x 07:00-19:00
    assert last.detail["unfilled_at_shift_start"] is False


def test_an_assessment_without_a_new_gap_records_no_numbers():
    w = World(roster=nurses(0))
    w.admit("V1", NOW - timedelta(hours=1))
    state = w.assess()
    extra = {"assessment": {"has_gap": False}}
    w.run("finish_assessment", {"instance_id": "i-1", **state, **extra})
    assert not [a for a in w.store.audit_trail("i-1") if a.action == "staffing_measured"]
