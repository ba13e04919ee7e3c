"""CheckSterileProcessing: instrument trays processed before the hard stop."""

from typing import Any

from careflow import clock, wiring
from careflow.domain import readiness_steps as steps
from careflow.observability import step


@step("check_sterile_processing")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.check_sterile_processing(
        event, store=wiring.store(), sterile=wiring.sterile(), now=clock.now()
    )
