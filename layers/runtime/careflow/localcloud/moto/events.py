"""EventBridge delivery on the local cloud.

Patched: ``moto/events/models.py`` ``Rule.send_to_targets`` is wrapped: Step Functions
targets get a StartExecution, Lambda targets an asynchronous invoke (2 retries, then the
target's SQS dead-letter queue), with the target's Input / InputPath / InputTransformer
applied (:func:`target_input`). Other targets go through moto's code one at a time, so a
failing target never breaks the others or PutEvents. (An event's ``time`` on the clock:
:mod:`.clock`.)
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .lambda_ import invoke_async
from .shapes import Patch, params
from .state import ASYNC_RETRY_DELAYS_SECONDS, current

LOG = logging.getLogger(__name__)


def _iso(value: Any) -> Any:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


class _EventView(dict[str, Any]):
    """The event as AWS delivers it; moto's internal ``ingestion-time`` stays reachable
    by ``EventTemplateParser`` (``<aws.events.event.ingestion-time>``) but hidden from
    ``$`` and ``<aws.events.event.json>``."""

    def __init__(self, event: dict[str, Any]) -> None:
        self._ingestion_time = event.get("ingestion-time")
        super().__init__(
            {
                "version": event.get("version", "0"),
                "id": event.get("id"),
                "detail-type": event.get("detail-type"),
                "source": event.get("source"),
                "account": event.get("account"),
                "time": _iso(event.get("time")),
                "region": event.get("region"),
                "resources": event.get("resources", []),
                "detail": event.get("detail", {}),
                **({"replay-name": event["replay-name"]} if "replay-name" in event else {}),
            }
        )

    def __missing__(self, key: str) -> Any:
        if key == "ingestion-time":
            return self._ingestion_time
        raise KeyError(key)


def target_input(
    target: dict[str, Any], event: dict[str, Any], transform_input: bool = True
) -> Any:
    """What EventBridge delivers to ``target`` for ``event`` (a moto event message).

    ``Input`` (constant JSON), ``InputPath`` (JSONPath) or ``InputTransformer``
    (moto's ``EventTemplateParser``: InputPathsMap incl. ``"$"``, ``<aws.events.event>``
    placeholders); else the whole event. The event is shaped as AWS sends it: ``time``
    as an ISO-8601 string, ``account`` present, no ``ingestion-time``.
    """
    from jsonpath_ng.ext import parse as jsonpath
    from moto.events.utils import EventTemplateParser

    view = _EventView(event)
    if not transform_input or not any(
        key in target for key in ("Input", "InputPath", "InputTransformer")
    ):
        return dict(view)
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        matches = jsonpath(target["InputPath"]).find(view)
        return matches[0].value if matches else None
    transformer = target["InputTransformer"]
    result = EventTemplateParser.parse(
        input_template=transformer.get("InputTemplate"),
        input_paths_map=transformer.get("InputPathsMap", {}),
        event=view,  # type: ignore[arg-type]
    )
    if isinstance(result, dict) and isinstance(result.get("time"), int | float):
        result["time"] = _iso(result["time"])  # as moto does for SQS targets
    return result


def _target_kind(arn: str) -> str | None:
    parts = arn.split(":")
    if len(parts) < 6:
        return None
    service, resource = parts[2], parts[5]
    if service == "states" and resource == "stateMachine":
        return "states"
    if service == "lambda" and resource == "function":
        return "lambda"
    return None


class _RuleView:
    """A rule seen with only some of its targets (to run moto's code per target)."""

    def __init__(self, rule: Any, targets: list[dict[str, Any]]) -> None:
        self.__dict__["_rule"] = rule
        self.__dict__["targets"] = targets

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_rule"], name)


def _make_send_to_targets(original: Callable[..., None]) -> Callable[..., None]:
    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        """Replaces ``Rule.send_to_targets``: adds Step Functions and Lambda targets."""
        if not self.event_pattern.matches_event(original_event):
            return
        for target in list(self.targets):
            arn = target.get("Arn", "")
            kind = _target_kind(arn)
            try:
                if kind is None:
                    original(_RuleView(self, [target]), original_event, transform_input)
                elif self.state != "ENABLED":
                    continue
                elif kind == "states":
                    _deliver_to_state_machine(self, target, original_event, transform_input)
                else:
                    _deliver_to_lambda(self, target, original_event, transform_input)
            except Exception:
                LOG.exception("rule %s: delivery to target %s failed", self.name, arn)

    send_to_targets.__wrapped__ = original  # type: ignore[attr-defined]
    return send_to_targets


def _dead_letter(
    rule: Any,
    target: dict[str, Any],
    event: dict[str, Any],
    *,
    error_code: str,
    error_message: str,
    retries: int,
) -> bool:
    """Send ``event`` to the target's SQS dead-letter queue, like EventBridge."""
    dlq_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
    if not dlq_arn:
        LOG.error(
            "rule %s target %s: event %s dropped (%s: %s); the target has no DeadLetterConfig",
            rule.name,
            target.get("Arn"),
            event.get("id"),
            error_code,
            error_message,
        )
        return False
    from moto.sqs.models import sqs_backends
    from moto.utilities.arns import parse_arn

    queue = parse_arn(dlq_arn)

    def attribute(value: Any) -> dict[str, str]:
        return {"DataType": "String", "StringValue": str(value) or "-"}

    sqs_backends[queue.account][queue.region].send_message(
        queue_name=queue.resource_id,
        message_body=json.dumps(dict(_EventView(event))),
        message_attributes={
            "RULE_ARN": attribute(rule.arn),
            "TARGET_ARN": attribute(target.get("Arn")),
            "ERROR_CODE": attribute(error_code),
            "ERROR_MESSAGE": attribute(error_message[:4096]),
            "RETRY_ATTEMPTS": attribute(retries),
            "EXHAUSTED_RETRY_CONDITION": attribute("MaximumRetryAttempts"),
        },
    )
    LOG.warning(
        "rule %s target %s: event %s sent to DLQ %s (%s: %s)",
        rule.name,
        target.get("Arn"),
        event.get("id"),
        dlq_arn,
        error_code,
        error_message,
    )
    return True


def _deliver_to_state_machine(
    rule: Any, target: dict[str, Any], event: dict[str, Any], transform_input: bool
) -> None:
    state = current()
    arn = target["Arn"]
    try:
        execution_input = json.dumps(target_input(target, event, transform_input))
        if state is not None and state.start_execution is not None:
            state.start_execution(arn, execution_input)
        else:
            from moto.stepfunctions.responses import get_backend
            from moto.utilities.arns import parse_arn

            parsed = parse_arn(arn)
            get_backend(parsed.account, parsed.region).start_execution(
                arn, str(uuid.uuid4()), execution_input
            )
    except Exception as ex:
        LOG.exception("rule %s: StartExecution of %s failed", rule.name, arn)
        _dead_letter(
            rule, target, event, error_code=type(ex).__name__, error_message=str(ex), retries=0
        )


def _deliver_to_lambda(
    rule: Any, target: dict[str, Any], event: dict[str, Any], transform_input: bool
) -> None:
    state = current()
    if state is None:  # pragma: no cover - uninstall race
        return
    try:
        payload = json.dumps(target_input(target, event, transform_input)).encode()
    except Exception as ex:
        LOG.exception("rule %s: input transformation for %s failed", rule.name, target["Arn"])
        _dead_letter(
            rule, target, event, error_code=type(ex).__name__, error_message=str(ex), retries=0
        )
        return
    retries = (target.get("RetryPolicy") or {}).get("MaximumRetryAttempts")
    max_retries = len(ASYNC_RETRY_DELAYS_SECONDS) if retries is None else int(retries)
    event_copy = dict(event)

    def on_failure(error_type: str, message: str, made: int) -> None:
        _dead_letter(
            rule, target, event_copy, error_code=error_type, error_message=message, retries=made
        )

    invoke_async(state, target["Arn"], payload, on_failure, min(max_retries, 185))


def patches() -> list[Patch]:
    return [
        Patch(
            "moto.events.models:Rule",
            "send_to_targets",
            _make_send_to_targets,
            params("self", "original_event", "transform_input"),
        )
    ]
