"""SubmitPriorAuth: Da Vinci PAS submission through the payer port."""

from typing import Any

from careflow import clock, wiring
from careflow.domain import readiness_steps as steps
from careflow.observability import step


@step("submit_prior_auth")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.submit_prior_auth(
        event, store=wiring.store(), payer=wiring.payer(), now=clock.now()
    )
