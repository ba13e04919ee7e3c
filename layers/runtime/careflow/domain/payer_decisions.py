"""A payer's decision on a pended authorization resumes the workflow waiting on it.

``PriorAuth.Decided`` is a signal, not the truth (anyone who can put an event on the bus
can claim an approval). Before a waiting workflow resumes, the decision is re-read from
the payer, the system of record, with one ``Claim/$inquire`` per signal, and the workflow
resumes with the payer's answer, never the event's. An event that claims what the payer
does not say is audited as a mismatch (identifiers and decision codes only); while the
payer still pends, nothing resumes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from careflow.canonical.payer import AuthDecision, PriorAuthResponse
from careflow.domain.records import AuditEntry
from careflow.events.envelope import EnvelopeError, parse_event
from careflow.ports import (
    ConnectorError,
    ConnectorUnavailable,
    PayerPort,
    StaleTaskToken,
    StateStore,
    WorkflowEngine,
)
from careflow.workflows.prior_authorization.events import PriorAuthDecided

MISMATCH = "payer_decision_mismatch"


class DecisionMismatch(EnvelopeError):
    """The event claims a decision the payer does not give, and no workflow waits on the
    authorization to audit it against: the event is parked with this reason."""


def verified_answer(
    response: PriorAuthResponse, preauth_ref: str, *, claimed: str, now: datetime
) -> dict[str, Any]:
    """What the waiting workflow resumes with: the payer's answer, marked as re-read."""
    return {
        "verified": True,
        "decision": response.decision.value,
        "preauth_ref": preauth_ref,
        "reason": response.reason,
        "conformance": list(response.conformance),
        "claimed": claimed,
        "verified_at": now.isoformat(),
    }


def resume_on_decision(
    event: Mapping[str, Any],
    *,
    store: StateStore,
    engine: WorkflowEngine,
    payer: PayerPort,
    now: datetime,
) -> dict[str, Any]:
    parsed = parse_event(dict(event))
    data = parsed.data
    if not isinstance(data, PriorAuthDecided):
        raise EnvelopeError(f"detail-type: expected PriorAuth.Decided, got {parsed.detail_type}")
    ref = data.preauth_ref
    try:
        truth = payer.inquire(ref)  # the one $inquire of this signal
    except ConnectorUnavailable:
        raise  # the payer is down: EventBridge retries the event, then its DLQ keeps it
    except ConnectorError:
        raise EnvelopeError(
            "data.preauth_ref: the payer's $inquire resolves no authorization by that reference"
        ) from None
    waiting = store.peek_wait(ref)
    instance_id = waiting[1] if waiting else None
    said = truth.decision.value
    if said != data.decision:
        if instance_id is None:
            raise DecisionMismatch(
                f"{MISMATCH}: data.decision is {data.decision}, the payer's $inquire says {said}"
            )
        store.record_audit(
            AuditEntry(
                instance_id=instance_id,
                at=now,
                actor=f"event:{parsed.source}",
                action=MISMATCH,
                reason=f"the event claimed {data.decision}; the payer says {said}",
                detail={
                    "preauth_ref": ref,
                    "event_id": parsed.metadata.event_id,
                    "claimed": data.decision,
                    "payer": said,
                },
            )
        )
    if truth.decision is AuthDecision.PENDED:
        # The payer has not decided: the workflow keeps waiting on its own clock.
        return {"status": "still_pended", "preauth_ref": ref, "instance_id": instance_id}
    answer = verified_answer(truth, ref, claimed=data.decision, now=now)
    waiting = store.take_wait(ref)
    if waiting is None:
        # The decision overtook the workflow (or the workflow already gave up): keep it.
        store.put_early_answer(ref, answer, now)
        return {"status": "kept", "preauth_ref": ref}
    token, instance_id = waiting
    store.record_audit(
        AuditEntry(
            instance_id=instance_id,
            at=now,
            actor=f"payer:{parsed.source}",
            action="payer_decided",
            reason=said,
            detail={"preauth_ref": ref, "verified_with": "$inquire"},
        )
    )
    try:
        engine.send_task_success(token, answer)
    except StaleTaskToken:
        store.put_early_answer(ref, answer, now)
        return {"status": "kept", "preauth_ref": ref, "instance_id": instance_id}
    return {"status": "resumed", "preauth_ref": ref, "instance_id": instance_id}


def decided_event_data(response: PriorAuthResponse, now: datetime) -> dict[str, Any]:
    """The ``data`` of a ``PriorAuth.Decided`` event for a payer's decision."""
    return {
        "preauth_ref": response.preauth_ref,
        "decision": response.decision.value,
        "decided_at": now.isoformat(),
        "items": [i.model_dump(mode="json") for i in response.items],
    }
