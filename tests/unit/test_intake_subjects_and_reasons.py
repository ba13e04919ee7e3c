"""Intake with fakes: reasons as sentences, unknown fields and facilities, one instance per
subject (crash-safe), reschedule and cancel, unrouted events, and redrive."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto.events.models import EventPattern

from careflow.catalog import CATALOG
from careflow.domain import intake, parked
from careflow.domain.records import HumanTask, Instance, InstanceStatus, TaskStatus
from careflow.events.envelope import EnvelopeError, parse_event
from careflow.events.routing import routes, unrouted_pattern
from tests.fakes import FakeEngine, FakeParking, FakePublisher, InMemoryStateStore

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
WF = "surgical-case-readiness"
ARNS = {WF: "arn:aws:states:us-east-1:1:stateMachine:SurgicalCaseReadiness"}
PHI = "Jane Doe 1970-01-01"


def event(
    detail_type: str = "Appointment.Booked",
    *,
    key: str = "k-1",
    event_id: str = "e-1",
    facility: str = "fac-north",
    source: str = "careflow.scheduling",
    **data: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"appointment_id": "appt-1001"}
    if detail_type == "Appointment.Booked":
        body |= {"appointment_type": "procedure", "scheduled_start": "2026-12-09T08:00:00+00:00"}
    if detail_type == "Appointment.Rescheduled":
        body |= {"scheduled_start": "2026-12-11T09:30:00+00:00"}
    body |= data
    return {
        "id": f"eb-{event_id}",
        "source": source,
        "detail-type": detail_type,
        "detail": {
            "metadata": {
                "event_id": event_id,
                "idempotency_key": key,
                "facility_id": facility,
                "occurred_at": "2026-11-29T08:00:00+00:00",
                "schema_version": "1.0",
                "correlation_id": "c-1",
            },
            "data": body,
        },
    }


def target(e: dict[str, Any]) -> dict[str, Any]:
    return {"workflow_id": WF, "event": e}


class Intake:
    """Intake's logic as the handler runs it, on fakes."""

    def __init__(self) -> None:
        self.engine, self.store, self.parking = FakeEngine(), InMemoryStateStore(), FakeParking()

    def handle(self, e: dict[str, Any]) -> dict[str, Any]:
        try:
            request = intake.accept(target(e), state_machine_arns=ARNS)
        except EnvelopeError as exc:
            return self.park(e, exc.reason)
        result = intake.process(
            request.model_dump(mode="json"), engine=self.engine, store=self.store, now=NOW
        )
        if result["status"] in ("refused", "unrouted"):
            return self.park(e, result["reason"], result["status"])
        return result

    def park(self, e: dict[str, Any], reason: str, kind: str = "parked") -> dict[str, Any]:
        return intake.park(
            target(e),
            reason,
            store=self.store,
            parking=self.parking,
            now=NOW,
            kind="unrouted" if kind == "unrouted" else "parked",
        ).model_dump()

    def register(self, instance_id: str) -> None:
        """What the workflow's first step does: the instance record."""
        self.store.put_instance(
            Instance(
                instance_id=instance_id,
                workflow_id=WF,
                subject_type="case",
                subject_id="appt-1001",
                facility_id="fac-north",
                status=InstanceStatus.WAITING,
                started_at=NOW,
                updated_at=NOW,
                correlation_id="c-1",
                execution_name=instance_id,
            )
        )


def reason_of(e: dict[str, Any]) -> str:
    with pytest.raises(EnvelopeError) as err:
        parse_event(e)
    return err.value.reason


