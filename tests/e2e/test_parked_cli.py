"""`careflow parked list|show|redrive` against a running local cloud: the records an
operator reads, and a redrive of an event still wrong, which is parked again."""

from __future__ import annotations

import json
import uuid
from typing import Any

from careflow import cli, wiring
from careflow.domain.records import ParkedEvent


def _parked(cloud: Any, event_id: str, status: str = "PARKED") -> ParkedEvent:
    store = wiring.store()

    def found() -> ParkedEvent | None:
        record = store.get_parked(event_id)
        return record if record is not None and record.status == status else None

    parked: ParkedEvent = cloud.wait_for(found, 20, f"{status} record of {event_id}")
    return parked


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_show_and_redrive_of_an_event_still_wrong(cloud, capsys):
    port = str(cloud.port)
    event_id = f"evt-{uuid.uuid4().hex[:12]}"
    cloud.put_event(
        "careflow.scheduling",
        "Appointment.Booked",
        data={
            "appointment_id": "appt-parked-1",
            "appointment_type": "procedure",
            "scheduled_start": "2026-12-20T08:00:00+00:00",
            "patient_name": "Jane Doe",  # a field no contract names: refused, never echoed
        },
        facility_id="fac-north",
        event_id=event_id,
    )
    first = _parked(cloud, event_id)
    assert "patient_name" in first.reason or "unknown field" in first.reason

    code, out, err = _run(capsys, "parked", "list", "--json", "--port", port)
    assert (code, err) == (0, "")
    rows = {row["event_id"]: row for row in json.loads(out)}
    assert rows[event_id]["status"] == "PARKED" and rows[event_id]["kind"] == "parked"
    assert "Jane Doe" not in out

    code, out, err = _run(capsys, "--port", port, "parked", "list")
    assert code == 0 and event_id in out and "Jane Doe" not in out

    code, out, _ = _run(capsys, "parked", "show", event_id, "--port", port)
    assert code == 0 and json.loads(out)["reason"] == first.reason

    code, out, err = _run(capsys, "parked", "redrive", event_id, "--port", port)
    assert code == 0 and "back on the bus" in out, err
    again = _parked(cloud, event_id)  # routed again, refused again, parked anew
    assert again.reason == first.reason and again.parked_at >= first.parked_at

    code, _, err = _run(capsys, "parked", "show", "evt-nothing-here", "--port", port)
    assert (
        code == 2 and err.strip() == "careflow parked: no parked or unrouted event evt-nothing-here"
    )
