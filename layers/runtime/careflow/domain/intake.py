"""Event intake: validate, de-duplicate, start the workflow once per subject, apply a
subject's later events (reschedule, cancel); park what cannot be used, and record what no
workflow takes as unrouted."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from careflow import facilities
from careflow.domain.records import (
    AuditEntry,
    Instance,
    InstanceStatus,
    Milestone,
    ParkedEvent,
    SubjectRecord,
    TaskStatus,
)
from careflow.events.envelope import EnvelopeError, parse_event
from careflow.kit.spec import Trigger
from careflow.ports import (
    ConcurrentUpdate,
    DuplicateExecution,
    ParkingLot,
    StateStore,
    WorkflowEngine,
)


class StartRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    effect: Literal["start"] = "start"
    workflow_id: str
    state_machine_arn: str
    instance_id: str  # the execution name, unless the subject already has an instance
    idempotency_key: str
    input: dict[str, Any]
    event_id: str = ""
    facility_id: str = ""
    subject_id: str | None = None
    occurred_at: datetime | None = None  # the event's metadata.occurred_at
    reopens: bool = False  # its trigger's: a cancelled subject may be started again


class SubjectChange(BaseModel):
    """An event that updates or stops the running instance of its subject."""

    model_config = ConfigDict(frozen=True)

    effect: Literal["update", "stop"]
    workflow_id: str
    state_machine_arn: str
    idempotency_key: str
    event_id: str
    detail_type: str
    facility_id: str
    subject_id: str
    values: dict[str, Any] = {}
    occurred_at: datetime | None = None  # the event's metadata.occurred_at


class Parked(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: Literal["parked", "unrouted"] = "parked"
    reason: str
    event_id: str


def instance_id_for(workflow_id: str, idempotency_key: str) -> str:
    """Deterministic, so the execution name de-duplicates (execution names are unique).

    The first event of a subject names its instance; the subject record keeps it."""
    prefix = "".join(part[0] for part in workflow_id.split("-"))
    digest = hashlib.sha256(f"{workflow_id}|{idempotency_key}".encode()).hexdigest()[:24]
    return f"{prefix}-{digest}"


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN Step Functions gives the execution ``name`` of ``state_machine_arn``."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


def _triggers() -> dict[str, dict[str, Trigger]]:
    """Per registered workflow, its trigger for each detail-type that goes to intake."""
    from careflow.kit.registry import workflows

    found: dict[str, dict[str, Trigger]] = {}
    for wf in workflows():
        for trigger in wf.triggers:
            found.setdefault(wf.id, {})[trigger.detail_type] = trigger
    return found


UNKNOWN_FACILITY = (
    "detail.metadata.facility_id is not a facility careflow serves: events are taken only "
    "for the facilities of the registry (careflow.facilities, CAREFLOW_FACILITIES_FILE)"
)


def accept(
    target_input: Mapping[str, Any],
    *,
    state_machine_arns: Mapping[str, str],
) -> StartRequest | SubjectChange:
    """Validates the rule target's input ``{"workflow_id", "event"}``; raises EnvelopeError.

    A ``start`` trigger gives a StartRequest; an ``update`` or ``stop`` one a SubjectChange.
    """
    workflow_id = target_input.get("workflow_id")
    triggers = _triggers()
    if not isinstance(workflow_id, str) or workflow_id not in triggers:
        raise EnvelopeError(
            "workflow_id is not a workflow of the catalog: the rule's target input names "
            "the workflow it routes to"
        )
    if workflow_id not in state_machine_arns:
        raise EnvelopeError(
            f"workflow_id {workflow_id} is not deployed here: its state machine is missing "
            "from STATE_MACHINE_ARNS"
        )
    event = parse_event(dict(target_input.get("event") or {}))
    meta = event.metadata
    if not facilities.is_known(meta.facility_id):
        raise EnvelopeError(UNKNOWN_FACILITY)
    trigger = triggers[workflow_id].get(event.detail_type)
    if trigger is None:
        raise EnvelopeError(
            f"detail-type {event.detail_type} does not go to {workflow_id}: none of its "
            "triggers names it"
        )
    subject_id = trigger.subject(event) if trigger.subject is not None else None
    if trigger.effect != "start":
        values = trigger.build_input(event) if trigger.build_input is not None else {}
        return SubjectChange(
            workflow_id=workflow_id,
            effect=trigger.effect,
            state_machine_arn=state_machine_arns[workflow_id],
            idempotency_key=meta.idempotency_key,
            event_id=meta.event_id,
            detail_type=event.detail_type,
            facility_id=meta.facility_id,
            subject_id=str(subject_id),
            values=values,
            occurred_at=meta.occurred_at,
        )
    instance_id = instance_id_for(workflow_id, meta.idempotency_key)
    payload = {
        "workflow_id": workflow_id,
        "instance_id": instance_id,
        "event_id": meta.event_id,
        "correlation_id": meta.correlation_id,
        "facility_id": meta.facility_id,
        "occurred_at": meta.occurred_at.isoformat(),
        **(trigger.build_input(event) if trigger.build_input is not None else {}),
    }
    return StartRequest(
        workflow_id=workflow_id,
        state_machine_arn=state_machine_arns[workflow_id],
        instance_id=instance_id,
        idempotency_key=meta.idempotency_key,
        input=payload,
        event_id=meta.event_id,
        facility_id=meta.facility_id,
        subject_id=subject_id,
        occurred_at=meta.occurred_at,
        reopens=trigger.reopens,
    )


def start(
    request: StartRequest,
    *,
    engine: WorkflowEngine,
    store: StateStore | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Starts the subject's one instance; ``duplicate`` if it already runs (or ran).

    With a subject, a subject record is claimed first (first writer wins) and the
    execution is named after the instance it names: a start that failed after the claim
    is retried under that same name, and any later event for the subject, whatever its
    idempotency key, meets ``ExecutionAlreadyExists``. A cancelled subject is refused,
    unless the trigger ``reopens`` and the event occurred after the cancellation: then the
    record names this event's instance (see :func:`_reopen`)."""
    instance_id = request.instance_id
    if request.subject_id is not None:
        if store is None or now is None:
            raise ValueError("a start for a subject needs the store and the time")
        claimed = store.claim_subject(
            SubjectRecord(
                workflow_id=request.workflow_id,
                facility_id=request.facility_id,
                subject_id=request.subject_id,
                instance_id=instance_id,
                event_id=request.event_id,
                at=now,
                occurred_at=request.occurred_at,
            )
        )
        if claimed.status == "CANCELLED":
            reopened = _reopen(request, claimed, store=store, now=now)
            if isinstance(reopened, str):
                return {"status": "refused", "reason": reopened}
            claimed = reopened
        if claimed.instance_id is None:
            return {"status": "refused", "reason": _cancelled_before_start(request)}
        if claimed.instance_id != request.instance_id:
            claimed = _restart_if_ended_badly(request, claimed, store=store, now=now)
        instance_id = claimed.instance_id or request.instance_id
    payload = {**request.input, "instance_id": instance_id}
    try:
        arn = engine.start(request.state_machine_arn, instance_id, payload)
    except DuplicateExecution:
        if store is not None and now is not None and instance_id != request.instance_id:
            _audit_duplicate(store, instance_id, request.event_id, now, "no second instance")
        return {"status": "duplicate", "instance_id": instance_id}
    return {"status": "started", "instance_id": instance_id, "execution_arn": arn}


