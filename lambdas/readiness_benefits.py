"""VerifyBenefits: CoverageEligibility through the payer port."""

from typing import Any

from careflow import clock, wiring
from careflow.domain import readiness_steps as steps
from careflow.observability import step


@step("verify_benefits")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.verify_benefits(event, store=wiring.store(), payer=wiring.payer(), now=clock.now())
