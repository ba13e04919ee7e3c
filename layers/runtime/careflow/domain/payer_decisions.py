"""A payer's decision on a pended authorization resumes the workflow waiting on it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from careflow.canonical.payer import PriorAuthResponse
from careflow.domain.records import AuditEntry
from careflow.events.envelope import EnvelopeError, parse_event
from careflow.ports import StaleTaskToken, StateStore, WorkflowEngine
from careflow.workflows.prior_authorization.events import PriorAuthDecided


def resume_on_decision(
    event: Mapping[str, Any], *, store: StateStore, engine: WorkflowEngine, now: datetime
) -> dict[str, Any]:
    parsed = parse_event(dict(event))
    data = parsed.data
    if not isinstance(data, PriorAuthDecided):
        raise EnvelopeError(f"detail-type: expected PriorAuth.Decided, got {parsed.detail_type}")
    answer = {
        "decision": data.decision,
        "preauth_ref": data.preauth_ref,
        "decided_at": data.decided_at.isoformat(),
    }
    waiting = store.take_wait(data.preauth_ref)
    if waiting is None:
        # The decision overtook the workflow (or the workflow already gave up): keep it.
        store.put_early_answer(data.preauth_ref, answer, now)
        return {"status": "kept", "preauth_ref": data.preauth_ref}
    token, instance_id = waiting
    store.record_audit(
        AuditEntry(
            instance_id=instance_id,
            at=now,
            actor=f"payer:{parsed.source}",
            action="payer_decided",
            reason=data.decision,
            detail={"preauth_ref": data.preauth_ref},
        )
    )
    try:
        engine.send_task_success(token, answer)
    except StaleTaskToken:
        store.put_early_answer(data.preauth_ref, answer, now)
        return {"status": "kept", "preauth_ref": data.preauth_ref, "instance_id": instance_id}
    return {"status": "resumed", "preauth_ref": data.preauth_ref, "instance_id": instance_id}


def decided_event_data(response: PriorAuthResponse, now: datetime) -> dict[str, Any]:
    """The ``data`` of a ``PriorAuth.Decided`` event for a payer's decision."""
    return {
        "preauth_ref": response.preauth_ref,
        "decision": response.decision.value,
        "decided_at": now.isoformat(),
        "items": [i.model_dump(mode="json") for i in response.items],
    }
