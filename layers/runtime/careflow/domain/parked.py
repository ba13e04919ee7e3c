"""Parked and unrouted events: list them, show one, put one back on the bus (redrive).

The table keeps the identifier-only record (``PARKED#<event_id>``); the parking queue keeps
the whole event. A redrive takes the event from the queue, marks the record ``REDRIVEN``
(conditionally: two redrives race, one wins) and puts the event back on the bus as it
came, where the rules route it again. An event still invalid is parked again by intake,
with the new reason (the record is ``PARKED`` anew); a valid one starts its workflow once
(intake's idempotency key and the subject record still apply).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from careflow.domain.records import ParkedEvent
from careflow.ports import AlreadyRedriven, EventPublisher, ParkingLot, StateStore


class RedriveError(Exception):
    """The event cannot be redriven; the message says why in one line."""


def listing(store: StateStore) -> Sequence[ParkedEvent]:
    """Every parked and unrouted record, oldest first."""
    return sorted(store.parked_events(), key=lambda p: (p.parked_at, p.event_id))


def show(store: StateStore, event_id: str) -> ParkedEvent:
    parked = store.get_parked(event_id)
    if parked is None:
        raise RedriveError(f"no parked or unrouted event {event_id}")
    return parked


def _event_of(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    event = body.get("event")
    if (
        isinstance(event, Mapping)
        and isinstance(event.get("source"), str)
        and isinstance(event.get("detail-type"), str)
        and "detail" in event
    ):
        return event
    return None


def redrive(
    event_id: str,
    *,
    store: StateStore,
    parking: ParkingLot,
    publisher: EventPublisher,
    now: datetime,
) -> ParkedEvent:
    """Puts the parked event back on the bus; returns its record, now ``REDRIVEN``."""
    parked = show(store, event_id)
    if parked.status != "PARKED":
        raise RedriveError(
            f"event {event_id} was redriven already and not parked again since: nothing to redrive"
        )
    bodies = parking.take(event_id)
    if not bodies:
        raise RedriveError(
            f"the parking queue no longer holds event {event_id}: it was deleted or "
            "redriven by hand"
        )
    event = _event_of(bodies[0])

    def put_back() -> None:
        for body in bodies:
            parking.park(body, parked.reason, event_id=event_id)

    if event is None:
        put_back()
        raise RedriveError(
            f"event {event_id} is not an EventBridge event (no source, detail-type or "
            "detail): it cannot go back on the bus"
        )
    try:
        marked = store.mark_redriven(event_id, now)
    except AlreadyRedriven:
        put_back()
        raise RedriveError(f"event {event_id} is being redriven by someone else") from None
    try:
        # The same event parked twice (a redelivery) goes back once.
        publisher.publish(str(event["source"]), str(event["detail-type"]), event["detail"])
    except Exception:
        put_back()
        raise
    return marked