class TestReasons:
    def test_a_missing_field_is_a_sentence_naming_the_field_and_the_rule(self):
        e = event()
        del e["detail"]["data"]["scheduled_start"]
        assert reason_of(e) == (
            "detail.data.scheduled_start is missing: Appointment.Booked requires the case "
            "start time"
        )

    def test_a_time_without_offset_says_so(self):
        reason = reason_of(event(scheduled_start="2026-12-09T08:00:00"))
        assert reason == (
            "detail.data.scheduled_start has no UTC offset: Appointment.Booked requires a "
            "time with its UTC offset"
        )

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"appointment_id": PHI}, "detail.data.appointment_id"),
            ({"appointment_type": PHI}, "detail.data.appointment_type"),
            ({"scheduled_start": PHI}, "detail.data.scheduled_start"),
            ({"patient_name": PHI}, "detail.data.patient_name"),
        ],
    )
    def test_reasons_never_echo_the_value(self, data, field):
        reason = reason_of(event(**data))
        assert field in reason
        assert "Jane" not in reason and "1970" not in reason
        assert "value_error" not in reason and "model_type" not in reason

    def test_an_unknown_field_is_refused_by_name(self):
        reason = reason_of(event(diagnosis="C50.9"))
        assert reason == (
            "detail.data.diagnosis is not a field of this event: Appointment.Booked takes "
            "only the fields of its schema (unknown fields are refused)"
        )
        assert "C50" not in reason

    def test_an_unknown_field_whose_name_looks_like_a_value_is_not_named(self):
        reason = reason_of(event(**{PHI: "x"}))
        assert "Jane" not in reason
        assert "detail.data.<an unknown field> is not a field of this event" in reason

    @pytest.mark.parametrize(
        ("detail", "reason"),
        [
            ({}, "detail is empty"),
            ([], "detail is not a JSON object"),
            ({"metadata": [], "data": {}}, "detail.metadata is not a JSON object"),
        ],
    )
    def test_empty_or_array_detail_is_refused(self, detail, reason):
        e = event()
        e["detail"] = detail
        assert reason_of(e).startswith(reason)


class TestFacilities:
    def test_an_unknown_facility_is_parked_with_a_reason(self):
        run = Intake()
        result = run.handle(event(facility="fac-nowhere"))
        assert result["status"] == "parked"
        assert result["reason"] == intake.UNKNOWN_FACILITY
        assert "fac-nowhere" not in result["reason"]
        assert run.engine.started == {}
        assert run.store.parked[0].facility_id == "fac-nowhere"  # identifiers in the record


class TestOneInstancePerSubject:
    def test_a_new_idempotency_key_for_the_same_appointment_starts_nothing_new(self):
        run = Intake()
        first = run.handle(event())
        second = run.handle(event(key="k-2", event_id="e-2"))
        assert first["status"] == "started"
        assert second == {"status": "duplicate", "instance_id": first["instance_id"]}
        assert list(run.engine.started) == [first["instance_id"]]
        audit = run.store.audit_trail(first["instance_id"])
        assert [(a.action, a.detail) for a in audit] == [("duplicate_event", {"event_id": "e-2"})]

    def test_the_same_appointment_at_another_facility_is_another_subject(self):
        run = Intake()
        a = run.handle(event())
        b = run.handle(event(key="k-2", event_id="e-2", facility="fac-south"))
        assert a["status"] == b["status"] == "started"
        assert len(run.engine.started) == 2

    def test_a_start_that_failed_after_the_claim_is_retried_under_the_same_name(self):
        run = Intake()
        run.engine.fail_next_start = True
        with pytest.raises(ConnectionError):
            run.handle(event())  # the subject is claimed, Step Functions did not answer
        claimed = run.store.get_subject(WF, "fac-north", "appt-1001")
        assert claimed is not None and claimed.instance_id
        # EventBridge retries; or the producer re-sends under a new key: either starts it.
        retried = run.handle(event(key="k-2", event_id="e-2"))
        assert retried["status"] == "started"
        assert retried["instance_id"] == claimed.instance_id
        assert run.engine.started[claimed.instance_id]["instance_id"] == claimed.instance_id
        assert run.handle(event())["status"] == "duplicate"

    def test_prior_authorization_keys_its_subject_on_the_request_id(self):
        spec = next(wf for wf in CATALOG if wf.id == "prior-authorization")
        (trigger,) = spec.triggers
        assert trigger.subject is not None
        assert trigger.subject(type("E", (), {"data": type("D", (), {"request_id": "r-9"})}))


