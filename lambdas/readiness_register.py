"""RegisterCase: fetch the case from the EHR, record the instance, resolve its timers."""

from typing import Any

from careflow import clock, wiring
from careflow.domain import readiness_steps as steps
from careflow.observability import step


@step("register_case")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.register_case(event, store=wiring.store(), ehr=wiring.ehr(), now=clock.now())
