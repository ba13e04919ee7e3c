"""Supply replenishment on the local cloud: the real ASL and handlers, each review started
by an event on the bus (the daily schedule's, or a surgical schedule change after the
debounce), reaching each outcome against the sandbox ERP's shelves."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from careflow.adapters.sandbox import sandbox
from careflow.adapters.sandbox_inventory import InventoryBook
from careflow.domain.intake import instance_id_for
from tests.workflows.harness import Case, advance_through_timer, claim_and_complete, new_case

WORKFLOW = "supply-replenishment"
APPROVERS = {"supply_chain_buyer": "user:buyer-jlee", "department_director": "user:director-rsingh"}


def _book() -> InventoryBook:
    return sandbox().inventory_book()


def _full_shelves(facility: str) -> InventoryBook:
    """Every shelf of the facility far above its reorder point and nothing used off-case,
    whatever cases earlier tests booked: only what a test then sets matters."""
    book = _book()
    for location in book.locations(facility):
        for level in book.par_levels(facility, location.location_id):
            book.set_stock(location.location_id, level.item_id, on_hand=500, daily_use=0.0)
    return book


def _start(cloud, detail_type: str, data: dict, facility: str, source="careflow.erp") -> Case:
    key = f"test:{uuid.uuid4().hex}"
    cloud.put_event(source, detail_type, data=data, facility_id=facility, idempotency_key=key)
    instance_id = instance_id_for(WORKFLOW, key)
    return Case(cloud, instance_id, instance_id, WORKFLOW).started()


def _review(cloud, facility: str) -> Case:
    return _start(cloud, "ReplenishmentReview.Due", {}, facility)


def _outcome(case: Case) -> str:
    return str(case.output()["final"]["outcome"])


def _knee_short(cloud, facility: str) -> Case:
    """A knee replacement booked for the day after tomorrow, and no femoral component left
    at the facility's OR core (the supplier delivers in 3 days)."""
    book = _full_shelves(facility)
    book.set_stock(f"{facility}:or-core", "IMP-TKA-FEM-5", on_hand=0)
    readiness = new_case(cloud, facility=facility, starts_in=timedelta(hours=40))
    readiness.finish(60)
    return readiness


def test_full_shelves_need_no_action(cloud):
    _full_shelves("fac-south")
    case = _review(cloud, "fac-south")
    assert _outcome(case) == "NO_ACTION"
    assert {"review_started", "inventory_assessed", "review_no_action"} <= set(
        case.milestone_names()
    )
    assert (case.instance().status, case.instance().outcome) == ("COMPLETED", "NO_ACTION")


def test_sutures_below_their_reorder_point_are_reordered_up_to_par(cloud):
    book = _full_shelves("fac-north")
    # 14 boxes, 2 a day, delivered in 2 days: 10 expected < 15 -> 30 boxes ($4,260: automatic)
    book.set_stock("fac-north:central-supply", "SUP-SUT-VIC-0", on_hand=14, daily_use=2.0)
    case = _review(cloud, "fac-north")
    assert _outcome(case) == "REORDERED"
    placed = [m for m in case.milestones() if m.name == "requisition_placed"]
    assert len(placed) == 1 and "30 x SUP-SUT-VIC-0" in placed[0].detail
    assert not case.tasks()


def test_low_consignment_stock_notifies_the_vendor(cloud):
    book = _full_shelves("fac-south")
    book.set_stock("fac-south:or-core", "IMP-SPN-SCR-6545", on_hand=4, daily_use=0.5)
    case = _review(cloud, "fac-south")
    assert _outcome(case) == "VENDOR_NOTIFIED"
    assert "vendor_notified" in case.milestone_names()


def test_a_booked_case_at_risk_is_approved_reordered_and_expedited(cloud):
    readiness = _knee_short(cloud, "fac-north")
    case = _review(cloud, "fac-north")
    task = case.open_task(timeout=60)
    assert task.title.startswith("Approve 1 replenishment requisition for fac-north")
    assert any("expedite for " + readiness.case_id in reason for reason in task.reasons)
    claim_and_complete(cloud, task, "APPROVE", actor=APPROVERS[task.queue])
    assert _outcome(case) == "REORDERED_WITH_EXPEDITE"
    names = case.milestone_names()
    assert {"case_supply_at_risk", "approval_approved", "requisition_expedited"} <= set(names)
    at_risk = [m for m in readiness.milestones() if m.name == "supply_at_risk"]
    assert at_risk and case.instance_id in at_risk[-1].detail
    history = json.dumps(case.history(), default=str)
    assert "Patient/" not in history  # cases enter the state by id only


def test_a_rejected_approval_places_nothing(cloud):
    _knee_short(cloud, "fac-south")
    case = _review(cloud, "fac-south")
    task = case.open_task(timeout=60)
    claim_and_complete(cloud, task, "REJECT", actor=APPROVERS[task.queue])
    assert _outcome(case) == "APPROVAL_REJECTED"
    assert "requisition_placed" not in case.milestone_names()


def test_an_approval_nobody_gives_expires_after_its_escalation(cloud):
    _knee_short(cloud, "fac-south")
    case = _review(cloud, "fac-south")
    task = case.open_task(timeout=60)
    advance_through_timer(cloud, timedelta(hours=4), case=case)
    escalated = case.open_task(level=1, timeout=60)
    assert (escalated.task_id, escalated.queue) == (task.task_id, "department_director")
    advance_through_timer(cloud, timedelta(hours=4), case=case)
    assert _outcome(case) == "APPROVAL_EXPIRED"


def test_a_burst_of_schedule_changes_is_one_review_after_the_debounce(cloud):
    _full_shelves("fac-south")
    first = _start(
        cloud,
        "Appointment.Rescheduled",
        {
            "appointment_id": f"appt-x{uuid.uuid4().hex[:6]}",
            "scheduled_start": "2027-01-04T14:00:00+00:00",
        },
        "fac-south",
        source="careflow.scheduling",
    )
    first.wait_milestone("review_started")  # its debounce follows its instance record
    assert cloud.clock.wait_for_timer(timedelta(minutes=29), timedelta(minutes=30), timeout=20)
    cloud.clock.advance(timedelta(minutes=5))
    second = _start(
        cloud,
        "Appointment.Cancelled",
        {"appointment_id": f"appt-x{uuid.uuid4().hex[:6]}"},
        "fac-south",
        source="careflow.scheduling",
    )
    # the first's check reads the second's instance record, and the second's own timer
    # must have started: both before the jump
    second.wait_milestone("review_started")
    advance_through_timer(cloud, timedelta(minutes=30), slack=timedelta(minutes=1), case=second)
    assert _outcome(first) == "SUPERSEDED"
    assert _outcome(second) == "NO_ACTION"
    assert "AssessInventory" not in first.entered_states()
