"""What a workflow package gives ``make bench``: one case, and the outside world it needs.

A workflow's spec names it (``Workflow.bench``, ``"<module>:<name>"``): a callable
``case(cloud, key)`` that readies the sandboxes if the case needs it (an invoice in the
ERP, a payer rule) and returns the intake rule's target input for one start event,
``{"workflow_id": ..., "event": {...}}``, as :func:`start_target` builds it. ``key`` is
unique per execution (the event's id and idempotency key); ``cloud`` is the
:class:`careflow.localcloud.cloud.LocalCloud` the bench runs on (its clock gives the time).

A case that ends by itself (no person, no event after the start, no timer longer than a
moment) needs nothing more: the bench starts many of them at once and only waits.

A case that waits for the outside world (a person's decision on a human task, a later
event such as the patient's departure) also has a driver: a ``drive(cloud, key,
instance_id) -> None`` in the same module (:func:`load_driver` finds it; the spec names
only the case). The bench calls it once per execution, after the start, in a small pool
of worker threads (:data:`DRIVER_THREADS` at a time), and it does what the people and
systems would: it waits for what the execution must have reached (a task open, a
milestone), then decides, claims or puts the event, and returns once the execution has
ended. ``instance_id`` is the execution's
(:func:`careflow.domain.intake.instance_id_for` of the workflow and ``key``). A driver's
waits are polls with short sleeps and a timeout (:func:`poll`), never a bare wait: a
driver that cannot finish raises, and the bench reports the case as not run. Timers that
stand between the driver and the end (a poll for a departure) pass on the local cloud's
virtual clock (:func:`pass_timers`): on stock moto, whose timers run in real time and are
not on that clock, nothing passes them, and the case is reported ``stock=unsupported``.

The bench's seconds for a workflow with a driver include the drivers' work (their polls,
the decisions and events they send), as a deployment's would include its people and
systems answering at once.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

BenchCase = Callable[[Any, str], dict[str, Any]]
BenchDriver = Callable[[Any, str, str], None]

DRIVER_THREADS = 8  # drivers at work at once: their polls compete with the executions
DRIVE_TIMEOUT_SECONDS = 60.0  # a driver's wait for one thing; then it gives up (raises)
DRIVE_POLL_SECONDS = 0.05  # between a driver's looks

T = TypeVar("T")

# Set by the bench when it stops waiting for a run (its executions ended, or it gave up on
# them): every driver's poll gives up at once rather than at its timeout.
STOP = threading.Event()


class DriverStopped(TimeoutError):
    """The bench stopped waiting while a driver still waited."""


def start_target(
    workflow_id: str,
    source: str,
    detail_type: str,
    *,
    facility_id: str,
    key: str,
    now: datetime,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """The intake rule's target input for one start event (envelope metadata from ``key``)."""
    return {
        "workflow_id": workflow_id,
        "event": {
            "source": source,
            "detail-type": detail_type,
            "detail": {
                "metadata": {
                    "event_id": key,
                    "idempotency_key": key,
                    "facility_id": facility_id,
                    "occurred_at": now.isoformat(),
                    "schema_version": "1.0",
                    "correlation_id": key,
                },
                "data": dict(data),
            },
        },
    }


def poll(
    check: Callable[[], T | None],
    what: str,
    *,
    timeout: float = DRIVE_TIMEOUT_SECONDS,
    pause: float = DRIVE_POLL_SECONDS,
) -> T:
    """``check()``'s first answer that is not None (nor False), looked for every ``pause``
    seconds; ``TimeoutError`` naming ``what`` after ``timeout`` seconds, or at once
    (:class:`DriverStopped`) when the bench has stopped waiting (:data:`STOP`)."""
    deadline = time.monotonic() + timeout
    while True:
        if STOP.is_set():
            raise DriverStopped(f"its driver was waiting for {what}")
        found = check()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"driver: {what} not seen after {timeout:.0f} s")
        time.sleep(pause)


def running(cloud: Any, workflow_id: str, instance_id: str) -> bool:
    """Whether the instance's execution is still running."""
    arn = cloud.execution_arn(instance_id, workflow_id)
    return bool(cloud.describe(arn)["status"] == "RUNNING")


def pass_timers(cloud: Any, at_most: timedelta) -> bool:
    """Moves the cloud's clock to the soonest timer pending on it, if that one ends within
    ``at_most`` (a poll's wait; not an SLA's): True if it moved. Nothing moves on stock
    moto, whose timers run in real time off the clock."""
    now = cloud.clock.now()
    soonest = next(iter(cloud.clock.pending_deadlines()), None)
    if soonest is None or soonest - now > at_most:
        return False
    if soonest > now:
        cloud.clock.advance(soonest - now)
    return True


def load(reference: str) -> BenchCase:
    """The callable a spec's ``bench`` names (``"<module>:<name>"``)."""
    module, name = reference.split(":")
    case: BenchCase = getattr(importlib.import_module(module), name)
    return case


def load_driver(reference: str) -> BenchDriver | None:
    """The ``drive`` of the module a spec's ``bench`` names, None if it has none."""
    module, _ = reference.split(":")
    driver: BenchDriver | None = getattr(importlib.import_module(module), "drive", None)
    return driver


def load_waiting(reference: str) -> BenchCase | None:
    """The ``waiting`` of the module a spec's ``bench`` names, None if it has none: a case
    like the bench's (``waiting(cloud, key)`` -> the intake target of one start event)
    whose instance stops at a human task and stays there, since nobody drives it.
    ``careflow up --seed-demo`` starts a few of each, so that the operations page has work
    waiting in the workflow's queues (:func:`careflow.localcloud.demo.seed_open_work`)."""
    module, _ = reference.split(":")
    waiting: BenchCase | None = getattr(importlib.import_module(module), "waiting", None)
    return waiting


def subject_number(key: str) -> int:
    """A nine-digit number from ``key`` (stable, 900000000 and up: clear of the seeds'), for
    a ``waiting`` case's own subject ids; the sandboxes read a patient's and a coverage's
    numbers off an id's last part (``appt-<n>``, ``case-<n>``)."""
    import zlib

    return 900_000_000 + zlib.crc32(key.encode()) % 100_000_000