class TestRescheduleAndCancel:
    def test_a_reschedule_updates_the_running_instance_with_a_milestone(self):
        run = Intake()
        started = run.handle(event())
        run.register(started["instance_id"])
        result = run.handle(event("Appointment.Rescheduled", key="k-r", event_id="e-r"))
        assert result == {"status": "updated", "instance_id": started["instance_id"]}
        instance = run.store.get_instance(started["instance_id"])
        assert instance.scheduled_start == datetime(2026, 12, 11, 9, 30, tzinfo=UTC)
        assert [(m.name, m.detail) for m in run.store.milestones(instance.instance_id)] == [
            ("rescheduled", "event e-r")
        ]

    def test_a_reschedule_for_an_appointment_nothing_runs_for_is_unrouted(self):
        run = Intake()
        result = run.handle(event("Appointment.Rescheduled"))
        assert result["status"] == "unrouted"
        assert result["reason"].startswith(f"no instance of {WF} runs for this subject")
        assert run.store.parked[0].kind == "unrouted"

    def test_a_cancel_stops_the_execution_and_the_instance_ends_cancelled(self):
        run = Intake()
        started = run.handle(event())
        run.register(started["instance_id"])
        run.store.put_task(
            HumanTask(
                task_id="t-1",
                instance_id=started["instance_id"],
                workflow_id=WF,
                facility_id="fac-north",
                queue="care_coordinator",
                title="Case at risk",
                subject_ref="case/appt-1001",
                created_at=NOW,
                due_at=NOW + timedelta(hours=4),
                task_token="tok",
                allowed_decisions=("PROCEED",),
            )
        )
        result = run.handle(event("Appointment.Cancelled", key="k-c", event_id="e-c"))
        assert result == {
            "status": "cancelled",
            "instance_id": started["instance_id"],
            "stopped": True,
        }
        ((arn, error, cause),) = run.engine.stopped
        assert arn.endswith(":execution:SurgicalCaseReadiness:" + started["instance_id"])
        assert (error, cause) == ("Cancelled", "Appointment.Cancelled (event e-c)")
        instance = run.store.get_instance(started["instance_id"])
        assert instance.status is InstanceStatus.CANCELLED
        assert run.store.get_task("t-1").status is TaskStatus.CLOSED  # nobody works it
        (audit,) = run.store.audit_trail(instance.instance_id)
        assert (audit.action, audit.actor) == ("cancelled", "system:intake")
        assert audit.detail == {"event_id": "e-c"}
        # cancelling again changes nothing; a later reschedule is refused, visibly
        again = run.handle(event("Appointment.Cancelled", key="k-c2", event_id="e-c2"))
        assert again["status"] == "duplicate"
        assert len(run.engine.stopped) == 1
        assert [a.detail for a in run.store.audit_trail(instance.instance_id)][-1] == {
            "event_id": "e-c2"
        }
        late = run.handle(event("Appointment.Rescheduled", key="k-r", event_id="e-r"))
        assert late["status"] == "parked" and "cancelled" in late["reason"]

    def test_a_cancel_before_the_booking_keeps_the_booking_from_starting(self):
        run = Intake()
        cancel = run.handle(event("Appointment.Cancelled", key="k-c", event_id="e-c"))
        assert cancel == {"status": "cancelled", "instance_id": None}
        booked = run.handle(event())
        assert booked["status"] == "parked"
        assert booked["reason"].startswith("the subject of this event was cancelled")
        assert run.engine.started == {}


