"""State: the KMS keys, the DynamoDB table and the parked-events queue."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.constructs.keys import EncryptionKeys
from stacks.constructs.queues import QueueWithDeadLetter
from stacks.constructs.state_table import StateTable


class DataStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.keys = EncryptionKeys(self, "Keys", config=config)
        self.state = StateTable(self, "State", key=self.keys.state, config=config)
        # Events that cannot be processed (invalid, unknown workflow) are parked with a reason.
        self.parked = QueueWithDeadLetter(
            self, "Parked", queue_name=f"{config.prefix}-parked", key=self.keys.messaging
        )
