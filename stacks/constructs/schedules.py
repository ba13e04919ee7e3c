"""EventBridge Scheduler schedules from the catalog (``Workflow.schedules``): each puts its
event on the careflow bus through the publisher role of the event's source (the bus
accepts a partner source from that role only), and a trigger of the workflow starts it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from careflow.kit.spec import Schedule


class Schedules(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus: events.IEventBus,
        schedules: Sequence[Schedule],
        publisher_roles: Mapping[str, iam.IRole],
        prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.schedules: dict[str, scheduler.CfnSchedule] = {}
        for sch in schedules:
            role = publisher_roles.get(sch.source)
            if role is None:
                raise ValueError(f"{sch.name}: no publisher role puts {sch.source} events")
            self.schedules[sch.name] = scheduler.CfnSchedule(
                self,
                sch.name,
                name=f"{prefix}-{sch.name}"[:64],
                description=sch.description or f"puts {sch.detail_type} for {sch.facility_id}",
                schedule_expression=sch.expression,
                schedule_expression_timezone=sch.time_zone,
                flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=bus.event_bus_arn,
                    role_arn=role.role_arn,
                    input=json.dumps(sch.detail()),
                    event_bridge_parameters=scheduler.CfnSchedule.EventBridgeParametersProperty(
                        detail_type=sch.detail_type, source=sch.source
                    ),
                    retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                        maximum_event_age_in_seconds=3600, maximum_retry_attempts=5
                    ),
                ),
            )
