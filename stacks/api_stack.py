"""The ``/v1`` partner API: its function, who may call it (Cognito), the REST API, usage plans
and WAF. Built from careflow.api.contract; the handler is ``lambdas/api.py`` (``api.handler``).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from careflow.api.cors import ORIGINS_ENV
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
TOKEN_CLAIMS_FUNCTION = FunctionSpec(
    name="TokenClaims",
    handler="token_claims.handler",
    description="Cognito pre token generation (V3): custom:facilities in access tokens",
    timeout_seconds=5,  # Cognito waits 5 s for a trigger
    memory_mb=256,
)
SEND_TASK_SUCCESS = ("states:SendTaskSuccess",)


def partner_facilities_parameter(config: EnvironmentConfig) -> str:
    """The SSM parameter with the partners' facilities by client id (known at deploy)."""
    return f"/{config.prefix}/api/partner-facilities"


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
                ORIGINS_ENV: ",".join(api.cors_origins),
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

        parameter = partner_facilities_parameter(config)
        self.token_claims = CatalogFunction(
            self,
            TOKEN_CLAIMS_FUNCTION.name,
            spec=TOKEN_CLAIMS_FUNCTION,
            config=config,
            code=code,
            layers=layers.all,
            environment={
                "PARTNER_FACILITIES_PARAMETER": parameter,
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            },
            logs_key=data.keys.logs,
            dead_letter_queue=None,
            messaging_key=data.keys.messaging,
            synchronous_only=(
                "Invoked only synchronously by Cognito before it issues a token: a Lambda DLQ "
                "applies to asynchronous invocations and would never receive anything. A "
                "failure is a failed token request, which the client retries."
            ),
            load_bounded_by=(
                "it runs once per token issued, and Cognito's token endpoint quotas bound that."
            ),
        )
        # By name, not by the parameter's construct: the parameter names the app clients,
        # which name the pool, which names this function (a cycle otherwise).
        self.token_claims.role.allow(
            "ReadPartnerFacilities",
            ["ssm:GetParameter"],
            [self.format_arn(service="ssm", resource="parameter", resource_name=parameter[1:])],
        )
        self.auth = PartnerAuth(
            self,
            "PartnerAuth",
            config=config,
            api=api,
            token_claims=self.token_claims.function,
            partner_facilities_parameter=parameter,
        )
        self.api = PartnerApi(
            self,
            "PartnerApi",
            config=config,
            api=api,
            function=self.function.function,
            user_pool=self.auth.pool,
            logs_key=data.keys.logs,
        )