def _name_this_instance(
    request: StartRequest,
    record: SubjectRecord,
    *,
    store: StateStore,
    now: datetime,
    **also: Any,
) -> SubjectRecord | None:
    """The subject's record rewritten to name this event's instance, conditional on the
    version read; None when another writer changed it first (read it again)."""
    try:
        return store.update_subject(
            record.model_copy(
                update={
                    "instance_id": request.instance_id,
                    "status": "STARTED",
                    "event_id": request.event_id,
                    "occurred_at": request.occurred_at,
                    "at": now,
                    **also,
                }
            )
        )
    except ConcurrentUpdate:
        return None


def _reread(store: StateStore, record: SubjectRecord) -> SubjectRecord:
    current = store.get_subject(record.workflow_id, record.facility_id, record.subject_id)
    assert current is not None  # subject records are never deleted
    return current


def _restart_if_ended_badly(
    request: StartRequest, record: SubjectRecord, *, store: StateStore, now: datetime
) -> SubjectRecord:
    """A new start event (another idempotency key) for a subject whose instance's
    execution failed, timed out or was stopped outside careflow (the instance FAILED, or
    CANCELLED while its subject was not: docs/decisions.md 42): the subject's record now
    names this event's instance, which starts. That is how an operator retries a subject
    once its cause is fixed. Any other existing instance keeps the subject (a duplicate).
    The write is conditional, so of two racing retries one starts."""
    for _ in range(_REOPEN_ATTEMPTS):
        previous = record.instance_id
        instance = store.get_instance(previous) if previous is not None else None
        ended_badly = instance is not None and (
            instance.status is InstanceStatus.FAILED
            or (instance.status is InstanceStatus.CANCELLED and record.status != "CANCELLED")
        )
        if not ended_badly or previous == request.instance_id:
            return record
        restarted = _name_this_instance(request, record, store=store, now=now)
        if restarted is None:
            record = _reread(store, record)
            continue
        assert instance is not None
        store.record(
            AuditEntry(
                instance_id=request.instance_id,
                at=now,
                actor="system:intake",
                action="restarted",
                reason=f"the subject's previous instance ended {instance.status.value}: "
                "a new instance for the subject",
                detail={"event_id": request.event_id, "previous_instance_id": previous},
            )
        )
        return restarted
    raise ConcurrentUpdate(f"{request.workflow_id} subject changed {_REOPEN_ATTEMPTS} times")


