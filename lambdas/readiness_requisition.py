"""CreateRequisition: a procurement requisition per supplier for a shortage."""

from typing import Any

from careflow import clock, wiring
from careflow.domain import readiness_steps as steps
from careflow.observability import step


@step("create_requisitions")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.create_requisitions(event, store=wiring.store(), erp=wiring.erp(), now=clock.now())
