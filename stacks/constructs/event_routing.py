"""EventBridge rules on the careflow bus (and the default bus, for AWS services' events),
each target with retries and a DLQ of its own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.queues import event_target_dead_letter_queue

RETRY_ATTEMPTS = 8
MAX_EVENT_AGE = Duration.hours(24)


def event_pattern(pattern: Mapping[str, Any]) -> events.EventPattern:
    """A catalog pattern (``Trigger.pattern()``, ``Subscription.pattern()``) as an L2 pattern.

    A pattern with ``$or`` (the catch-all's) has no L2 form: it gets a placeholder here,
    and :meth:`EventRouting.route` writes the whole pattern on the CfnRule."""
    if "$or" in pattern:
        return events.EventPattern(source=["careflow"])  # replaced whole on the CfnRule
    unsupported = set(pattern) - {"source", "detail-type", "detail"}
    if unsupported:
        raise ValueError(f"event pattern fields not mapped yet: {sorted(unsupported)}")
    return events.EventPattern(
        source=pattern["source"],
        detail_type=pattern["detail-type"],
        detail=pattern.get("detail"),
    )


class EventRouting(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus: events.IEventBus,
        key: kms.IKey,
        queue_name_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self._bus = bus
        self._key = key
        self._prefix = queue_name_prefix
        self.dead_letter_queues: dict[str, sqs.Queue] = {}

    def route(
        self,
        route_id: str,
        *,
        description: str,
        pattern: Mapping[str, Any],
        function: lambda_.IFunction,
        event: events.RuleTargetInput | None = None,
        bus: events.IEventBus | None = None,
    ) -> events.Rule:
        """A rule on the careflow bus (or ``bus``: the account's default bus, where AWS
        services announce their events) to ``function``, with retries and its own DLQ."""
        dlq = event_target_dead_letter_queue(
            self,
            f"{route_id}DeadLetterQueue",
            queue_name=f"{self._prefix}-{route_id}-dlq",
            key=self._key,
        )
        self.dead_letter_queues[route_id] = dlq
        rule = events.Rule(
            self,
            route_id,
            event_bus=bus or self._bus,
            description=description,
            event_pattern=event_pattern(pattern),
            targets=[
                targets.LambdaFunction(
                    function,
                    event=event,
                    dead_letter_queue=dlq,
                    retry_attempts=RETRY_ATTEMPTS,
                    max_event_age=MAX_EVENT_AGE,
                )
            ],
        )
        if "$or" in pattern:
            cfn_rule = rule.node.default_child
            assert isinstance(cfn_rule, events.CfnRule)
            # An override merges into the placeholder: drop its field, then set the pattern's.
            cfn_rule.add_property_deletion_override("EventPattern.source")
            for key, value in pattern.items():
                cfn_rule.add_property_override(f"EventPattern.{key}", value)
        return rule
