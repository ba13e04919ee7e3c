"""The ``/v1`` partner API: its function, who may call it (Cognito), the REST API, usage plans
and WAF. Built from careflow.api.contract; the handler is ``lambdas/api.py`` (``api.handler``).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from careflow.catalog import CATALOG
from careflow.kit.spec import FunctionSpec
from stacks.config import EnvironmentConfig
from stacks.constructs.catalog_function import CatalogFunction
from stacks.constructs.layers import CareflowLayers
from stacks.constructs.operations import METRICS_NAMESPACE, SERVICE_NAME
from stacks.constructs.partner_api import PartnerApi
from stacks.constructs.partner_auth import PartnerAuth
from stacks.data_stack import DataStack
from stacks.permissions import API_ACCESS
from stacks.workflows_stack import LAMBDAS_DIR, WorkflowsStack

API_FUNCTION = FunctionSpec(
    name="Api",
    handler="api.handler",
    description="The /v1 partner API: workflows, tasks, events, payer notifications, policies",
    timeout_seconds=29,  # API Gateway's integration timeout
    memory_mb=1024,
)
SEND_TASK_SUCCESS = ("states:SendTaskSuccess",)


def api_role_name(config: EnvironmentConfig) -> str:
    """Named, so the bus policy (events stack, deployed first) can let it relay partner events."""
    return f"{config.prefix}-api"


def api_role_arn(stack: Stack, config: EnvironmentConfig) -> str:
    return stack.format_arn(
        service="iam",
        region="",
        resource="role",
        resource_name=f"{config.role_path.strip('/')}/{api_role_name(config)}",
    )


class ApiStack(Stack):
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
        if config.api is None:
            raise ValueError("cdk.json has no careflow:api settings")
        api = config.api
        layers = CareflowLayers(self, "Layers", build=config.layer_build)
        code = lambda_.Code.from_asset(LAMBDAS_DIR, exclude=["**/__pycache__", "**/*.pyc"])
        state_machine_arns = {
            wf.id: self.format_arn(
                service="states",
                resource="stateMachine",
                resource_name=workflows.state_machine_name(wf),
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for wf in CATALOG
        }
        self.function = CatalogFunction(
            self,
            API_FUNCTION.name,
            spec=API_FUNCTION,
            config=config,
            code=code,
            layers=layers.all,
            environment={
                "TABLE_NAME": data.state.table.table_name,
                "EVENT_BUS_NAME": config.event_bus_name,
                "STATE_MACHINE_ARNS": self.to_json_string(state_machine_arns),
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                **config.connector_environment,
            },
            logs_key=data.keys.logs,
            dead_letter_queue=None,
            messaging_key=data.keys.messaging,
            role_name=api_role_name(config),
            synchronous_only=(
                "Invoked only synchronously by API Gateway (Lambda proxy integration): a "
                "Lambda DLQ applies to asynchronous invocations and would never receive "
                "anything. A failure is the caller's 5xx, and partners retry with the same "
                "Idempotency-Key."
            ),
            load_bounded_by=(
                "load is bounded upstream by the stage throttle, each partner's usage plan "
                "(rate, burst, daily quota) and the WAF rate limit per IP."
            ),
        )
        role = self.function.role
        role.table_items(data.state.table.table_arn, API_ACCESS.items, data.keys.state)
        role.put_events(workflows.event_bus_arn, API_ACCESS.event_sources)
        role.start_executions(state_machine_arns.values())
        role.answer_task_tokens(state_machine_arns.values(), SEND_TASK_SUCCESS)
        role.use_execution_data_key(data.keys.workflows, state_machine_arns.values())

        self.auth = PartnerAuth(self, "PartnerAuth", config=config, api=api)
        self.api = PartnerApi(
            self,
            "PartnerApi",
            config=config,
            api=api,
            function=self.function.function,
            user_pool=self.auth.pool,
            logs_key=data.keys.logs,
        )
