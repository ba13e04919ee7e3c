"""``make bench``'s case (careflow.kit.bench): the all-clear appointment appt-1001, 11 Lambda
tasks, a Parallel of five and one putEvents; it ends READY at once.

``waiting``: a knee replacement of its own, booked in ten days, whose instrument tray
sterile processing cannot find: at risk, a care coordinator's task (``care_coordinator``)
that nobody decides."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from careflow.kit.bench import start_target, subject_number

CASE = "appt-1001"
LOST_TRAY = "TRAY-LOST-9"  # a tray sterile processing does not know: reported missing


def _booked(key: str, appointment_id: str, start: datetime, now: datetime) -> dict[str, Any]:
    return start_target(
        "surgical-case-readiness",
        "careflow.scheduling",
        "Appointment.Booked",
        facility_id="fac-north",
        key=key,
        now=now,
        data={
            "appointment_id": appointment_id,
            "appointment_type": "procedure",
            "scheduled_start": start.isoformat(),
        },
    )


def case(cloud: Any, key: str) -> dict[str, Any]:
    now = cloud.clock.now()
    return _booked(key, CASE, now, now)


def waiting(cloud: Any, key: str) -> dict[str, Any]:
    """A case of its own (its appointment number from ``key``) in every sandbox."""
    from dataclasses import replace

    from careflow.adapters.sandbox import DEMO_CASES

    number = subject_number(key)
    knee = next(c for c in DEMO_CASES if c.appointment_id == CASE)  # the all-clear knee
    seed = replace(knee, appointment_id=f"appt-{number}", trays=(LOST_TRAY,))
    booked = cloud.add_case(seed)
    return _booked(key, booked.appointment_id, booked.scheduled_start, cloud.clock.now())
