"""HL7 v2 over MLLP (``careflow-<env>-hl7``), only when ``careflow:hl7.mllp_enabled``:
the listener's VPC, Network Load Balancer and Fargate service (stacks/constructs/mllp_listener.py).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.constructs.mllp_listener import MllpListener
from stacks.data_stack import DataStack
from stacks.workflows_stack import WorkflowsStack


class Hl7Stack(Stack):
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
        self.listener = MllpListener(
            self,
            "Mllp",
            config=config,
            table_arn=data.state.table.table_arn,
            table_name=data.state.table.table_name,
            state_key=data.keys.state,
            logs_key=data.keys.logs,
            bus_arn=workflows.event_bus_arn,
        )
