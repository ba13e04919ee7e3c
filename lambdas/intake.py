"""Intake: the target of every workflow-starting EventBridge rule.

Validates the envelope, starts the workflow once per idempotency key (Powertools
idempotency on the state table) and once per business subject (a subject record and
the execution name it keeps), applies a subject's reschedule or cancellation, and parks
an event it cannot use with the reason: in the parking queue (whole event, encrypted)
and as an identifier-only record in the table. The catch-all rule's events (``{"route":
"unrouted", "event": ...}``) are recorded the same way as unrouted.
"""

from functools import lru_cache
from typing import Any

from careflow import clock, wiring
from careflow.domain import intake
from careflow.events.envelope import EnvelopeError
from careflow.events.routing import UNROUTED_ROUTE
from careflow.observability import logger, metrics, step
from careflow.settings import settings


@lru_cache(maxsize=1)
def _config() -> Any:
    # Imported here: Powertools idempotency brings boto3, which a cold start need not load
    # before the first event.
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    # Per workflow and key: an event two workflows take (Encounter.Discharged starts a
    # staffing check and concludes a discharge) reaches intake once per rule, and each
    # workflow must have it once, not only the first to arrive.
    return IdempotencyConfig(
        event_key_jmespath="[workflow_id, idempotency_key]", expires_after_seconds=7 * 86400
    )


class _NotTaken(Exception):
    """Intake refused the event or found nothing to apply it to; it is parked."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result["status"])
        self.result = result


@lru_cache(maxsize=1)
def _process_once() -> Any:
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        idempotent_function,
    )

    persistence = DynamoDBPersistenceLayer(
        table_name=settings().table_name,
        key_attr="PK",
        sort_key_attr="SK",
        static_pk_value="IDEMPOTENCY#intake",
        boto3_client=wiring.client("dynamodb"),
    )

    @idempotent_function(
        data_keyword_argument="request", persistence_store=persistence, config=_config()
    )
    def process(request: dict[str, Any]) -> dict[str, Any]:
        result = intake.process(
            request, engine=wiring.engine(), store=wiring.store(), now=clock.now()
        )
        if result["status"] in ("refused", "unrouted"):
            raise _NotTaken(result)  # not remembered: a redrive after a fix is decided anew
        return result

    return process


def _report(parked: intake.Parked) -> dict[str, Any]:
    """Logs and counts a parked or unrouted event: its id and reason, never its content."""
    logger.warning(
        f"event {parked.status}", extra={"event_id": parked.event_id, "reason": parked.reason}
    )
    metric = "EventsUnrouted" if parked.status == "unrouted" else "EventsParked"
    metrics.add_metric(name=metric, unit="Count", value=1)
    return parked.model_dump()


def _park(event: dict[str, Any], reason: str, kind: str = "parked") -> dict[str, Any]:
    return _report(
        intake.park(
            event,
            reason,
            store=wiring.store(),
            parking=wiring.parking(),
            now=clock.now(),
            kind="unrouted" if kind == "unrouted" else "parked",
        )
    )


@step("intake")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _config().register_lambda_context(context)
    if event.get("route") == UNROUTED_ROUTE:
        return _report(
            intake.unrouted(event, store=wiring.store(), parking=wiring.parking(), now=clock.now())
        )
    try:
        request = intake.accept(event, state_machine_arns=settings().state_machine_arns)
    except EnvelopeError as exc:
        return _park(event, exc.reason)
    try:
        result: dict[str, Any] = _process_once()(request=request.model_dump(mode="json"))
    except _NotTaken as not_taken:
        return _park(event, not_taken.result["reason"], not_taken.result["status"])
    logger.info(
        "event accepted",
        extra={"instance_id": result.get("instance_id"), "status": result["status"]},
    )
    return result
