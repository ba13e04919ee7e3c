"""ApplyCoordinatorDecision: re-check what was threatened, settle the outcome."""

from typing import Any

from careflow import clock, wiring
from careflow.domain import readiness_steps as steps
from careflow.observability import step


@step("apply_coordinator_decision")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.apply_coordinator_decision(
        event,
        store=wiring.store(),
        ehr=wiring.ehr(),
        payer=wiring.payer(),
        erp=wiring.erp(),
        sterile=wiring.sterile(),
        now=clock.now(),
    )
