"""The ops topic, the dashboards (one per workflow, one executive) and the alarms."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from stacks.api_stack import ApiStack
from stacks.config import EnvironmentConfig
from stacks.constructs.api_alarms import ApiAlarms
from stacks.constructs.hl7_alarms import Hl7Alarms
from stacks.constructs.model_drift_alarms import ModelDriftAlarms
from stacks.constructs.monitoring import CareflowMonitoring, Monitored
from stacks.constructs.operations import OpsTopic
from stacks.data_stack import DataStack
from stacks.events_stack import EventsStack
from stacks.hl7_stack import Hl7Stack
from stacks.workflows_stack import WorkflowsStack


class ObservabilityStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        data: DataStack,
        workflows: WorkflowsStack,
        events: EventsStack,
        api: ApiStack | None = None,
        hl7: Hl7Stack | None = None,
        **kwargs: Any,
    ) -> None:
        # Nine dashboards and ~200 alarms: unindented, the template stays well under 1 MB.
        kwargs.setdefault("suppress_template_indentation", True)
        super().__init__(scope, construct_id, **kwargs)
        monitored = Monitored(
            workflows={
                wf_id: (sm.workflow, sm.state_machine)
                for wf_id, sm in workflows.state_machines.items()
            },
            functions={name: fn.function for name, fn in workflows.functions.items()},
            queues={
                "parked": data.parked.queue,
                "parked dlq": data.parked.dead_letter_queue,
                **{
                    f"{name} async dlq": fn.function.dead_letter_queue
                    for name, fn in workflows.functions.items()
                    if fn.function.dead_letter_queue is not None
                },
                **{f"{route} dlq": q for route, q in events.routing.dead_letter_queues.items()},
            },
            table=data.state.table,
            api_stage=api.api.stage if api is not None else None,
        )
        self.topic = OpsTopic(
            self,
            "Ops",
            name=f"{config.prefix}-ops",
            key=data.keys.messaging,
            email=config.alarm_email,
        ).topic
        self.monitoring = CareflowMonitoring(
            self, "Monitoring", prefix=config.prefix, topic=self.topic, monitored=monitored
        )
        self.model_drift_alarms = ModelDriftAlarms(self, "ModelDriftAlarms", topic=self.topic)
        self.api_alarms = None
        if api is not None:
            self.api_alarms = ApiAlarms(
                self,
                "ApiAlarms",
                topic=self.topic,
                stage=api.api.stage,
                function=api.function.function,
                throttled=api.api.throttled,
                web_acl_name=api.api.web_acl.name or f"{config.prefix}-api",
            )
        self.hl7_alarms = None
        if hl7 is not None:
            self.hl7_alarms = Hl7Alarms(self, "Hl7Alarms", topic=self.topic, listener=hl7.listener)
