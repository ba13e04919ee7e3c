"""CheckClinicianAndRoom: the appointment's surgeon, anesthesia and room."""

from typing import Any

from careflow import clock, wiring
from careflow.domain import readiness_steps as steps
from careflow.observability import step


@step("check_clinician_and_room")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.check_clinician_and_room(
        event, store=wiring.store(), ehr=wiring.ehr(), now=clock.now()
    )
