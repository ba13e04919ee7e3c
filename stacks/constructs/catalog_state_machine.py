"""One workflow of the catalog as a state machine: ASL from its file, substitutions from code."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from careflow.catalog import Workflow
from careflow.kit import registry
from stacks.config import EnvironmentConfig
from stacks.constructs.execution_role import LOG_DELIVERY, ExecutionRole
from stacks.constructs.state_table import StateTable
from stacks.permissions import WORKFLOW_RECORDS

OPTIMIZED_INTEGRATION = "arn:aws:states:::"


def service_integrations(definition: Any) -> set[str]:
    """The optimized integrations an ASL calls, e.g. ``{"events:putEvents", "lambda:invoke"}``."""
    found: set[str] = set()
    if isinstance(definition, dict):
        resource = definition.get("Resource")
        if isinstance(resource, str) and resource.startswith(OPTIMIZED_INTEGRATION):
            found.add(resource.removeprefix(OPTIMIZED_INTEGRATION).split(".", 1)[0])
        for value in definition.values():
            found |= service_integrations(value)
    elif isinstance(definition, list):
        for item in definition:
            found |= service_integrations(item)
    return found


def put_event_sources(definition: Any) -> set[str]:
    """The ``Source`` of every entry its ``events:putEvents`` states put on the bus.

    A source chosen at run time (``Source.$``) could be any, so it is refused."""
    found: set[str] = set()
    if isinstance(definition, dict):
        if definition.get("Resource") == f"{OPTIMIZED_INTEGRATION}events:putEvents":
            for entry in definition.get("Parameters", {}).get("Entries", []):
                if "Source" not in entry:
                    raise ValueError(f"events:putEvents entry without a fixed Source: {entry}")
                found.add(entry["Source"])
        for value in definition.values():
            found |= put_event_sources(value)
    elif isinstance(definition, list):
        for item in definition:
            found |= put_event_sources(item)
    return found


class CatalogStateMachine(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        workflow: Workflow,
        name: str,
        config: EnvironmentConfig,
        function_arns: Mapping[str, str],
        state: StateTable,
        event_bus_name: str,
        event_bus_arn: str,
        logs_key: kms.IKey,
        execution_data_key: kms.IKey,
        state_machine_arns: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.workflow = workflow
        # The same render function as the local cloud: macros expanded, placeholders filled
        # (with tokens here); it raises if a placeholder has no value.
        self.definition = workflow.render(
            function_arns,
            event_bus_name=event_bus_name,
            table_name=state.table.table_name,
            state_machine_arns=state_machine_arns,
        )

        self.role = ExecutionRole(
            self,
            "ExecutionRole",
            service="states.amazonaws.com",
            description=f"{name} workflow",
            path=config.role_path,
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            # /aws/vendedlogs/ keeps CloudWatch Logs' resource policy from growing per group.
            log_group_name=f"/aws/vendedlogs/states/{name}",
            retention=config.log_retention_period,
            encryption_key=logs_key,
            removal_policy=config.removal_policy,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType[workflow.type],
            definition_body=sfn.DefinitionBody.from_string(json.dumps(self.definition)),
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ALL,
                include_execution_data=False,  # inputs/outputs may carry PHI
            ),
            tracing_enabled=True,
            role=self.role.immutable,
            # A reference, not the key: CDK would add an unconditioned ``kms:Decrypt*`` for
            # log delivery to the key policy (keys.py writes a narrower one) and its role
            # statements to an immutable role (they are written out below instead).
            encryption_configuration=sfn.CustomerManagedEncryptionConfiguration(
                kms.Key.from_key_arn(self, "ExecutionDataKey", execution_data_key.key_arn),
                Duration.minutes(5),
            ),
        )
        self.role.is_required_by(self.state_machine)
        self._grant(workflow, name, function_arns, state, event_bus_arn, state_machine_arns)
        self.role.use_execution_data_key(
            execution_data_key,
            [state_machine_arns[workflow.id], *(state_machine_arns[c] for c in workflow.children)],
        )
        self.role.deliver_encrypted_logs(execution_data_key)

    def _grant(
        self,
        workflow: Workflow,
        name: str,
        function_arns: Mapping[str, str],
        state: StateTable,
        event_bus_arn: str,
        state_machine_arns: Mapping[str, str],
    ) -> None:
        self.role.invoke_functions(function_arns[fn.name] for fn in workflow.functions)
        if workflow.children:
            prefix = name.removesuffix(workflow.name)
            self.role.start_child_executions(
                [state_machine_arns[child] for child in workflow.children],
                [prefix + registry.workflow(child).name for child in workflow.children],
            )
        expanded = workflow.expanded()
        integrations = service_integrations(expanded)
        if any(i.startswith("dynamodb:") for i in integrations):
            self.role.table_items(state.table.table_arn, [WORKFLOW_RECORDS], state.key)
        if "events:putEvents" in integrations:
            self.role.put_events(event_bus_arn, sorted(put_event_sources(expanded)))
        self.role.write_traces()
        self.role.allow_any_resource(
            "LogDelivery",
            LOG_DELIVERY,
            reason=(
                "Step Functions logging goes through CloudWatch Logs vended log delivery, whose "
                "APIs (CreateLogDelivery, PutResourcePolicy, DescribeLogGroups, ...) do not "
                "support resource-level permissions; AWS documents Resource '*' for them."
            ),
        )
