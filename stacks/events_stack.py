"""The careflow bus, its archive, and the rules that start and resume workflows."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from constructs import Construct

from careflow.catalog import CATALOG, EXECUTION_STATUS, INTAKE, Subscription
from careflow.domain.executions import execution_status_pattern
from careflow.events.routing import UNROUTED_ROUTE, unrouted_pattern
from stacks.api_stack import api_role_arn
from stacks.config import EnvironmentConfig
from stacks.constructs.bus_access import BusAccess
from stacks.constructs.event_routing import EventRouting
from stacks.constructs.mllp_listener import mllp_role_arn
from stacks.constructs.schedules import Schedules
from stacks.data_stack import DataStack
from stacks.workflows_stack import WorkflowsStack


class EventsStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        data: DataStack,
        workflows: WorkflowsStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # The key by reference, for the bus and its archive: CDK's archive would write the
        # bus's ARN into the data stack's key policy (a cycle). keys.py writes the policy
        # whole, EventBridge limited to this bus's encryption context.
        events_key = kms.Key.from_key_arn(self, "EventsKey", data.keys.events.key_arn)
        self.bus = events.EventBus(
            self, "Bus", event_bus_name=config.event_bus_name, kms_key=events_key
        )
        self.access = BusAccess(
            self,
            "Access",
            bus=self.bus,
            bus_name=config.event_bus_name,
            prefix=config.prefix,
            careflow_role_arn_patterns=[
                self.format_arn(
                    service="iam",
                    region="",
                    resource="role",
                    resource_name=f"{config.role_path.strip('/')}/*",
                )
            ],
            # The API relays partner events; the MLLP listener (when enabled) puts the
            # events of the HL7 v2 feeds it received from the interface engine.
            relay_role_arns=[
                api_role_arn(self, config),
                *([mllp_role_arn(self, config)] if config.hl7.mllp_enabled else []),
            ],
            scheduled_sources=sorted({s.source for wf in CATALOG for s in wf.schedules}),
        )
        # events.Archive, not bus.archive(), which drops kms_key (aws-cdk-lib 2.275).
        events.Archive(
            self,
            "Archive",
            source_event_bus=self.bus,
            archive_name=f"{config.event_bus_name}-archive",
            description="every event on the careflow bus, for replay",
            event_pattern=events.EventPattern(account=[self.account]),
            retention=Duration.days(config.archive_retention_days),
            kms_key=events_key,
        )
        # The target DLQs live here, next to their rules: CDK writes each rule's ARN into its
        # DLQ's resource policy, which would be a cycle if the queues were in the data stack.
        self.routing = EventRouting(
            self, "Routing", bus=self.bus, key=data.keys.messaging, queue_name_prefix=config.prefix
        )
        intake = workflows.functions[INTAKE.name].function
        for wf in CATALOG:
            for index, trigger in enumerate(wf.triggers, start=1):
                self.routing.route(
                    f"Start{wf.name}{index}",
                    description=f"{trigger.detail_type} from {trigger.source} starts {wf.id}",
                    pattern=trigger.pattern(),
                    function=intake,
                    event=events.RuleTargetInput.from_object(
                        {"workflow_id": wf.id, "event": events.EventField.from_path("$")}
                    ),
                )
        for sub in _subscriptions():
            self.routing.route(
                f"{sub.function}On{sub.detail_type.replace('.', '')}",
                description=f"{sub.detail_type} from {sub.source} goes to {sub.function}",
                pattern=sub.pattern(),
                function=workflows.functions[sub.function].function,
            )
        # Pre-shift checks and other timed starts (EventBridge Scheduler, in a time zone).
        scheduled = [s for wf in CATALOG for s in wf.schedules]
        if scheduled:
            self.schedules = Schedules(
                self,
                "Schedules",
                bus=self.bus,
                schedules=scheduled,
                publisher_roles=self.access.publisher_roles,
                prefix=config.prefix,
            )
        # Step Functions announces an execution's end on the default bus: a careflow
        # execution that failed, timed out or was aborted is marked on its instance.
        self.execution_status = self.routing.route(
            "ExecutionEndedBadly",
            description="careflow executions that failed, timed out or were aborted",
            pattern=execution_status_pattern(
                [workflows.state_machine_arns[wf.id] for wf in CATALOG]
            ),
            function=workflows.functions[EXECUTION_STATUS.name].function,
            bus=events.EventBus.from_event_bus_name(self, "DefaultBus", "default"),
        )
        # The complement of every rule above: intake records what no workflow takes.
        self.unrouted = self.routing.route(
            "Unrouted",
            description="every event no workflow takes, recorded by intake as unrouted",
            pattern=unrouted_pattern(CATALOG),
            function=intake,
            event=events.RuleTargetInput.from_object(
                {"route": UNROUTED_ROUTE, "event": events.EventField.from_path("$")}
            ),
        )


def _subscriptions() -> list[Subscription]:
    """Each (source, detail-type, function) once, however many workflows subscribe to it."""
    unique: dict[tuple[str, str, str], Subscription] = {}
    for wf in CATALOG:
        for sub in wf.subscriptions:
            unique.setdefault((sub.source, sub.detail_type, sub.function), sub)
    return list(unique.values())