def _cancelled_before_start(request: StartRequest) -> str:
    return (
        "the subject of this event was cancelled before it started: "
        f"{request.workflow_id} starts no instance for a cancelled subject"
    )


_REOPEN_ATTEMPTS = 3  # then ConcurrentUpdate: the event is retried


def _reopen(
    request: StartRequest, record: SubjectRecord, *, store: StateStore, now: datetime
) -> SubjectRecord | str:
    """A start for a cancelled subject: the subject's record, now naming this event's
    instance, if the trigger ``reopens`` and the event occurred after the cancellation;
    otherwise the reason it is refused.

    The write is conditional on the version read, so of two racing starts one names the
    instance; the other reads the record again and goes on with what it names (its start
    is then a duplicate). The cancelled instance keeps its records; the new one's audit
    says why it exists."""
    for _ in range(_REOPEN_ATTEMPTS):
        if record.status != "CANCELLED":
            return record  # another start reopened it meanwhile
        if not request.reopens:
            return _cancelled_before_start(request)
        if record.occurred_at is None or request.occurred_at is None:
            return (
                "the subject of this event was cancelled, and when is not on record: "
                f"{request.workflow_id} starts a cancelled subject again only for a start "
                "that occurred after its cancellation"
            )
        if request.occurred_at <= record.occurred_at:
            return (
                "the subject of this event was cancelled after this event occurred: "
                f"{request.workflow_id} starts a cancelled subject again only for a start "
                "that occurred after its cancellation (a late start of the cancelled one "
                "is refused)"
            )
        reopened = _name_this_instance(request, record, store=store, now=now, reopened=True)
        if reopened is None:
            record = _reread(store, record)
            continue
        detail = {"event_id": request.event_id, "cancelled_by": record.event_id}
        if record.instance_id is not None:
            detail["previous_instance_id"] = record.instance_id
        store.record(
            AuditEntry(
                instance_id=request.instance_id,
                at=now,
                actor="system:intake",
                action="reopened",
                reason="a start that occurred after the subject's cancellation: a new "
                "instance for the subject",
                detail=detail,
            )
        )
        return reopened
    raise ConcurrentUpdate(f"{request.workflow_id} subject changed {_REOPEN_ATTEMPTS} times")


