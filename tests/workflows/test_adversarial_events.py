"""Bad, duplicate and out-of-order events on the local cloud's bus: each ends processed,
waiting on a visible task, parked or unrouted, with its reason; none is dropped.

Every event goes on the bus through EventBridge (the rules of the catalog and the
catch-all), so each test also proves the routing. The last test accounts for every
event the module put: accepted = processed + waiting + parked + unrouted, exactly.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from careflow import wiring
from careflow.adapters.sandbox import HIP
from careflow.domain import intake
from careflow.domain.records import InstanceStatus, TaskStatus
from careflow.kit import registry
from tests.workflows.harness import WORKFLOW, Case, new_case

PHI = "Jane Doe 1970-01-01"
# Every event this module put on the bus, by the id its record is kept under.
ACCEPTED: dict[str, str] = {}
CASES: dict[str, Case] = {}


def put_raw(cloud: Any, source: str, detail_type: str, detail: str, what: str) -> str:
    """A raw entry (no envelope); its record is kept under EventBridge's event id."""
    resp = cloud.client("events").put_events(
        Entries=[
            {
                "EventBusName": "careflow",
                "Source": source,
                "DetailType": detail_type,
                "Detail": detail,
            }
        ]
    )
    assert resp["FailedEntryCount"] == 0, resp
    event_id: str = resp["Entries"][0]["EventId"]
    ACCEPTED[event_id] = what
    return event_id


def put(
    cloud: Any,
    detail_type: str,
    data: dict[str, Any],
    *,
    what: str,
    facility: str = "fac-north",
    source: str = "careflow.scheduling",
    event_id: str | None = None,
    key: str | None = None,
) -> str:
    event_id = cloud.put_event(
        source,
        detail_type,
        data=data,
        facility_id=facility,
        event_id=event_id or f"evt-{uuid.uuid4().hex[:12]}",
        idempotency_key=key,
    )
    ACCEPTED[event_id] = what
    return event_id


def booking(appointment_id: str, start: str = "2026-12-20T08:00:00+00:00", **extra: Any) -> dict:
    return {
        "appointment_id": appointment_id,
        "appointment_type": "procedure",
        "scheduled_start": start,
        **extra,
    }


def record(cloud: Any, event_id: str) -> Any:
    store = wiring.store()
    return cloud.wait_for(lambda: store.get_parked(event_id), 20, f"record of {event_id}")


@pytest.mark.parametrize(
    ("source", "detail_type", "detail", "kind", "reason"),
    [
        (
            "careflow.scheduling",
            "Appointment.Booked",
            "{}",
            "unrouted",
            "detail.data.appointment_type is missing: Appointment.Booked is routed on it",
        ),
        (
            "careflow.scheduling",
            "Appointment.Booked",
            "[]",
            "unrouted",
            "detail.data.appointment_type is missing: Appointment.Booked is routed on it",
        ),
        ("careflow.ehr", "PriorAuth.Requested", "{}", "parked", "detail is empty: "),
        ("careflow.ehr", "PriorAuth.Requested", "[1, 2]", "parked", "detail is not a JSON object"),
        (
            "careflow.ehr",
            "Patient.Admitted",
            json.dumps({"data": {"name": PHI}}),
            "unrouted",
            "detail-type is not one any workflow takes",
        ),
        (
            "partner.app",
            "Appointment.Booked",
            json.dumps({"data": {"appointment_type": "procedure"}}),
            "unrouted",
            "source is not one Appointment.Booked is taken from",
        ),
    ],
    ids=["empty-booked", "array-booked", "empty-request", "array-request", "type", "source"],
)
def test_malformed_and_unknown_events_are_parked_or_unrouted(
    cloud, source, detail_type, detail, kind, reason
):
    event_id = put_raw(cloud, source, detail_type, detail, kind)
    parked = record(cloud, event_id)
    assert (parked.kind, parked.status) == (kind, "PARKED")
    assert parked.reason.startswith(reason)
    assert "Jane" not in parked.reason


def test_an_unknown_facility_is_parked(cloud):
    event_id = put(
        cloud, "Appointment.Booked", booking("appt-adv-fac"), what="parked", facility="fac-nowhere"
    )
    parked = record(cloud, event_id)
    assert (parked.kind, parked.reason) == ("parked", intake.UNKNOWN_FACILITY)


