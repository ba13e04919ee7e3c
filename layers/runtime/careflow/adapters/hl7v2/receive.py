"""One inbound HL7 v2 message: parse, record, ACK, publish (no boto3: ports only).

- Unparseable (no MSH, bad encoding characters, unsupported version or trigger, no PID-3
  on an ADT): AR or AE with an ERR segment and the reason; a parked record keeps the
  message's ids and the reason (``careflow parked list``), never its content.
- Parseable: an idempotency record keyed by sending facility + MSH-10 is written first
  (a failure to write it is AE: the sender resends); then the events are published and
  the answer is AA with MSA-2 = MSH-10. A repeated MSH-10 is AA and publishes nothing.
- Parsed but unmappable (unknown facility, no PV1-19...): AA (AE would only stall the
  sender's queue behind a message a resend does not fix) and parked with the reason; once
  the cause is fixed (the facility registered), a resend of the same MSH-10 is processed.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from careflow.adapters.hl7v2.ack import AckCode, build_ack
from careflow.adapters.hl7v2.mapping import Mapped, Unmappable, facility_of, map_message
from careflow.adapters.hl7v2.parse import Header, Hl7Message, Refused, parse
from careflow.domain.records import ParkedEvent, SubjectRecord
from careflow.events.envelope import envelope
from careflow.facilities import facility
from careflow.ports import EventPublisher, StateStore

log = logging.getLogger(__name__)

# The idempotency record is a subject record of this pseudo-workflow (first writer wins):
# subject = MSH-10, facility = the sending facility (MSH-4.1) as the sender names it.
IDEMPOTENCY_WORKFLOW = "hl7v2-inbound"
PUBLISHED = "published"
PARKED_SOURCE = "hl7v2"


@dataclass(frozen=True)
class Receipt:
    """What happened to one message; ``ack`` is the ER7 answer to send back."""

    ack: str
    code: AckCode
    control_id: str
    reason: str = ""
    published: list[str] = field(default_factory=list)  # detail-types
    duplicate: bool = False
    parked: bool = False


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def receive(
    raw: bytes | str,
    *,
    now: datetime,
    store: StateStore,
    publisher: EventPublisher,
    facilities: frozenset[str] | None = None,
) -> Receipt:
    """``facilities``: the careflow facilities the sender may send for (an API caller's
    token); a message for another is AA and parked, like one for an unknown facility."""
    try:
        message = parse(raw)
    except Refused as refused:
        return _refuse(refused, now=now, store=store)
    header = message.header
    key = f"{header.sending_facility}#{header.control_id}"
    claim = SubjectRecord(
        workflow_id=IDEMPOTENCY_WORKFLOW,
        facility_id=header.sending_facility or "-",
        subject_id=header.control_id,
        instance_id=None,
        event_id=uuid.uuid4().hex,
        at=now,
    )
    try:
        held = store.claim_subject(claim)
    except Exception:
        log.exception("hl7v2: the idempotency record could not be written (MSH-10 %s)", key)
        reason = "the message could not be stored: send it again"
        return _answer(header, "AE", now=now, reason=reason, hl7_error="207")
    if held.event_id != claim.event_id and held.instance_id == PUBLISHED:
        log.info("hl7v2: repeated MSH-10 %s: acknowledged, not processed again", key)
        return Receipt(
            ack=build_ack(header, "AA", now=now),
            code="AA",
            control_id=header.control_id,
            duplicate=True,
        )
    # First time, or a first time that stopped before publishing: (re)publish. Event ids
    # are derived from the sender and MSH-10, so intake drops a second copy.
    try:
        previous = _previous_start(message, store)
        facility, events = map_message(message, now=now, previous_start=previous)
        if facilities is not None and facility.id not in facilities:
            raise Unmappable(
                "the sender may not send for the message's facility", facility_id=facility.id
            )
    except Unmappable as unmappable:
        # not marked: once the cause is fixed (the facility registered), a resend goes through
        _park(header, unmappable.reason, now=now, store=store, facility_id=unmappable.facility_id)
        return Receipt(
            ack=build_ack(header, "AA", now=now),
            code="AA",
            control_id=header.control_id,
            reason=unmappable.reason,
            parked=True,
        )
    try:
        for index, event in enumerate(events):
            publisher.publish(
                event.source, event.detail_type, _detail(header, facility.id, event, index)
            )
    except Exception:
        # not marked published: the resend publishes again (same event ids: intake drops
        # what it already has)
        log.exception("hl7v2: the events of MSH-10 %s could not be published", key)
        reason = "the message could not be passed on: send it again"
        return _answer(header, "AE", now=now, reason=reason, hl7_error="207")
    _remember_start(message, facility.id, store, now)  # after: a resent S14 compares anew
    _mark(store, held)
    log.info(
        "hl7v2: %s MSH-10 %s from %s: %d event(s)",
        message.kind,
        header.control_id,
        header.sending_facility,
        len(events),
    )
    return Receipt(
        ack=build_ack(header, "AA", now=now),
        code="AA",
        control_id=header.control_id,
        published=[e.detail_type for e in events],
    )


def _mark(store: StateStore, held: SubjectRecord) -> None:
    current = store.get_subject(held.workflow_id, held.facility_id, held.subject_id) or held
    if current.instance_id != PUBLISHED:
        store.update_subject(current.model_copy(update={"instance_id": PUBLISHED}))


def _detail(header: Header, facility_id: str, event: Mapped, index: int) -> dict[str, Any]:
    key = f"hl7v2:{_digest(header.sending_facility, header.control_id)}"
    return envelope(
        event_id=f"hl7v2-{_digest(header.sending_facility, header.control_id, str(index))}",
        idempotency_key=f"{key}:{index}",
        facility_id=facility_id,
        occurred_at=event.occurred_at,
        correlation_id=key,
        data=event.data.model_dump(mode="json", exclude_none=True),
    )


def _start_key(message: Hl7Message, facility_id: str) -> str | None:
    appointment = message.filler_appointment_id or message.placer_appointment_id
    if message.header.message_type != "SIU" or not appointment:
        return None
    return f"hl7v2-start#{facility_id}#{appointment}"


def _previous_start(message: Hl7Message, store: StateStore) -> datetime | None:
    if message.header.trigger != "S14":
        return None
    try:
        key = _start_key(message, facility_of(message).id)
    except Unmappable:
        return None
    if key is None:
        return None
    answer = store.take_early_answer(key)
    if not answer:
        return None
    store.put_early_answer(key, answer, datetime.fromisoformat(str(answer["at"])))
    return datetime.fromisoformat(str(answer["start"]))


def _remember_start(
    message: Hl7Message, facility_id: str, store: StateStore, now: datetime
) -> None:
    key = _start_key(message, facility_id)
    if key is None or message.appointment_start is None:
        return
    start = message.appointment_start
    if start.tzinfo is None:
        found = facility(facility_id)
        if found is not None:
            start = start.replace(tzinfo=found.zone)
    store.take_early_answer(key)
    store.put_early_answer(key, {"start": start.isoformat(), "at": now.isoformat()}, now)


def _id_only(value: str) -> str:
    return value if re.fullmatch(r"[A-Za-z0-9 ._:#/-]{1,64}", value) else ""


def _park(
    header: Header | None,
    reason: str,
    *,
    now: datetime,
    store: StateStore,
    facility_id: str | None = None,
) -> None:
    # ids as the sender wrote them, kept only if they look like ids (the record is listed)
    sender = _id_only(header.sending_facility) if header else ""
    control = _id_only(header.control_id) if header else ""
    event_id = f"hl7v2-{_digest(sender, control) if control else uuid.uuid4().hex}"
    kind = f"{header.message_type}^{header.trigger}" if header and header.message_type else "?"
    try:
        store.park_event(
            ParkedEvent(
                event_id=event_id,
                detail_type=f"HL7v2 {kind}"[:64],
                source=PARKED_SOURCE,
                reason=f"{reason} (MSH-10 {control or '?'} from {sender or '?'})",
                parked_at=now,
                facility_id=facility_id,
            )
        )
    except Exception:
        log.exception("hl7v2: could not park MSH-10 %s", control)


def _answer(
    header: Header | None,
    code: AckCode,
    *,
    now: datetime,
    reason: str,
    where: str = "",
    hl7_error: str = "207",
) -> Receipt:
    return Receipt(
        ack=build_ack(header, code, now=now, reason=reason, where=where, hl7_error=hl7_error),
        code=code,
        control_id=header.control_id if header else "",
        reason=reason,
    )


def _refuse(refused: Refused, *, now: datetime, store: StateStore) -> Receipt:
    _park(refused.header, refused.reason, now=now, store=store)
    log.warning("hl7v2: refused (%s): %s", refused.code, refused.reason)
    receipt = _answer(
        refused.header,
        refused.code,
        now=now,
        reason=refused.reason,
        where=refused.where,
        hl7_error=refused.hl7_error,
    )
    return Receipt(
        ack=receipt.ack,
        code=receipt.code,
        control_id=receipt.control_id,
        reason=receipt.reason,
        parked=True,
    )