def _audit_duplicate(
    store: StateStore, instance_id: str, event_id: str, now: datetime, outcome: str
) -> None:
    """A second event for the subject, under another idempotency key, is kept on record."""
    store.record(
        AuditEntry(
            instance_id=instance_id,
            at=now,
            actor="system:intake",
            action="duplicate_event",
            reason=f"an event for the same subject under another idempotency key: {outcome}",
            detail={"event_id": event_id},
        )
    )


def change(
    request: SubjectChange, *, engine: WorkflowEngine, store: StateStore, now: datetime
) -> dict[str, Any]:
    """Applies an ``update`` or ``stop`` event to the subject's running instance.

    ``stop`` before any start leaves a cancelled subject record, so a late start is
    refused; ``update`` with no instance is unrouted (no workflow runs for the subject).
    On a subject started again after a cancellation, an event that occurred before the
    start that reopened it belongs to the cancelled instance: refused."""
    record = store.get_subject(request.workflow_id, request.facility_id, request.subject_id)
    verb = request.detail_type.rsplit(".", 1)[-1].lower()
    if (
        record is not None
        and record.reopened
        and record.status != "CANCELLED"
        and record.occurred_at is not None
        and request.occurred_at is not None
        and request.occurred_at < record.occurred_at
    ):
        return {
            "status": "refused",
            "reason": f"{request.detail_type} occurred before the subject was started "
            "again: it belongs to the cancelled instance, not to the subject's new one",
        }
    if request.effect == "stop":
        if record is None:
            record = store.claim_subject(
                SubjectRecord(
                    workflow_id=request.workflow_id,
                    facility_id=request.facility_id,
                    subject_id=request.subject_id,
                    instance_id=None,
                    status="CANCELLED",
                    event_id=request.event_id,
                    at=now,
                    occurred_at=request.occurred_at,
                )
            )
            if record.event_id == request.event_id:
                return {"status": "cancelled", "instance_id": None}
        if record.status == "CANCELLED" and record.event_id != request.event_id:
            if record.instance_id is not None:
                _audit_duplicate(
                    store, record.instance_id, request.event_id, now, "already cancelled"
                )
            return {"status": "duplicate", "instance_id": record.instance_id}
        if record.status != "CANCELLED":
            store.update_subject(
                record.model_copy(
                    update={
                        "status": "CANCELLED",
                        "event_id": request.event_id,
                        "occurred_at": request.occurred_at,
                    }
                )
            )
        if record.instance_id is None:
            return {"status": "cancelled", "instance_id": None}
        stopped = engine.stop(
            execution_arn(request.state_machine_arn, record.instance_id),
            error="Cancelled",
            cause=f"{request.detail_type} (event {request.event_id})",
        )
        _record(
            store,
            record.instance_id,
            {"status": InstanceStatus.CANCELLED},
            name=verb,
            reason=f"{request.detail_type}: the execution was "
            + ("stopped" if stopped else "already over"),
            request=request,
            now=now,
        )
        return {"status": "cancelled", "instance_id": record.instance_id, "stopped": stopped}
    if record is None or record.instance_id is None:
        return {
            "status": "unrouted",
            "reason": f"no instance of {request.workflow_id} runs for this subject: "
            f"{request.detail_type} changes a running instance only",
        }
    if record.status == "CANCELLED":
        return {
            "status": "refused",
            "reason": f"the subject's instance was cancelled: {request.detail_type} cannot "
            "change a cancelled instance",
        }
    if store.get_instance(record.instance_id) is None:
        return {
            "status": "refused",
            "reason": f"the subject's instance has not registered yet: {request.detail_type} "
            "needs its instance record (redrive it once the instance shows)",
        }
    _record(
        store,
        record.instance_id,
        dict(request.values),
        name=verb,
        reason=request.detail_type,
        request=request,
        now=now,
    )
    return {"status": "updated", "instance_id": record.instance_id}


