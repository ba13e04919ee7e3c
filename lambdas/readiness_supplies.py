"""CheckSupplies: implants and case-cart supplies on hand in the ERP."""

from typing import Any

from careflow import clock, wiring
from careflow.domain import readiness_steps as steps
from careflow.observability import step


@step("check_supplies")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.check_supplies(event, store=wiring.store(), erp=wiring.erp(), now=clock.now())
