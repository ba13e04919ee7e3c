"""RecordDependency: a dependency check that failed for good becomes an ERROR result."""

from typing import Any

from careflow import clock, wiring
from careflow.domain import readiness_steps as steps
from careflow.observability import step


@step("record_dependency_error")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.record_dependency_error(event, store=wiring.store(), now=clock.now())
