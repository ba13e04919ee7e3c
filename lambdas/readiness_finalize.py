"""FinalizeCase: record the outcome, open follow-up work, shape the outcome event."""

from typing import Any

from careflow import clock, wiring
from careflow.domain import readiness_steps as steps
from careflow.observability import step


@step("finalize_case")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.finalize_case(
        event, store=wiring.store(), publisher=wiring.publisher(), now=clock.now()
    )
