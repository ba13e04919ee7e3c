"""Event intake: validate, de-duplicate, start the workflow once; park what cannot be used."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from careflow.domain.records import ParkedEvent
from careflow.events.envelope import DomainEvent, EnvelopeError, parse_event
from careflow.ports import DuplicateExecution, ParkingLot, StateStore, WorkflowEngine


class StartRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    workflow_id: str
    state_machine_arn: str
    instance_id: str
    idempotency_key: str
    input: dict[str, Any]


class Parked(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: str = "parked"
    reason: str
    event_id: str


def instance_id_for(workflow_id: str, idempotency_key: str) -> str:
    """Deterministic, so the execution name de-duplicates (execution names are unique)."""
    prefix = "".join(part[0] for part in workflow_id.split("-"))
    digest = hashlib.sha256(f"{workflow_id}|{idempotency_key}".encode()).hexdigest()[:24]
    return f"{prefix}-{digest}"


def _input_builders() -> dict[str, dict[str, Callable[[DomainEvent], dict[str, Any]]]]:
    """Per registered workflow, what it takes from each detail-type that starts it."""
    from careflow.kit.registry import workflows

    builders: dict[str, dict[str, Callable[[DomainEvent], dict[str, Any]]]] = {}
    for wf in workflows():
        for trigger in wf.triggers:
            if trigger.build_input is not None:
                builders.setdefault(wf.id, {})[trigger.detail_type] = trigger.build_input
    return builders


def accept(
    target_input: Mapping[str, Any],
    *,
    state_machine_arns: Mapping[str, str],
) -> StartRequest:
    """Validates the rule target's input ``{"workflow_id", "event"}``; raises EnvelopeError."""
    workflow_id = target_input.get("workflow_id")
    builders = _input_builders()
    if not isinstance(workflow_id, str) or workflow_id not in builders:
        raise EnvelopeError("workflow_id: not a workflow of the catalog")
    if workflow_id not in state_machine_arns:
        raise EnvelopeError(f"workflow_id: {workflow_id} is not deployed here")
    event = parse_event(dict(target_input.get("event") or {}))
    meta = event.metadata
    instance_id = instance_id_for(workflow_id, meta.idempotency_key)
    payload = {
        "workflow_id": workflow_id,
        "instance_id": instance_id,
        "event_id": meta.event_id,
        "correlation_id": meta.correlation_id,
        "facility_id": meta.facility_id,
        "occurred_at": meta.occurred_at.isoformat(),
        **_build(builders[workflow_id], event),
    }
    return StartRequest(
        workflow_id=workflow_id,
        state_machine_arn=state_machine_arns[workflow_id],
        instance_id=instance_id,
        idempotency_key=meta.idempotency_key,
        input=payload,
    )


def _build(
    builders: Mapping[str, Callable[[DomainEvent], dict[str, Any]]], event: DomainEvent
) -> dict[str, Any]:
    build = builders.get(event.detail_type)
    if build is None:
        raise EnvelopeError(f"detail-type: {event.detail_type} does not start this workflow")
    return build(event)


def start(request: StartRequest, *, engine: WorkflowEngine) -> dict[str, Any]:
    try:
        arn = engine.start(request.state_machine_arn, request.instance_id, request.input)
    except DuplicateExecution:
        return {"status": "duplicate", "instance_id": request.instance_id}
    return {"status": "started", "instance_id": request.instance_id, "execution_arn": arn}


def park(
    target_input: Mapping[str, Any],
    reason: str,
    *,
    store: StateStore,
    parking: ParkingLot,
    now: datetime,
) -> Parked:
    """Keeps the whole event in the (encrypted) parking queue, its identifiers in the table."""
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
    parking.park(target_input, reason)
    store.park_event(
        ParkedEvent(
            event_id=event_id[:128],
            detail_type=str(event.get("detail-type", ""))[:128],
            source=str(event.get("source", ""))[:128],
            reason=reason,
            parked_at=now,
            facility_id=str(meta["facility_id"])[:64] if meta.get("facility_id") else None,
        )
    )
    return Parked(reason=reason, event_id=event_id)
