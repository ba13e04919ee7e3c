"""Customer-managed KMS keys, one per data class, rotation on."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.config import EnvironmentConfig


class EncryptionKeys(Construct):
    """``state`` (table, backups), ``messaging`` (SQS, SNS) and ``logs`` (CloudWatch Logs).

    Besides the account root (so IAM policies can grant use), each key policy trusts only
    the AWS services that must encrypt with it on our behalf, limited to this account.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        stack = Stack.of(self)
        self.state = self._key("State", "workflow state table and its backups")
        self.messaging = self._key("Messaging", "SQS queues (DLQs, parked events) and SNS topics")
        self.logs = self._key("Logs", "CloudWatch Logs groups of functions and state machines")

        # EventBridge writes to the encrypted target DLQs; CloudWatch alarms publish to SNS.
        self.messaging.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventBridgeAndCloudWatchToUseTheKey",
                principals=[
                    iam.ServicePrincipal("events.amazonaws.com"),
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        logs_arn_pattern = stack.format_arn(service="logs", resource="log-group", resource_name="*")
        self.logs.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsForThisAccountsLogGroups",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": logs_arn_pattern}},
            )
        )

    def _key(self, name: str, purpose: str) -> kms.Key:
        return kms.Key(
            self,
            name,
            alias=f"alias/{self._config.prefix}-{name.lower()}",
            description=f"careflow {self._config.name}: {purpose}",
            enable_key_rotation=True,
            pending_window=Duration.days(30 if self._config.retain_data else 7),
            removal_policy=self._config.removal_policy,
        )
