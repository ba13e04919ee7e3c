"""HL7 v2 receive: each refusal with its ACK code, ERR and reason; idempotency on MSH-10;
Latin-1 bytes; the ACK's header rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from careflow.adapters.hl7v2 import Refused, parse, receive
from careflow.adapters.hl7v2.parse import decode, parse_time
from tests.fakes import FakePublisher, InMemoryStateStore

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
A01 = (
    "MSH|^~\\&|ADT|GHHSFacility|CF|CF|20261130080000||ADT^A01^ADT_A01|CTRL1|P|2.5.1\r"
    "EVN|A01|20261130080000\r"
    "PID|1||MRN1^^^HOSP^MR~999-88-7777^^^SSA^SS||PATIENT^PAULA||19800101|F|||1 Main St^^Town\r"
    "PV1|1|I|4W^401^A^GHHSFacility||||||||||||||||V100|||||||||||||||||||||||||20261130075500\r"
)


@pytest.fixture(autouse=True)
def _facilities(tmp_path, monkeypatch):
    path = tmp_path / "facilities.json"
    path.write_text(
        json.dumps(
            [
                {
                    "id": "fac-north",
                    "name": "North",
                    "time_zone": "America/Chicago",
                    "hl7_names": ["GHHSFacility"],
                }
            ]
        )
    )
    monkeypatch.setenv("CAREFLOW_FACILITIES_FILE", str(path))


def _receive(raw, store=None, publisher=None):
    store = store or InMemoryStateStore()
    publisher = publisher or FakePublisher()
    return receive(raw, now=NOW, store=store, publisher=publisher), store, publisher


def _segments(ack: str) -> dict[str, list[str]]:
    return {s.split("|")[0]: s.split("|") for s in ack.split("\r") if s}


def test_a01_is_acked_aa_with_its_control_id_and_published():
    receipt, _store, publisher = _receive(A01)
    ack = _segments(receipt.ack)
    assert ack["MSA"][1:3] == ["AA", "CTRL1"]
    assert ack["MSH"][8] == "ACK^A01^ACK" and ack["MSH"][11] == "2.5.1"
    assert ack["MSH"][9] != "CTRL1"  # a fresh control id
    assert publisher.types() == ["Encounter.Admitted"]
    data = publisher.events[0][2]["data"]
    # no offset: the facility's zone (America/Chicago, CST in November)
    assert data["admitted_at"] == "2026-11-30T07:55:00-06:00"
    assert data["patient_id"] == "MRN1" and data["patient_id_authority"] == "HOSP"
    blob = json.dumps(publisher.events) + receipt.ack
    for phi in ("PATIENT", "PAULA", "999-88-7777", "19800101", "Main St"):
        assert phi not in blob


def test_a_repeated_control_id_is_acked_and_not_published_again():
    store, publisher = InMemoryStateStore(), FakePublisher()
    first, _, _ = _receive(A01, store, publisher)
    again, _, _ = _receive(A01, store, publisher)
    assert first.code == again.code == "AA"
    assert again.duplicate and "MSA|AA|CTRL1" in again.ack
    assert publisher.types() == ["Encounter.Admitted"]


@pytest.mark.parametrize(
    ("raw", "code", "reason", "err"),
    [
        ("PID|1||MRN1^^^HOSP^MR\r", "AR", "no MSH segment", "100"),
        ("MSH|^~\\&\r", "AR", "unsupported message type", "200"),
        ("MSHx^~\\&|A|B\r", "AR", "not valid encoding characters", "102"),
        (A01.replace("|2.5.1", "|2.2"), "AR", "unsupported HL7 version in MSH-12", "203"),
        (A01.replace("ADT^A01^ADT_A01", "ADT^A99"), "AR", "unsupported message type", "201"),
        (A01.replace("ADT^A01^ADT_A01", "ORU^R01"), "AR", "unsupported message type", "200"),
        (A01.replace("|CTRL1|", "||"), "AR", "no message control id in MSH-10", "101"),
        (
            A01.replace("MRN1^^^HOSP^MR~999-88-7777^^^SSA^SS", "999-88-7777^^^SSA^SS"),
            "AE",
            "no patient identifier in PID-3",
            "101",
        ),
    ],
)
def test_refusals_answer_with_err_and_a_reason_and_are_parked(raw, code, reason, err):
    receipt, store, publisher = _receive(raw)
    assert receipt.code == code and reason in receipt.reason
    ack = _segments(receipt.ack)
    assert ack["MSA"][1] == code
    assert "ERR" in ack and err in receipt.ack
    assert publisher.events == []
    [parked] = store.parked
    assert reason in parked.reason and parked.source == "hl7v2"
    assert "999-88-7777" not in receipt.ack + parked.model_dump_json()


def test_refused_version_is_reported_in_an_err_the_version_understands():
    receipt, _, _ = _receive(A01.replace("|2.5.1", "|2.2"))
    assert "MSA|AR|CTRL1" in receipt.ack
    assert _segments(receipt.ack)["MSH"][11] == "2.2"  # echoed


def test_a_store_that_cannot_write_answers_ae():
    class Broken(InMemoryStateStore):
        def claim_subject(self, record):
            raise ConnectionError("down")

    receipt, _, publisher = _receive(A01, Broken())
    assert receipt.code == "AE" and "could not be stored" in receipt.reason
    assert publisher.events == []


def test_a_message_without_a_visit_number_is_acked_and_parked():
    raw = A01.replace("|V100|", "||")
    receipt, store, publisher = _receive(raw)
    assert receipt.code == "AA" and receipt.parked
    assert "PV1-19" in store.parked[0].reason
    assert publisher.events == []


def test_latin1_bytes_are_read_per_msh18_or_as_latin1():
    raw = A01.replace("PATIENT^PAULA", "MÜLLER^JOSÉ").encode("latin-1")
    message = parse(raw)
    assert message.patient_id == "MRN1"
    assert "MÜLLER" in decode(raw)


def test_segments_split_on_lf_and_crlf():
    assert parse(A01.replace("\r", "\n")).visit_number == "V100"
    assert parse(A01.replace("\r", "\r\n")).visit_number == "V100"


def test_hl7_times():
    assert parse_time("20261130") == datetime(2026, 11, 30)
    assert parse_time("202611300815+0100").utcoffset().total_seconds() == 3600
    assert parse_time("20261130081500.1234-0500").microsecond == 123400
    assert parse_time("not a time") is None and parse_time("") is None


def test_refused_carries_no_value():
    with pytest.raises(Refused) as info:
        parse(A01.replace("MRN1^^^HOSP^MR~", ""))
    assert "SSA" not in info.value.reason and "999" not in info.value.reason


def test_a_bus_that_cannot_take_the_events_answers_ae_and_the_resend_publishes():
    class Down(FakePublisher):
        def publish(self, source, detail_type, detail):
            raise ConnectionError("bus down")

    store = InMemoryStateStore()
    first, _, _ = _receive(A01, store, Down())
    assert first.code == "AE" and "send it again" in first.reason
    resent, _, publisher = _receive(A01, store, FakePublisher())
    assert resent.code == "AA" and not resent.duplicate
    assert publisher.types() == ["Encounter.Admitted"]