class TestUnrouted:
    """The catch-all pattern is the complement of the catalog's rules: with moto's own
    matcher, every event is taken by exactly one of a route or the catch-all."""

    ROUTED = [
        event(),
        event("Appointment.Rescheduled"),
        event("Appointment.Cancelled"),
        {"source": "careflow.ehr", "detail-type": "PriorAuth.Requested", "detail": {}},
        {"source": "careflow.payer", "detail-type": "PriorAuth.Decided", "detail": {}},
        {"source": "careflow.workflow", "detail-type": "Case.Ready", "detail": {}},
        {"source": "careflow.workflow", "detail-type": "HumanTask.Opened", "detail": {}},
    ]
    UNROUTED = [
        event(appointment_type="consult"),
        event(source="careflow.erp"),
        event("Patient.Admitted"),
        {"source": "careflow.scheduling", "detail-type": "Appointment.Booked", "detail": {}},
        {"source": "careflow.scheduling", "detail-type": "Appointment.Booked", "detail": []},
        {"source": "careflow.scheduling", "detail-type": "Case.Ready", "detail": {}},
        {"source": "partner.app", "detail-type": "PriorAuth.Requested", "detail": {}},
    ]

    @staticmethod
    def _matches(pattern: dict[str, Any], e: dict[str, Any]) -> bool:
        return EventPattern(None, pattern).matches_event(copy.deepcopy(e))

    def _route_patterns(self) -> list[dict[str, Any]]:
        patterns = [t.pattern() for wf in CATALOG for t in wf.triggers]
        patterns += [s.pattern() for wf in CATALOG for s in wf.subscriptions]
        patterns += [
            {"source": [r.source], "detail-type": [r.detail_type]}
            for r in routes(CATALOG)
            if r.taker == "consumers"
        ]
        return patterns

    @pytest.mark.parametrize("e", ROUTED + UNROUTED)
    def test_every_event_is_taken_by_a_route_or_the_catch_all_never_both(self, e):
        by_route = any(self._matches(p, e) for p in self._route_patterns())
        by_catch_all = self._matches(unrouted_pattern(CATALOG), e)
        assert by_route != by_catch_all
        assert by_catch_all == (e in self.UNROUTED)

    def test_the_catch_all_pattern_fits_eventbridge_s_4096_character_limit(self):
        import json

        assert len(json.dumps(unrouted_pattern(CATALOG), separators=(",", ":"))) < 4096

    def test_an_unrouted_event_is_recorded_with_its_reason(self):
        store, parking = InMemoryStateStore(), FakeParking()
        e = event(appointment_type="consult")
        result = intake.unrouted(
            {"route": "unrouted", "event": e}, store=store, parking=parking, now=NOW
        )
        assert result.status == "unrouted"
        assert result.reason == (
            "detail.data.appointment_type is not one a workflow takes: Appointment.Booked "
            "is taken for procedure only"
        )
        (record,) = store.parked_events()
        assert (record.kind, record.event_id, record.detail_type) == (
            "unrouted",
            "e-1",
            "Appointment.Booked",
        )
        assert parking.parked == [({"route": "unrouted", "event": e}, result.reason)]


class TestRedrive:
    def test_a_fixed_event_goes_back_on_the_bus_once(self):
        store, parking, bus = InMemoryStateStore(), FakeParking(), FakePublisher()
        e = event(facility="fac-new")
        intake.park(target(e), intake.UNKNOWN_FACILITY, store=store, parking=parking, now=NOW)
        later = NOW + timedelta(hours=1)
        record = parked.redrive("e-1", store=store, parking=parking, publisher=bus, now=later)
        assert (record.status, record.redriven_at) == ("REDRIVEN", later)
        assert bus.events == [("careflow.scheduling", "Appointment.Booked", e["detail"])]
        assert parking.parked == []
        with pytest.raises(parked.RedriveError, match="redriven already"):
            parked.redrive("e-1", store=store, parking=parking, publisher=bus, now=later)
        assert len(bus.events) == 1

    def test_an_event_still_invalid_is_parked_again_with_the_new_reason(self):
        store, parking, bus = InMemoryStateStore(), FakeParking(), FakePublisher()
        e = event(facility="fac-new")
        intake.park(target(e), intake.UNKNOWN_FACILITY, store=store, parking=parking, now=NOW)
        parked.redrive("e-1", store=store, parking=parking, publisher=bus, now=NOW)
        intake.park(target(e), "a new reason", store=store, parking=parking, now=NOW)  # intake
        record = parked.show(store, "e-1")
        assert (record.status, record.reason, record.times_parked) == ("PARKED", "a new reason", 2)
        parked.redrive("e-1", store=store, parking=parking, publisher=bus, now=NOW)
        assert len(bus.events) == 2

    def test_a_failed_put_keeps_the_event_parked(self):
        store, parking = InMemoryStateStore(), FakeParking()

        class Down(FakePublisher):
            def publish(self, *args: Any) -> None:
                raise ConnectionError("EventBridge is unreachable")

        intake.park(target(event()), "r", store=store, parking=parking, now=NOW)
        with pytest.raises(ConnectionError):
            parked.redrive("e-1", store=store, parking=parking, publisher=Down(), now=NOW)
        assert parking.ids == ["e-1"]

    def test_unknown_ids_are_a_one_line_error(self):
        with pytest.raises(parked.RedriveError, match="no parked or unrouted event nope"):
            parked.show(InMemoryStateStore(), "nope")
