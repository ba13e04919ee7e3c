"""The event envelope, intake's de-duplication and parking."""

import copy
from datetime import UTC, datetime

import pytest

from careflow.catalog import CATALOG
from careflow.domain import intake
from careflow.events.envelope import EnvelopeError, parse_event
from tests.fakes import FakeEngine, FakeParking, InMemoryStateStore

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
ARNS = {"surgical-case-readiness": "arn:aws:states:us-east-1:1:stateMachine:SurgicalCaseReadiness"}
SLAS = {wf.id: wf.sla_seconds() for wf in CATALOG}


def booked(**data_overrides):
    data = {
        "appointment_id": "appt-1001",
        "appointment_type": "procedure",
        "scheduled_start": "2026-12-09T08:00:00+00:00",
        **data_overrides,
    }
    return {
        "source": "careflow.scheduling",
        "detail-type": "Appointment.Booked",
        "detail": {
            "metadata": {
                "event_id": "e-1",
                "idempotency_key": "k-1",
                "facility_id": "fac-north",
                "occurred_at": "2026-11-29T08:00:00+00:00",
                "schema_version": "1.0",
                "correlation_id": "c-1",
            },
            "data": data,
        },
    }


def target(event):
    return {"workflow_id": "surgical-case-readiness", "event": event}


class TestEnvelope:
    def test_a_booked_procedure_parses(self):
        event = parse_event(booked())
        assert event.metadata.idempotency_key == "k-1"
        assert event.data.appointment_id == "appt-1001"

    @pytest.mark.parametrize(
        ("mutate", "reason"),
        [
            (lambda e: e.update(source="ehr"), "source"),
            (lambda e: e.update({"detail-type": "appointment booked"}), "detail-type"),
            (
                lambda e: e["detail"]["metadata"].pop("idempotency_key"),
                "detail.metadata.idempotency_key is missing: the envelope requires the key a "
                "redelivery shares",
            ),
            (
                lambda e: e["detail"]["metadata"].update(schema_version="one"),
                "detail.metadata.schema_version",
            ),
            (
                lambda e: e["detail"]["data"].update(scheduled_start="2026-12-09T08:00:00"),
                "detail.data.scheduled_start",
            ),
            (
                lambda e: e["detail"]["data"].update(appointment_type="surgery"),
                "detail.data.appointment_type",
            ),
            (lambda e: e.update({"detail-type": "Patient.Admitted"}), "no schema"),
            (lambda e: e.update(detail="not json"), "detail"),
        ],
    )
    def test_bad_events_are_rejected_with_a_reason(self, mutate, reason):
        event = booked()
        mutate(event)
        with pytest.raises(EnvelopeError) as err:
            parse_event(event)
        assert reason in err.value.reason

    def test_reasons_name_fields_never_values(self):
        event = booked(appointment_id="Jane Doe 1970-01-01!")
        with pytest.raises(EnvelopeError) as err:
            parse_event(event)
        assert "Jane" not in err.value.reason
        assert "detail.data.appointment_id" in err.value.reason


class TestIntake:
    def test_accept_builds_a_small_input(self):
        req = intake.accept(target(booked()), state_machine_arns=ARNS)
        assert req.input["case_id"] == "appt-1001"
        assert "sla" not in req.input  # timers come from the policy pinned at registration
        assert req.state_machine_arn == ARNS["surgical-case-readiness"]
        assert req.instance_id == intake.instance_id_for("surgical-case-readiness", "k-1")

    def test_the_same_idempotency_key_starts_one_execution(self):
        engine, store = FakeEngine(), InMemoryStateStore()
        first = intake.start(
            intake.accept(target(booked()), state_machine_arns=ARNS),
            engine=engine,
            store=store,
            now=NOW,
        )
        again = copy.deepcopy(booked())
        again["detail"]["metadata"]["event_id"] = "e-2"  # a redelivery with a new id
        second = intake.start(
            intake.accept(target(again), state_machine_arns=ARNS),
            engine=engine,
            store=store,
            now=NOW,
        )
        assert first["status"] == "started"
        assert second == {"status": "duplicate", "instance_id": first["instance_id"]}
        assert len(engine.started) == 1

    def test_a_non_procedure_appointment_is_parked_not_started(self):
        with pytest.raises(EnvelopeError, match="only procedures"):
            intake.accept(target(booked(appointment_type="consult")), state_machine_arns=ARNS)

    def test_unknown_or_undeployed_workflows_are_rejected(self):
        with pytest.raises(EnvelopeError, match="not a workflow"):
            intake.accept({"workflow_id": "nope", "event": booked()}, state_machine_arns=ARNS)
        with pytest.raises(EnvelopeError, match="not deployed"):
            intake.accept(target(booked()), state_machine_arns={})

    def test_park_keeps_the_whole_event_in_the_queue_and_identifiers_in_the_table(self):
        store, parking = InMemoryStateStore(), FakeParking()
        event = booked()
        parked = intake.park(
            target(event), "detail.data: bad", store=store, parking=parking, now=NOW
        )
        assert parked.event_id == "e-1"
        assert parking.ids == ["e-1"]
        assert parking.parked == [(target(event), "detail.data: bad")]
        record = store.parked[0]
        assert (record.event_id, record.detail_type, record.facility_id, record.reason) == (
            "e-1",
            "Appointment.Booked",
            "fac-north",
            "detail.data: bad",
        )

    def test_park_copes_with_garbage(self):
        store, parking = InMemoryStateStore(), FakeParking()
        parked = intake.park(
            {"event": "garbage"},
            "event is not a JSON object",
            store=store,
            parking=parking,
            now=NOW,
        )
        assert parked.event_id
        assert store.parked[0].reason == "event is not a JSON object"
