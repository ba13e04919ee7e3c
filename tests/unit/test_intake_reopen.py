"""Intake with fakes: a start trigger that ``reopens`` starts a cancelled subject again,
for a start that occurred after the cancellation only (docs/decisions.md 34).

Discharge coordination declares it (a new A16 after an A13: the patient is back, the
discharge is planned again); surgical case readiness does not (a late booking after its
cancellation stays refused)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from careflow.domain import intake
from careflow.domain.records import Instance, InstanceStatus, SubjectRecord
from careflow.events.envelope import EnvelopeError
from careflow.kit.spec import Trigger
from careflow.ports import ConcurrentUpdate
from tests.fakes import FakeEngine, FakeParking, InMemoryStateStore

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
DC = "discharge-coordination"
SCR = "surgical-case-readiness"
ARNS = {
    DC: "arn:aws:states:us-east-1:1:stateMachine:DischargeCoordination",
    SCR: "arn:aws:states:us-east-1:1:stateMachine:SurgicalCaseReadiness",
}
ENCOUNTER = "V5001"


def encounter(detail_type: str, *, key: str, minutes: int, **data: Any) -> dict[str, Any]:
    """An encounter event ``minutes`` after T0 (its ``occurred_at``)."""
    body: dict[str, Any] = {
        "encounter_id": ENCOUNTER,
        "patient_id": "MRN5001",
        "patient_id_authority": "NVMC",
        **data,
    }
    if detail_type == "Encounter.DischargePending":
        body.setdefault("disposition", "01")
    if detail_type == "Encounter.Discharged":
        body.setdefault("discharged_at", (T0 + timedelta(minutes=minutes)).isoformat())
    return _event("careflow.ehr", detail_type, key, minutes, body)


def appointment(detail_type: str, *, key: str, minutes: int) -> dict[str, Any]:
    body: dict[str, Any] = {"appointment_id": "appt-7001"}
    if detail_type == "Appointment.Booked":
        body |= {"appointment_type": "procedure", "scheduled_start": "2026-12-09T08:00:00+00:00"}
    return _event("careflow.scheduling", detail_type, key, minutes, body)


def _event(
    source: str, detail_type: str, key: str, minutes: int, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": f"eb-{key}",
        "source": source,
        "detail-type": detail_type,
        "detail": {
            "metadata": {
                "event_id": f"e-{key}",
                "idempotency_key": key,
                "facility_id": "fac-north",
                "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(),
                "schema_version": "1.0",
                "correlation_id": f"c-{key}",
            },
            "data": data,
        },
    }


class Intake:
    """Intake's logic as the handler runs it (accept, then process the dumped request)."""

    def __init__(self, store: InMemoryStateStore | None = None) -> None:
        self.engine, self.parking = FakeEngine(), FakeParking()
        self.store = store or InMemoryStateStore()

    def handle(self, e: dict[str, Any], workflow_id: str = DC) -> dict[str, Any]:
        target = {"workflow_id": workflow_id, "event": e}
        try:
            request = intake.accept(target, state_machine_arns=ARNS)
        except EnvelopeError as exc:  # pragma: no cover - the events here are valid
            raise AssertionError(exc.reason) from exc
        result = intake.process(
            request.model_dump(mode="json"), engine=self.engine, store=self.store, now=NOW
        )
        if result["status"] in ("refused", "unrouted"):
            kind = "unrouted" if result["status"] == "unrouted" else "parked"
            parked = intake.park(
                target, result["reason"], store=self.store, parking=self.parking, now=NOW, kind=kind
            )
            return {**parked.model_dump(), "outcome": result["status"]}
        return result

    def register(self, instance_id: str) -> None:
        """What the workflow's first step does: the instance record."""
        self.store.put_instance(
            Instance(
                instance_id=instance_id,
                workflow_id=DC,
                subject_type="encounter",
                subject_id=ENCOUNTER,
                facility_id="fac-north",
                status=InstanceStatus.WAITING,
                started_at=NOW,
                updated_at=NOW,
                correlation_id="c-1",
                execution_name=instance_id,
            )
        )

    def subject(self, workflow_id: str = DC, subject_id: str = ENCOUNTER) -> SubjectRecord:
        record = self.store.get_subject(workflow_id, "fac-north", subject_id)
        assert record is not None
        return record


