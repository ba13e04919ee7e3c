"""EvaluateReadiness: READY / AT_RISK / BLOCKED with reasons."""

from typing import Any

from careflow import clock, wiring
from careflow.domain import readiness_steps as steps
from careflow.observability import step


@step("evaluate_readiness")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.evaluate_readiness(event, store=wiring.store(), now=clock.now())
