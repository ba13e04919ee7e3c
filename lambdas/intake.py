"""Intake: the target of every workflow-starting EventBridge rule.

Validates the envelope, starts the workflow once per idempotency key (Powertools
idempotency on the state table, and a deterministic execution name), and parks an
event it cannot use with the reason: in the parking queue (whole event,
encrypted) and as an identifier-only record in the table.
"""

from functools import lru_cache
from typing import Any

from careflow import clock, wiring
from careflow.domain import intake
from careflow.events.envelope import EnvelopeError
from careflow.observability import logger, metrics, step
from careflow.settings import settings


@lru_cache(maxsize=1)
def _config() -> Any:
    # Imported here: Powertools idempotency brings boto3, which a cold start need not load
    # before the first event.
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    return IdempotencyConfig(event_key_jmespath="idempotency_key", expires_after_seconds=7 * 86400)


@lru_cache(maxsize=1)
def _start_once() -> Any:
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
    def start(request: dict[str, Any]) -> dict[str, Any]:
        return intake.start(intake.StartRequest.model_validate(request), engine=wiring.engine())

    return start


@step("intake")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _config().register_lambda_context(context)
    try:
        request = intake.accept(event, state_machine_arns=settings().state_machine_arns)
    except EnvelopeError as exc:
        parked = intake.park(
            event, exc.reason, store=wiring.store(), parking=wiring.parking(), now=clock.now()
        )
        logger.warning("event parked", extra={"event_id": parked.event_id, "reason": exc.reason})
        metrics.add_metric(name="EventsParked", unit="Count", value=1)
        return parked.model_dump()
    result: dict[str, Any] = _start_once()(request=request.model_dump())
    logger.info(
        "event accepted", extra={"instance_id": request.instance_id, "status": result["status"]}
    )
    return result