def discharged_then_back(run: Intake) -> str:
    """A16 at +0, A03 at +60, the execution over, A13 at +120: the first instance's id."""
    first = run.handle(encounter("Encounter.DischargePending", key="a16-1", minutes=0))
    assert first["status"] == "started"
    run.register(first["instance_id"])
    a03 = run.handle(encounter("Encounter.Discharged", key="a03-1", minutes=60))
    assert a03 == {"status": "updated", "instance_id": first["instance_id"]}
    a13 = run.handle(encounter("Encounter.DischargeCancelled", key="a13-1", minutes=120))
    assert a13["status"] == "cancelled"
    assert run.subject().status == "CANCELLED"
    assert run.subject().occurred_at == T0 + timedelta(minutes=120)
    return str(first["instance_id"])


class TestReopen:
    def test_a_new_a16_after_an_a13_starts_a_second_coordination(self):
        run = Intake()
        first = discharged_then_back(run)

        again = run.handle(encounter("Encounter.DischargePending", key="a16-2", minutes=180))

        second = intake.instance_id_for(DC, "a16-2")
        assert again["status"] == "started" and again["instance_id"] == second != first
        assert list(run.engine.started) == [first, second]
        assert run.engine.started[second]["instance_id"] == second
        record = run.subject()
        assert (record.status, record.instance_id, record.reopened) == ("STARTED", second, True)
        assert record.event_id == "e-a16-2"
        assert record.occurred_at == T0 + timedelta(minutes=180)
        # the cancelled instance keeps its record and audit; the new one says why it exists
        assert run.store.get_instance(first).status is InstanceStatus.CANCELLED
        assert [a.action for a in run.store.audit_trail(first)] == [
            "discharged",
            "dischargecancelled",
        ]
        (audit,) = run.store.audit_trail(second)
        assert (audit.action, audit.actor) == ("reopened", "system:intake")
        assert audit.detail == {
            "event_id": "e-a16-2",
            "cancelled_by": "e-a13-1",
            "previous_instance_id": first,
        }
        assert "MRN" not in repr(audit) and "NVMC" not in repr(audit)  # identifiers only

    def test_the_reopened_coordination_takes_its_own_a03_and_a13(self):
        run = Intake()
        discharged_then_back(run)
        second = run.handle(encounter("Encounter.DischargePending", key="a16-2", minutes=180))
        run.register(second["instance_id"])

        a03 = run.handle(encounter("Encounter.Discharged", key="a03-2", minutes=240))
        assert a03 == {"status": "updated", "instance_id": second["instance_id"]}
        a13 = run.handle(encounter("Encounter.DischargeCancelled", key="a13-2", minutes=300))
        assert a13 == {"status": "cancelled", "instance_id": second["instance_id"], "stopped": True}
        # and a third A16 after that second A13 starts a third one
        third = run.handle(encounter("Encounter.DischargePending", key="a16-3", minutes=360))
        assert third["status"] == "started"
        assert len(run.engine.started) == 3

    def test_an_event_of_the_cancelled_episode_does_not_touch_the_new_one(self):
        run = Intake()
        first = discharged_then_back(run)
        second = run.handle(encounter("Encounter.DischargePending", key="a16-2", minutes=180))
        run.register(second["instance_id"])

        # the first A13 again (after its idempotency record expired), and a late A11 of +90
        for e in (
            encounter("Encounter.DischargeCancelled", key="a13-1", minutes=120),
            encounter("Encounter.AdmitCancelled", key="a11-old", minutes=90),
        ):
            stale = run.handle(e)
            assert stale["status"] == "parked"
            assert "occurred before the subject was started again" in stale["reason"]
        assert [arn.rsplit(":", 1)[-1] for arn, _, _ in run.engine.stopped] == [first]
        assert run.subject().status == "STARTED"
        assert run.store.get_instance(second["instance_id"]).status is InstanceStatus.WAITING

    def test_an_a11_then_the_late_original_a16_is_refused(self):
        run = Intake()
        a11 = run.handle(encounter("Encounter.AdmitCancelled", key="a11-1", minutes=30))
        assert a11 == {"status": "cancelled", "instance_id": None}

        late = run.handle(encounter("Encounter.DischargePending", key="a16-1", minutes=0))

        assert late["status"] == "parked"
        assert late["reason"].startswith("the subject of this event was cancelled after")
        assert run.engine.started == {}
        assert run.subject().status == "CANCELLED" and run.subject().instance_id is None

    def test_a_start_at_the_very_time_of_the_cancellation_is_refused(self):
        run = Intake()
        run.handle(encounter("Encounter.AdmitCancelled", key="a11-1", minutes=30))
        same = run.handle(encounter("Encounter.DischargePending", key="a16-1", minutes=30))
        assert same["status"] == "parked" and run.engine.started == {}

    def test_the_original_a16_again_after_its_a13_is_refused(self):
        run = Intake()
        discharged_then_back(run)
        again = run.handle(encounter("Encounter.DischargePending", key="a16-1", minutes=0))
        assert again["status"] == "parked"
        assert "cancelled after this event occurred" in again["reason"]
        assert len(run.engine.started) == 1

    def test_a_cancellation_stored_without_its_time_is_not_reopened(self):
        """A record written before the field was kept: no time to compare, refused."""
        run = Intake()
        run.store.claim_subject(
            SubjectRecord(
                workflow_id=DC,
                facility_id="fac-north",
                subject_id=ENCOUNTER,
                instance_id="dc-old",
                status="CANCELLED",
                event_id="e-old",
                at=NOW,
            )
        )
        late = run.handle(encounter("Encounter.DischargePending", key="a16-2", minutes=180))
        assert late["status"] == "parked" and "when is not on record" in late["reason"]
        assert run.engine.started == {}

    def test_the_new_a16_twice_starts_one_instance(self):
        run = Intake()
        discharged_then_back(run)
        new_a16 = encounter("Encounter.DischargePending", key="a16-2", minutes=180)
        first = run.handle(new_a16)
        second = run.handle(new_a16)
        assert first["status"] == "started"
        assert second == {"status": "duplicate", "instance_id": first["instance_id"]}
        assert len(run.engine.started) == 2  # the cancelled one and the reopened one
        assert [a.action for a in run.store.audit_trail(first["instance_id"])] == ["reopened"]

    def test_of_two_racing_starts_after_the_cancellation_one_wins(self):
        """B reads the cancelled record; A reopens it before B writes: B's conditional
        write fails, B reads the record again and finds A's instance (a duplicate)."""

        class Racing(InMemoryStateStore):
            rival: Any = None

            def update_subject(self, record: SubjectRecord) -> SubjectRecord:
                if self.rival is not None:
                    rival, self.rival = self.rival, None
                    rival()
                return super().update_subject(record)

        store = Racing()
        run = Intake(store)
        first = discharged_then_back(run)
        results: dict[str, dict[str, Any]] = {}
        a = encounter("Encounter.DischargePending", key="a16-a", minutes=180)
        b = encounter("Encounter.DischargePending", key="a16-b", minutes=181)
        store.rival = lambda: results.setdefault("a", run.handle(a))

        results["b"] = run.handle(b)

        winner = intake.instance_id_for(DC, "a16-a")
        assert results["a"] == {
            "status": "started",
            "instance_id": winner,
            "execution_arn": results["a"]["execution_arn"],
        }
        assert results["b"] == {"status": "duplicate", "instance_id": winner}
        assert list(run.engine.started) == [first, winner]
        assert run.subject().instance_id == winner and run.subject().event_id == "e-a16-a"
        assert [a.action for a in store.audit_trail(winner)] == ["reopened", "duplicate_event"]
        assert store.audit_trail(intake.instance_id_for(DC, "a16-b")) == []

    def test_a_subject_that_keeps_changing_gives_up_with_concurrent_update(self):
        class Contended(InMemoryStateStore):
            def update_subject(self, record: SubjectRecord) -> SubjectRecord:
                raise ConcurrentUpdate(record.subject_id)

        run = Intake(Contended())
        run.handle(encounter("Encounter.AdmitCancelled", key="a11-1", minutes=30))
        with pytest.raises(ConcurrentUpdate):
            run.handle(encounter("Encounter.DischargePending", key="a16-2", minutes=180))
        assert run.engine.started == {}


