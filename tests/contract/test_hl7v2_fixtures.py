"""Every HL7 v2 fixture (2.3 to 2.8, LF-stored, some with a BOM) parses, maps to the
event its message means, and leaves its PHI at the door. Expected values are read by hand
from the message text (segment and field noted beside each)."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from careflow.adapters.hl7v2 import receive
from careflow.canonical import appointments as readiness
from careflow.canonical.encounters import EVENT_SCHEMAS
from careflow.events.envelope import parse_event
from tests.fakes import FakePublisher, InMemoryStateStore

FIXTURES = Path(__file__).parent.parent / "fixtures" / "hl7v2"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

GHH = {  # the seven ADT-A*-01 fixtures share PID, PV1, MSH-4
    "encounter_id": "40007716",  # PV1-19.1
    "patient_id": "PATID1234",  # PID-3 repetition typed MR (not the SS one)
    "patient_id_authority": "test1",  # PID-3.4.1
    "unit": "HUH AE OMU",  # PV1-3.1.1
    "room": "OMU B",  # PV1-3.2
    "bed": "Bed 03",  # PV1-3.3
    "patient_class": "P",  # PV1-2
    "message_id": "MSG00001",  # MSH-10
}

EXPECTED: dict[str, tuple[str, str, dict[str, object]] | None] = {
    "ADT-A01-01.hl7": (
        "careflow.ehr",
        "Encounter.Admitted",
        {**GHH, "admitted_at": "2015-02-08T11:34:19+01:10"},  # PV1-44
    ),
    "ADT-A02-01.hl7": (
        "careflow.ehr",
        "Encounter.Transferred",
        # EVN-6 (occurred), PV1-6.1 prior location
        {
            **GHH,
            "transferred_at": "2021-08-17T15:19:43.400000+02:00",
            "prior_unit": "4 East, room 136, bed B 4E",
        },
    ),
    "ADT-A03-01.hl7": (
        "careflow.ehr",
        "Encounter.Discharged",
        # PV1-45; PV1-36 is free text ("Admitted as Inpatient"), not a table 0112 code: dropped
        {**GHH, "discharged_at": "2015-02-09T11:34:19+01:10"},
    ),
    "ADT-A08-01.hl7": ("careflow.ehr", "Encounter.Updated", dict(GHH)),  # PV2-9 empty
    "ADT-A11-01.hl7": ("careflow.ehr", "Encounter.AdmitCancelled", dict(GHH)),
    "ADT-A13-01.hl7": ("careflow.ehr", "Encounter.DischargeCancelled", dict(GHH)),
    "ADT-A16-01.hl7": (
        "careflow.ehr",
        "Encounter.DischargePending",
        {**GHH, "expected_discharge_at": "2015-02-10T11:34:19+01:10"},  # PV2-9
    ),
    "ADT01-23.hl7": (  # 2.3, BOM, PV1-3 PREOP^101^1^1
        "careflow.ehr",
        "Encounter.Admitted",
        {
            "encounter_id": "40007716",
            "patient_id": "10006579",
            "patient_id_authority": "1",
            "unit": "PREOP",
            "room": "101",
            "bed": "1",
            "patient_class": "I",
            "message_id": "599102",
            "admitted_at": "2005-01-10T04:55:02+07:00",  # PV1-44
        },
    ),
    "ADT04-251.hl7": None,  # A04 (outpatient registration): AA, nothing consumes it
    "SIU-S12-01.hl7": (
        "careflow.scheduling",
        "Appointment.Booked",
        # SCH-2 filler id; 2.8: TQ1-7 start (SCH-11 is withdrawn); an AIS: a procedure
        {
            "appointment_id": "36996",
            "appointment_type": "procedure",
            "scheduled_start": "2021-09-24T09:30:00+02:15",
        },
    ),
    "SIU-S13-01.hl7": (
        "careflow.scheduling",
        "Appointment.Rescheduled",
        {"appointment_id": "36996", "scheduled_start": "2021-09-24T09:30:00+02:15"},
    ),
    # alone (no start known before it), an S14 says where the appointment is now
    "SIU-S14-01.hl7": (
        "careflow.scheduling",
        "Appointment.Rescheduled",
        {"appointment_id": "36996", "scheduled_start": "2021-09-24T09:30:00+02:15"},
    ),
    "SIU-S15-01.hl7": (
        "careflow.scheduling",
        "Appointment.Cancelled",
        {"appointment_id": "36996", "reason_code": "other"},
    ),
}

SCHEMAS = {
    **EVENT_SCHEMAS,
    "Appointment.Booked": readiness.AppointmentBooked,
    "Appointment.Rescheduled": readiness.AppointmentRescheduled,
    "Appointment.Cancelled": readiness.AppointmentCancelled,
}

# PHI in the fixtures: names, SSNs, addresses, phones, birth dates, next of kin
PHI = [
    "EVERYMAN", "Aniston", "ADAM", "SMITH^Angela", "Angela", "123456789", "Hospital Lane",
    "Ann Arbor", "GREENSBORO", "Duck ST", "DUCK", "DONALD", "HUEY", "123121234", "8885551212",
    "111 DUCK", "Doe^Jane", "JOHNSON", "724-0433", "19241012", "198808181126", "19780101",
    "MADISON", "RADIANT", "425-57-9745", "Jane",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _facilities(tmp_path, monkeypatch):
    path = tmp_path / "facilities.json"
    path.write_text(
        json.dumps(
            [
                {
                    "id": "fac-north",
                    "name": "North Valley Medical Center",
                    "time_zone": "America/Chicago",
                    "hl7_names": ["GHHSFacility", "1", "RDX"],
                }
            ]
        )
    )
    monkeypatch.setenv("CAREFLOW_FACILITIES_FILE", str(path))


def test_every_fixture_is_expected():
    assert sorted(p.name for p in FIXTURES.glob("*.hl7")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_maps_to_its_event_without_phi(name):
    store, publisher = InMemoryStateStore(), FakePublisher()
    raw = (FIXTURES / name).read_bytes()
    control_id = re.search(rb"MSH\|[^\n]*", raw).group(0).split(b"|")[9].decode()

    receipt = receive(raw, now=NOW, store=store, publisher=publisher)

    assert receipt.code == "AA", receipt.reason
    assert f"MSA|AA|{control_id}" in receipt.ack
    assert not receipt.parked
    expected = EXPECTED[name]
    if expected is None:
        assert publisher.events == []
    else:
        source, detail_type, data = expected
        assert [(s, d) for s, d, _ in publisher.events] == [(source, detail_type)]
        detail = publisher.events[0][2]
        assert detail["data"] == data
        assert detail["metadata"]["facility_id"] == "fac-north"
        parsed = parse_event(
            {"source": source, "detail-type": detail_type, "detail": detail}, schemas=SCHEMAS
        )
        assert parsed.metadata.facility_id == "fac-north"
    kept = [
        publisher.events,
        receipt.ack,
        receipt.reason,
        [p.model_dump(mode="json") for p in store.parked],
        [s.model_dump(mode="json") for s in store.subjects.values()],
        store.answers,
    ]
    everything = json.dumps(kept)
    for value in PHI:
        assert value not in everything, f"{value!r} from {name} leaked"


def test_s14_that_did_not_move_the_start_publishes_nothing():
    store, publisher = InMemoryStateStore(), FakePublisher()
    for name in ("SIU-S12-01.hl7", "SIU-S14-01.hl7"):
        receipt = receive((FIXTURES / name).read_bytes(), now=NOW, store=store, publisher=publisher)
        assert receipt.code == "AA"
    assert publisher.types() == ["Appointment.Booked"]


def test_unknown_facility_is_acked_and_parked(monkeypatch, tmp_path):
    path = tmp_path / "none.json"
    path.write_text(json.dumps([{"id": "fac-x", "name": "X", "time_zone": "UTC"}]))
    monkeypatch.setenv("CAREFLOW_FACILITIES_FILE", str(path))
    store, publisher = InMemoryStateStore(), FakePublisher()
    raw = (FIXTURES / "ADT-A01-01.hl7").read_bytes()

    receipt = receive(raw, now=NOW, store=store, publisher=publisher)

    assert receipt.code == "AA" and receipt.parked
    assert publisher.events == []
    [parked] = store.parked
    assert "unknown facility" in parked.reason and "MSG00001" in parked.reason


def test_a_parked_message_goes_through_when_resent_after_the_facility_is_registered(
    monkeypatch, tmp_path
):
    unknown = tmp_path / "none.json"
    unknown.write_text(json.dumps([{"id": "fac-x", "name": "X", "time_zone": "UTC"}]))
    known = os.environ["CAREFLOW_FACILITIES_FILE"]
    monkeypatch.setenv("CAREFLOW_FACILITIES_FILE", str(unknown))
    store, publisher = InMemoryStateStore(), FakePublisher()
    raw = (FIXTURES / "ADT-A16-01.hl7").read_bytes()
    assert receive(raw, now=NOW, store=store, publisher=publisher).parked

    monkeypatch.setenv("CAREFLOW_FACILITIES_FILE", known)
    again = receive(raw, now=NOW, store=store, publisher=publisher)

    assert again.code == "AA" and not again.duplicate
    assert publisher.types() == ["Encounter.DischargePending"]


def test_out_of_order_messages_are_published_as_they_come_with_their_times():
    store, publisher = InMemoryStateStore(), FakePublisher()
    # the fixtures share MSH-10 MSG00001; a real feed numbers each message
    for n, name in enumerate(("ADT-A03-01.hl7", "ADT-A16-01.hl7", "ADT-A13-01.hl7")):
        raw = (FIXTURES / name).read_bytes().replace(b"|MSG00001|", f"|OOO{n}|".encode())
        assert receive(raw, now=NOW, store=store, publisher=publisher).code == "AA"
    assert publisher.types() == [
        "Encounter.Discharged",
        "Encounter.DischargePending",
        "Encounter.DischargeCancelled",
    ]
    for _, _, detail in publisher.events:
        assert detail["metadata"]["occurred_at"] == "2021-08-17T15:19:43.400000+02:00"  # EVN-6
    assert [d["data"]["message_id"] for _, _, d in publisher.events] == ["OOO0", "OOO1", "OOO2"]
