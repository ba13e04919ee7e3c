"""PayerDecision: ``PriorAuth.Decided`` resumes the workflow waiting on that authorization,
with the decision re-read from the payer (``Claim/$inquire``), never the event's."""

from typing import Any

from careflow import clock, wiring
from careflow.domain import intake
from careflow.domain.payer_decisions import resume_on_decision
from careflow.events.envelope import EnvelopeError
from careflow.observability import logger, step


@step("payer_decision")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        return resume_on_decision(
            event,
            store=wiring.store(),
            engine=wiring.engine(),
            payer=wiring.payer(),
            now=clock.now(),
        )
    except EnvelopeError as exc:
        parked = intake.park(
            {"event": event},
            exc.reason,
            store=wiring.store(),
            parking=wiring.parking(),
            now=clock.now(),
        )
        logger.warning("event parked", extra={"event_id": parked.event_id, "reason": exc.reason})
        return parked.model_dump()