class TestWithoutReopens:
    def test_a_workflow_that_does_not_reopen_refuses_a_later_start(self):
        run = Intake()
        cancel = run.handle(appointment("Appointment.Cancelled", key="c-1", minutes=30), SCR)
        assert cancel == {"status": "cancelled", "instance_id": None}
        later = run.handle(appointment("Appointment.Booked", key="b-1", minutes=90), SCR)
        assert later["status"] == "parked"
        assert later["reason"].startswith("the subject of this event was cancelled before")
        assert run.engine.started == {}
        # the cancellation's time is kept all the same
        assert run.subject(SCR, "appt-7001").occurred_at == T0 + timedelta(minutes=30)

    def test_a_late_stop_still_stops_a_subject_that_was_never_reopened(self):
        run = Intake()
        booked = run.handle(appointment("Appointment.Booked", key="b-1", minutes=90), SCR)
        cancel = run.handle(appointment("Appointment.Cancelled", key="c-1", minutes=30), SCR)
        assert cancel["status"] == "cancelled" and cancel["instance_id"] == booked["instance_id"]

    def test_only_a_start_trigger_with_a_subject_reopens(self):
        with pytest.raises(ValueError, match="only a start trigger with a subject reopens"):
            Trigger(source="s", detail_type="D.T", effect="stop", subject=str, reopens=True)
        with pytest.raises(ValueError, match="only a start trigger with a subject reopens"):
            Trigger(source="s", detail_type="D.T", reopens=True)

    def test_the_catalog_declares_it_for_discharge_coordination_only(self):
        from careflow.kit.registry import workflows

        reopening = {wf.id for wf in workflows() for t in wf.triggers if t.reopens}
        assert reopening == {DC}


