"""The MLLP listener over real TCP: AA with MSH-10, AR/AE with ERR, a repeat processed
once, and the listener serving on after garbage, oversize frames and a peer that
disconnects mid-frame."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime

import pytest

from careflow.adapters.hl7v2 import receive
from careflow.adapters.hl7v2.mllp import END, START, MllpServer, frame, send
from tests.fakes import FakePublisher, InMemoryStateStore

A01 = (
    "MSH|^~\\&|ADT|GHHSFacility|CF|CF|20261130080000||ADT^A01^ADT_A01|{id}|P|2.5.1\r"
    "PID|1||MRN1^^^HOSP^MR||PATIENT^PAULA\r"
    "PV1|1|I|4W^401^A||||||||||||||||V100|||||||||||||||||||||||||20261130075500\r"
)


@pytest.fixture
def listener(tmp_path, monkeypatch):
    path = tmp_path / "facilities.json"
    path.write_text(
        json.dumps(
            [{"id": "fac-north", "name": "N", "time_zone": "UTC", "hl7_names": ["GHHSFacility"]}]
        )
    )
    monkeypatch.setenv("CAREFLOW_FACILITIES_FILE", str(path))
    store, publisher = InMemoryStateStore(), FakePublisher()

    def handle(raw: bytes) -> str:
        return receive(raw, now=datetime.now(UTC), store=store, publisher=publisher).ack

    with MllpServer(0, handle, max_frame=4096, idle_timeout=5) as server:
        yield server, publisher


def _msa(ack: str) -> list[str]:
    return next(s for s in ack.split("\r") if s.startswith("MSA")).split("|")


def test_messages_on_one_connection_each_get_their_ack(listener):
    server, publisher = listener
    acks = send("127.0.0.1", server.port, [A01.format(id="M1"), A01.format(id="M2")])
    assert [_msa(a)[1:3] for a in acks] == [["AA", "M1"], ["AA", "M2"]]
    assert publisher.types() == ["Encounter.Admitted", "Encounter.Admitted"]


def test_unparseable_gets_ar_with_err_and_the_listener_serves_on(listener):
    server, _publisher = listener
    [bad, good] = send("127.0.0.1", server.port, ["PID|1||X", A01.format(id="M3")])
    assert _msa(bad)[1] == "AR" and "\rERR|" in bad
    assert _msa(good)[1:3] == ["AA", "M3"]
    [unknown] = send("127.0.0.1", server.port, [A01.format(id="M4").replace("A01^ADT_A01", "A99")])
    assert _msa(unknown)[1:3] == ["AR", "M4"]


def test_a_repeated_control_id_is_published_once(listener):
    server, publisher = listener
    acks = send("127.0.0.1", server.port, [A01.format(id="M5")] * 2)
    acks += send("127.0.0.1", server.port, [A01.format(id="M5")])
    assert [_msa(a)[1:3] for a in acks] == [["AA", "M5"]] * 3
    assert publisher.types() == ["Encounter.Admitted"]


def test_garbage_oversize_and_half_closed_peers_do_not_stop_it(listener):
    server, publisher = listener
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"noise\r\n" + START + b"MSH|^~\\&|partial")  # then gone mid-frame
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"garbage" + START + b"X" * 5000 + END + frame(A01.format(id="M6")))
        data = b""
        while data.count(END) < 2:
            data += sock.recv(65536)
    first, second = (f.lstrip(START).decode() for f in data.split(END)[:2])
    assert _msa(first)[1] == "AR" and _msa(second)[1:3] == ["AA", "M6"]
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(START + b"MSH|^~\\&|")
        sock.shutdown(socket.SHUT_WR)  # half-closed
        assert sock.recv(100) == b""
    latin1 = A01.format(id="M7").replace("PATIENT^PAULA", "MÜLLER^JOSÉ").encode("latin-1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(START + latin1 + END)
        ack = sock.recv(65536)
    assert _msa(ack.strip(START + END).decode())[1:3] == ["AA", "M7"]
    assert send("127.0.0.1", server.port, [A01.format(id="M8")])
    assert publisher.types().count("Encounter.Admitted") == 3


def test_the_service_entry_point_serves_the_wired_store_and_bus_and_stops(tmp_path, monkeypatch):
    """What the Fargate task runs (python -m careflow.adapters.hl7v2.mllp_service)."""
    import threading

    from careflow import wiring
    from careflow.adapters.hl7v2 import mllp_service
    from careflow.localcloud.cloud import free_port

    path = tmp_path / "facilities.json"
    path.write_text(
        json.dumps(
            [{"id": "fac-north", "name": "N", "time_zone": "UTC", "hl7_names": ["GHHSFacility"]}]
        )
    )
    monkeypatch.setenv("CAREFLOW_FACILITIES_FILE", str(path))
    store, publisher = InMemoryStateStore(), FakePublisher()
    monkeypatch.setattr(wiring, "store", lambda: store)
    monkeypatch.setattr(wiring, "publisher", lambda: publisher)
    port = free_port()
    monkeypatch.setenv("MLLP_HOST", "127.0.0.1")
    monkeypatch.setenv("MLLP_PORT", str(port))
    stop = threading.Event()
    served = threading.Thread(target=mllp_service.main, args=(stop,), daemon=True)
    served.start()
    try:
        for _ in range(100):  # until it binds
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()  # a health check
                break
            except OSError:
                stop.wait(0.05)
        [ack] = send("127.0.0.1", port, [A01.format(id="SVC1")])
    finally:
        stop.set()
        served.join(timeout=5)
    assert _msa(ack)[1:3] == ["AA", "SVC1"]
    assert publisher.types() == ["Encounter.Admitted"]
    assert not served.is_alive()