def test_an_appointment_type_no_workflow_takes_is_unrouted(cloud):
    data = booking("appt-adv-consult") | {"appointment_type": "consult"}
    parked = record(cloud, put(cloud, "Appointment.Booked", data, what="unrouted"))
    assert parked.kind == "unrouted"
    assert parked.reason == (
        "detail.data.appointment_type is not one a workflow takes: Appointment.Booked is "
        "taken for procedure only"
    )


def test_an_unknown_field_is_parked_by_name_and_never_reaches_an_execution(cloud):
    data = booking("appt-adv-extra", patient_name=PHI)
    parked = record(cloud, put(cloud, "Appointment.Booked", data, what="parked"))
    assert parked.reason.startswith("detail.data.patient_name is not a field of this event")
    assert "Jane" not in parked.reason
    for execution in cloud.executions(WORKFLOW):
        assert "Jane" not in json.dumps(cloud.describe(execution["executionArn"]), default=str)


def test_the_same_appointment_under_a_new_key_and_the_same_message_twice_start_once(cloud):
    case = new_case(cloud, book=False)
    key = f"appointment:{case.case_id}:booked"
    first = f"evt-{case.case_id}-booked"
    start = (cloud.clock.now() + timedelta(days=10)).isoformat()
    for _ in range(2):  # the same message, delivered twice
        put(
            cloud,
            "Appointment.Booked",
            booking(case.case_id, start),
            what="processed",
            event_id=first,
            key=key,
        )
    case = Case(cloud, case.case_id, intake.instance_id_for(WORKFLOW, key)).started()
    CASES["ready"] = case
    again = put(
        cloud,
        "Appointment.Booked",
        booking(case.case_id, start),
        what="processed",
        key=f"resent:{case.case_id}",
    )
    cloud.wait_for(
        lambda: any(
            a.action == "duplicate_event" for a in wiring.store().audit_trail(case.instance_id)
        ),
        20,
        "the duplicate audited",
    )
    assert case.output()["outcome"] == "READY"
    mine = [e for e in cloud.executions(WORKFLOW) if e["name"] == case.instance_id]
    assert len(mine) == 1
    audit = [
        a for a in wiring.store().audit_trail(case.instance_id) if a.action == "duplicate_event"
    ]
    assert [a.detail["event_id"] for a in audit] == [again]


def test_a_reschedule_moves_the_waiting_case_and_a_cancel_stops_another(cloud):
    moved = new_case(cloud, supplies=HIP, facility="fac-south", starts_in=timedelta(days=5))
    ACCEPTED[moved_event(cloud, moved)] = "waiting"
    cancelled = new_case(cloud, supplies=HIP, facility="fac-south", starts_in=timedelta(days=5))
    ACCEPTED[moved_event(cloud, cancelled)] = "processed"
    moved.open_task()
    cancelled.open_task()
    new_start = cloud.clock.now() + timedelta(days=9)
    put(
        cloud,
        "Appointment.Rescheduled",
        {"appointment_id": moved.case_id, "scheduled_start": new_start.isoformat()},
        what="processed",
        facility="fac-south",
    )
    moved.wait_milestone("rescheduled")
    assert moved.instance().scheduled_start == new_start
    assert cloud.describe(moved.arn)["status"] == "RUNNING"
    CASES["waiting"] = moved

    put(
        cloud,
        "Appointment.Cancelled",
        {"appointment_id": cancelled.case_id, "reason_code": "patient"},
        what="processed",
        facility="fac-south",
    )
    # Intake called StopExecution: the execution, waiting on its task, ends ABORTED.
    cloud.wait_for(lambda: cancelled.instance().status is InstanceStatus.CANCELLED, 20, "CANCELLED")
    cloud.wait_for(
        lambda: cloud.describe(cancelled.arn)["status"] == "ABORTED", 20, "the execution aborted"
    )
    audited = cloud.wait_for(  # written right after the instance record
        lambda: [
            a for a in wiring.store().audit_trail(cancelled.instance_id) if a.action == "cancelled"
        ],
        20,
        "the cancellation audited",
    )
    assert len(audited) == 1 and audited[0].actor == "system:intake"
    assert all(t.status is TaskStatus.CLOSED for t in cancelled.tasks())
    CASES["cancelled"] = cancelled


def moved_event(cloud: Any, case: Case) -> str:
    """The id of the booking event the harness put for ``case``."""
    started = case.started()
    history = cloud.describe(started.arn)
    return str(json.loads(history["input"])["event_id"])