class TestRestartAfterABadEnd:
    """A subject whose execution failed, timed out or was stopped outside careflow is
    started again by a new start event (docs/decisions.md 42); a running, waiting or
    concluded one is not."""

    def _first(self, run: Intake, status: InstanceStatus) -> str:
        first = run.handle(appointment("Appointment.Booked", key="b-1", minutes=0), SCR)
        assert first["status"] == "started"
        instance_id = str(first["instance_id"])
        run.store.put_instance(
            Instance(
                instance_id=instance_id,
                workflow_id=SCR,
                subject_type="case",
                subject_id="appt-7001",
                facility_id="fac-north",
                status=status,
                started_at=NOW,
                updated_at=NOW,
                correlation_id="c-1",
                execution_name=instance_id,
            )
        )
        return instance_id

    @pytest.mark.parametrize("status", [InstanceStatus.FAILED, InstanceStatus.CANCELLED])
    def test_a_new_start_after_a_bad_end_starts_a_new_instance(self, status):
        run = Intake()
        first = self._first(run, status)
        again = run.handle(appointment("Appointment.Booked", key="b-2", minutes=30), SCR)
        second = intake.instance_id_for(SCR, "b-2")
        assert again["status"] == "started" and again["instance_id"] == second != first
        assert run.subject(SCR, "appt-7001").instance_id == second
        (audit,) = run.store.audit_trail(second)
        assert (audit.action, audit.detail["previous_instance_id"]) == ("restarted", first)
        # the same retry delivered again is a duplicate of the new instance
        repeat = run.handle(appointment("Appointment.Booked", key="b-2", minutes=30), SCR)
        assert repeat["status"] == "duplicate" and repeat["instance_id"] == second

    @pytest.mark.parametrize(
        "status", [InstanceStatus.RUNNING, InstanceStatus.WAITING, InstanceStatus.READY]
    )
    def test_a_subject_whose_instance_works_or_concluded_keeps_it(self, status):
        run = Intake()
        first = self._first(run, status)
        again = run.handle(appointment("Appointment.Booked", key="b-2", minutes=30), SCR)
        assert again == {"status": "duplicate", "instance_id": first}
        assert run.subject(SCR, "appt-7001").instance_id == first

    def test_a_subject_cancelled_by_its_own_event_is_not_restarted_this_way(self):
        run = Intake()
        self._first(run, InstanceStatus.WAITING)
        run.handle(appointment("Appointment.Cancelled", key="c-1", minutes=10), SCR)
        again = run.handle(appointment("Appointment.Booked", key="b-2", minutes=30), SCR)
        assert again["outcome"] == "refused"  # readiness does not reopen a cancelled case
