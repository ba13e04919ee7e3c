"""One Lambda function of the catalog: its role, its encrypted log group, the function."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from careflow.catalog import FunctionSpec
from stacks.compliance import acknowledge
from stacks.config import EnvironmentConfig
from stacks.constructs.execution_role import ExecutionRole
from stacks.constructs.layers import ARCHITECTURE, RUNTIME

_SYNCHRONOUS_ONLY = (
    "Invoked only synchronously (RequestResponse) by Step Functions: a Lambda DLQ applies "
    "to asynchronous invocations and would never receive anything. Failures return to the "
    "state machine, whose Retry/Catch handle them."
)

_LOAD_BOUNDED_BY = (
    "load is bounded upstream (EventBridge retries with DLQ, Step Functions Retry with backoff)."
)


class CatalogFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        config: EnvironmentConfig,
        code: lambda_.Code,
        layers: Sequence[lambda_.ILayerVersion],
        environment: Mapping[str, str],
        logs_key: kms.IKey,
        dead_letter_queue: sqs.IQueue | None,
        messaging_key: kms.IKey,
        role_name: str | None = None,
        synchronous_only: str = _SYNCHRONOUS_ONLY,
        load_bounded_by: str = _LOAD_BOUNDED_BY,
    ) -> None:
        """``synchronous_only``: why a function without a DLQ needs none;
        ``load_bounded_by``: what bounds its load without reserved concurrency."""
        super().__init__(scope, construct_id)
        self.spec = spec
        name = f"{config.prefix}-{spec.name}"
        self.role = ExecutionRole(
            self,
            "ExecutionRole",
            service="lambda.amazonaws.com",
            description=f"{name} function",
            path=config.role_path,
            role_name=role_name,
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{name}",
            retention=config.log_retention_period,
            encryption_key=logs_key,
            removal_policy=config.removal_policy,
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=name,
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=spec.handler,
            code=code,
            layers=list(layers),
            timeout=Duration.seconds(spec.timeout_seconds),
            memory_size=spec.memory_mb,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            environment=dict(environment),
            dead_letter_queue=dead_letter_queue,
            role=self.role.immutable,
        )
        self.role.is_required_by(self.function)
        self.role.write_logs(self.log_group)
        self.role.write_traces()
        if dead_letter_queue is not None:
            self.role.send_messages("DeadLetterQueue", dead_letter_queue, messaging_key)
        else:
            acknowledge(self.function, "HIPAA.Security-LambdaDLQ", synchronous_only)
        self._acknowledge_platform_choices(load_bounded_by)

    def _acknowledge_platform_choices(self, load_bounded_by: str) -> None:
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            f"Pinned to {RUNTIME.name}, the newest runtime in the band the team supports "
            "(3.12-3.13) while the local cloud runs the same code on 3.11; the dependency "
            "layer is built for exactly this version. Moving to a newer runtime is a "
            "deliberate change of one constant (stacks/constructs/layers.py RUNTIME).",
        )
        acknowledge(
            self.function,
            "HIPAA.Security-LambdaConcurrency",
            "No reserved concurrency: a reservation is carved out of the account's pool and "
            f"fails to deploy on accounts with the default low quota; {load_bounded_by}",
        )
        acknowledge(
            self.function,
            "HIPAA.Security-LambdaInsideVPC",
            "The functions reach only AWS APIs (IAM-authorized, TLS) and partner FHIR/ERP "
            "endpoints over HTTPS, and hold no network-reachable resource. A VPC would add "
            "NAT/interface endpoints without reducing exposure; revisit when a connector "
            "needs private connectivity (e.g. an on-premises EHR).",
        )