def test_cancel_before_book_and_a_reschedule_for_nothing(cloud):
    put(cloud, "Appointment.Cancelled", {"appointment_id": "appt-adv-early"}, what="processed")
    store = wiring.store()
    cloud.wait_for(
        lambda: store.get_subject(WORKFLOW, "fac-north", "appt-adv-early"), 20, "tombstone"
    )
    late = put(cloud, "Appointment.Booked", booking("appt-adv-early"), what="parked")
    parked = record(cloud, late)
    assert parked.reason.startswith("the subject of this event was cancelled before it started")
    orphan = put(
        cloud,
        "Appointment.Rescheduled",
        {"appointment_id": "appt-adv-none", "scheduled_start": "2026-12-21T08:00:00+00:00"},
        what="unrouted",
    )
    assert record(cloud, orphan).kind == "unrouted"
    names = {e["name"] for e in cloud.executions(WORKFLOW)}
    assert intake.instance_id_for(WORKFLOW, "appointment:appt-adv-early:booked") not in names


def test_the_cli_lists_both_kinds_shows_and_redrives_a_parked_event(cloud, capsys):
    from careflow.cli import main

    port = ["--port", str(cloud.port)]
    event_id = put(
        cloud,
        "Appointment.Booked",
        booking("appt-adv-redrive"),
        what="parked",
        facility="fac-adv-new",
    )
    # Every workflow that takes Appointment.Booked (readiness, replenishment) parks it once
    takers = sum(
        1
        for wf in registry.workflows()
        for trigger in wf.triggers
        if trigger.detail_type == "Appointment.Booked"
    )
    store = wiring.store()
    cloud.wait_for(
        lambda: (r := store.get_parked(event_id)) is not None and r.times_parked == takers,
        20,
        "parked by each workflow that takes it",
    )
    record(cloud, put_raw(cloud, "careflow.erp", "ItemMaster.Updated", "{}", "unrouted"))
    assert main(["parked", "list", "--json", *port]) == 0
    kinds = {r["event_id"]: r["kind"] for r in json.loads(capsys.readouterr().out)}
    assert kinds[event_id] == "parked" and "unrouted" in kinds.values()
    assert main(["parked", "list", *port]) == 0
    assert "unrouted" in capsys.readouterr().out
    assert main(["parked", "show", event_id, *port]) == 0
    assert json.loads(capsys.readouterr().out)["reason"] == intake.UNKNOWN_FACILITY
    assert main(["parked", "redrive", event_id, *port]) == 0
    # The facility is still unknown: intake parks it again, with the reason, counted.
    again = cloud.wait_for(
        lambda: (r := store.get_parked(event_id)) is not None and r.times_parked > takers and r,
        20,
        "the redriven event parked again",
    )
    assert (again.status, again.reason) == ("PARKED", intake.UNKNOWN_FACILITY)
    assert main(["parked", "redrive", "evt-nope", *port]) == 2
    assert "no parked or unrouted event evt-nope" in capsys.readouterr().err


def end_states(cloud: Any, event_id: str) -> list[str]:
    """Where ``event_id`` ended, read from the table and the executions only."""
    store = wiring.store()
    states = []
    parked = store.get_parked(event_id)
    if parked is not None:
        states.append(parked.kind)
    for case in CASES.values():
        described = cloud.describe(case.arn)
        started_it = json.loads(described["input"])["event_id"] == event_id
        instance = case.instance()
        if started_it and described["status"] == "SUCCEEDED":
            states.append("processed")
        elif started_it and instance.status is InstanceStatus.CANCELLED:
            states.append("processed")  # stopped by its cancellation (see above)
        elif (
            started_it
            and described["status"] == "RUNNING"
            and any(t.awaits_decision for t in case.tasks())
        ):
            states.append("waiting")
        for entry in store.audit_trail(case.instance_id):
            if entry.detail.get("event_id") == event_id:
                states.append("processed")
    for subject in ("appt-adv-early",):
        tombstone = store.get_subject(WORKFLOW, "fac-north", subject)
        if tombstone is not None and tombstone.event_id == event_id:
            states.append("processed")
    return states


def test_every_accepted_event_is_processed_waiting_parked_or_unrouted_exactly(cloud):
    assert len(ACCEPTED) >= 18
    counts = {"processed": 0, "waiting": 0, "parked": 0, "unrouted": 0}
    for event_id, expected in ACCEPTED.items():
        states = cloud.wait_for(lambda e=event_id: end_states(cloud, e) or None, 20, event_id)
        assert states == [expected], (event_id, states)
        counts[expected] += 1
    assert sum(counts.values()) == len(ACCEPTED)
    assert all(counts.values()), counts  # the mix has every end state