def _record(
    store: StateStore,
    instance_id: str,
    values: Mapping[str, Any],
    *,
    name: str,
    reason: str,
    request: SubjectChange,
    now: datetime,
) -> None:
    entries: list[Milestone | AuditEntry] = [
        Milestone(instance_id=instance_id, name=name, at=now, detail=f"event {request.event_id}"),
        AuditEntry(
            instance_id=instance_id,
            at=now,
            actor="system:intake",
            action=name,
            reason=reason,
            detail={"event_id": request.event_id},
        ),
    ]
    if values.get("status") == InstanceStatus.CANCELLED:
        # Nobody should work a cancelled case: its open tasks close (nothing waits on them).
        for task in store.tasks_for_instance(instance_id):
            if task.status in (TaskStatus.OPEN, TaskStatus.CLAIMED):
                store.update_task(task.model_copy(update={"status": TaskStatus.CLOSED}))
    instance = store.get_instance(instance_id)
    if instance is None:
        store.record(*entries)
        return
    # Validated, so a value from the event's JSON (a time) takes its field's type.
    changed = Instance.model_validate({**instance.model_dump(), **values, "updated_at": now})
    store.update_instance(changed, with_entries=entries)


def process(
    request: Mapping[str, Any], *, engine: WorkflowEngine, store: StateStore, now: datetime
) -> dict[str, Any]:
    """Runs an accepted request (a StartRequest or SubjectChange as a dict)."""
    if request.get("effect", "start") == "start":
        return start(StartRequest.model_validate(request), engine=engine, store=store, now=now)
    return change(SubjectChange.model_validate(request), engine=engine, store=store, now=now)


def park(
    target_input: Mapping[str, Any],
    reason: str,
    *,
    store: StateStore,
    parking: ParkingLot,
    now: datetime,
    kind: Literal["parked", "unrouted"] = "parked",
) -> Parked:
    """Keeps the whole event in the (encrypted) parking queue, its identifiers in the table.

    ``kind`` ``unrouted``: no workflow took it (the catch-all rule, or an update for a
    subject nothing runs for); ``parked``: a workflow's rule took it and intake refused it.
    """
    event = target_input.get("event") if isinstance(target_input.get("event"), dict) else {}
    assert isinstance(event, dict)
    detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
    meta = detail.get("metadata") if isinstance(detail, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    event_id = str(
        meta.get("event_id")
        or event.get("id")
        or hashlib.sha256(repr(sorted(target_input.items())).encode()).hexdigest()[:16]
    )
    event_id = event_id[:128]
    parking.park(target_input, reason, event_id=event_id)
    store.park_event(
        ParkedEvent(
            event_id=event_id,
            kind=kind,
            detail_type=str(event.get("detail-type", ""))[:128],
            source=str(event.get("source", ""))[:128],
            reason=reason,
            parked_at=now,
            facility_id=str(meta["facility_id"])[:64] if meta.get("facility_id") else None,
        )
    )
    return Parked(status=kind, reason=reason, event_id=event_id)


def unrouted(
    target_input: Mapping[str, Any],
    *,
    store: StateStore,
    parking: ParkingLot,
    now: datetime,
) -> Parked:
    """Records an event the catch-all rule took: no workflow's rule matched it."""
    from careflow.events.routing import unrouted_reason
    from careflow.kit.registry import workflows

    event = target_input.get("event")
    reason = (
        unrouted_reason(event, workflows())
        if isinstance(event, dict)
        else "event is not a JSON object: the catch-all rule delivers whole events"
    )
    return park(target_input, reason, store=store, parking=parking, now=now, kind="unrouted")
