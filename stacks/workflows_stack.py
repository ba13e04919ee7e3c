"""The catalog's Lambda functions and state machines, and who may call what."""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from careflow.catalog import (
    CATALOG,
    EXECUTION_STATUS,
    INTAKE,
    MODEL_DRIFT,
    FunctionSpec,
    Workflow,
    all_functions,
)
from stacks.config import EnvironmentConfig
from stacks.constructs.catalog_function import CatalogFunction
from stacks.constructs.catalog_state_machine import CatalogStateMachine
from stacks.constructs.layers import CareflowLayers
from stacks.constructs.operations import METRICS_NAMESPACE, SERVICE_NAME
from stacks.constructs.queues import encrypted_queue
from stacks.data_stack import DataStack
from stacks.permissions import access_of, bedrock_grant

LAMBDAS_DIR = "lambdas"


def event_targets() -> set[str]:
    """Functions EventBridge invokes (asynchronously): they get a DLQ and the parking queue."""
    targets = {INTAKE.name} if any(wf.triggers for wf in CATALOG) else set()
    targets.add(EXECUTION_STATUS.name)  # Step Functions' status changes, on the default bus
    return targets | {sub.function for wf in CATALOG for sub in wf.subscriptions}


def async_invoked() -> set[str]:
    """Functions invoked asynchronously (they get an async DLQ): the event targets, and the
    daily drift check (an EventBridge schedule; it parks nothing)."""
    return event_targets() | {MODEL_DRIFT.name}


class WorkflowsStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        data: DataStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self._data = data
        # Deterministic names and ARNs: the functions that start or resume executions refer
        # to the state machines, and the state machines to the functions, without a cycle.
        self.event_bus_arn = self.format_arn(
            service="events", resource="event-bus", resource_name=config.event_bus_name
        )
        self.state_machine_arns = {wf.id: self._state_machine_arn(wf) for wf in CATALOG}

        layers = CareflowLayers(self, "Layers", build=config.layer_build)
        code = lambda_.Code.from_asset(LAMBDAS_DIR, exclude=["**/__pycache__", "**/*.pyc"])
        self.functions: dict[str, CatalogFunction] = {
            spec.name: self._function(spec, code, layers.all) for spec in all_functions().values()
        }
        # The triage models' drift check, once a day (its alarms: ObservabilityStack).
        self.model_drift_schedule = events.Rule(
            self,
            "ModelDriftDaily",
            description="runs the triage models' daily drift check (ModelDriftPsi)",
            schedule=events.Schedule.rate(Duration.days(1)),
            targets=[targets.LambdaFunction(self.functions[MODEL_DRIFT.name].function)],
        )
        function_arns = {name: fn.function.function_arn for name, fn in self.functions.items()}
        self.state_machines: dict[str, CatalogStateMachine] = {
            wf.id: CatalogStateMachine(
                self,
                wf.name,
                workflow=wf,
                name=self.state_machine_name(wf),
                config=config,
                function_arns=function_arns,
                state=data.state,
                event_bus_name=config.event_bus_name,
                event_bus_arn=self.event_bus_arn,
                logs_key=data.keys.logs,
                execution_data_key=data.keys.workflows,
                state_machine_arns=self.state_machine_arns,
            )
            for wf in CATALOG
        }

    def state_machine_name(self, workflow: Workflow) -> str:
        return f"{self.config.prefix}-{workflow.name}"

    def _state_machine_arn(self, workflow: Workflow) -> str:
        return self.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=self.state_machine_name(workflow),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _function(
        self, spec: FunctionSpec, code: lambda_.Code, layers: list[lambda_.ILayerVersion]
    ) -> CatalogFunction:
        data, config = self._data, self.config
        is_event_target = spec.name in event_targets()
        environment = {
            "TABLE_NAME": data.state.table.table_name,
            "EVENT_BUS_NAME": config.event_bus_name,
            "PARKED_QUEUE_URL": data.parked.queue.queue_url,
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            **config.connector_environment,
            **spec.environment(),  # a step function names its step
        }
        bedrock = bedrock_grant(spec, config.bedrock_model_id)
        if bedrock:
            environment["CAREFLOW_BEDROCK_MODEL_ID"] = str(config.bedrock_model_id)
        if spec.name == INTAKE.name:
            environment["STATE_MACHINE_ARNS"] = self.to_json_string(self.state_machine_arns)
        dead_letter_queue = (
            encrypted_queue(
                self,
                f"{spec.name}DeadLetterQueue",
                queue_name=f"{config.prefix}-{spec.name}-async-dlq",
                key=data.keys.messaging,
            )
            if spec.name in async_invoked()
            else None
        )
        function = CatalogFunction(
            self,
            spec.name,
            spec=spec,
            config=config,
            code=code,
            layers=layers,
            environment=environment,
            logs_key=data.keys.logs,
            dead_letter_queue=dead_letter_queue,
            messaging_key=data.keys.messaging,
        )
        role = function.role
        access = access_of(spec)
        role.table_items(data.state.table.table_arn, access.items, data.keys.state)
        role.put_events(self.event_bus_arn, access.event_sources)
        if bedrock:
            model_arn = self.format_arn(
                service="bedrock",
                account="",
                resource="foundation-model",
                resource_name=str(config.bedrock_model_id),
            )
            role.allow("InvokeBedrockModel", bedrock, [model_arn])
        if is_event_target:
            role.send_messages("ParkEvents", data.parked.queue, data.keys.messaging)
        if spec.name == INTAKE.name:
            role.start_executions(self.state_machine_arns.values())
            role.stop_executions([self.state_machine_name(wf) for wf in CATALOG])
        if spec.answers_task_tokens:
            role.answer_task_tokens(self.state_machine_arns.values())
        started = [self.state_machine_arns[w] for w in spec.starts_workflows]
        if started:  # a step that starts other workflows' executions
            role.start_executions(started)
        if spec.name == INTAKE.name or spec.answers_task_tokens:
            role.use_execution_data_key(data.keys.workflows, self.state_machine_arns.values())
        elif started:
            role.use_execution_data_key(data.keys.workflows, started)
        return function
