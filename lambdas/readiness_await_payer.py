"""AwaitPayerDecision: park the task token of a pended authorization (``.waitForTaskToken``).

The same function records a payer's decision (``mode: decided``) and an expired
decision clock (``mode: expired``) as the authorization's dependency result.
"""

from typing import Any

from careflow import clock, wiring
from careflow.domain import readiness_steps as steps
from careflow.observability import step


@step("await_payer_decision")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    mode = event.get("mode", "wait")
    if mode == "decided":
        return steps.payer_decided(event, store=wiring.store(), now=clock.now())
    if mode == "expired":
        return steps.pend_expired(event, store=wiring.store(), now=clock.now())
    return steps.await_payer_decision(
        event,
        store=wiring.store(),
        engine=wiring.engine(),
        publisher=wiring.publisher(),
        now=clock.now(),
    )
