"""ExecutionStatus: a careflow execution that ended FAILED, TIMED_OUT or ABORTED
(``aws.states`` / ``Step Functions Execution Status Change`` on the default bus) is made
visible on its instance (:mod:`careflow.domain.executions`). An event it cannot read is
parked with the reason, like intake's."""

from typing import Any

from careflow import clock, wiring
from careflow.domain import intake
from careflow.domain.executions import ExecutionEnded, ExecutionStatusError, record_execution_end
from careflow.observability import logger, metrics, step


@step("execution_status")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        ended = ExecutionEnded.from_event(event)
    except ExecutionStatusError as exc:
        parked = intake.park(
            {"event": event},
            str(exc),
            store=wiring.store(),
            parking=wiring.parking(),
            now=clock.now(),
        )
        logger.warning("event parked", extra={"event_id": parked.event_id, "reason": str(exc)})
        return parked.model_dump(mode="json")
    result = record_execution_end(ended, store=wiring.store(), now=clock.now())
    if result["status"] not in ("duplicate", "ignored", "already_cancelled"):
        metrics.add_metric(name="ExecutionsEndedBadly", unit="Count", value=1)
        logger.warning(
            "execution ended badly",
            extra={"instance_id": ended.name, "status": ended.status, "error": ended.error},
        )
    return result
