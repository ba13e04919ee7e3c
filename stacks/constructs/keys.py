"""Customer-managed KMS keys, one per data class, rotation on, administration apart from use.

Every key policy is written out here (CDK's default grants the account ``kms:*``):

- ``KeyAdministration``: the account may manage the key (describe, policy, rotation,
  tags, enable/disable, schedule deletion) but not encrypt or decrypt with it. IAM decides
  who: the ``careflow-<env>-key-admin`` role, and the CloudFormation deployment role, which
  KMS requires to keep ``PutKeyPolicy`` (it refuses a policy that locks its caller out).
- ``UseThroughServiceOnly``: this account's roles may use the key only through the AWS
  service whose data it protects (``kms:ViaService``), so a role granted ``kms:Decrypt`` in
  IAM still cannot decrypt a ciphertext it took out of that service.
- the service principals that encrypt on careflow's behalf, each limited to this account
  and, where the service sends one, to careflow's own resources (encryption context or
  source ARN).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.config import EnvironmentConfig

# Management without use: no Encrypt, Decrypt, ReEncrypt*, GenerateDataKey*, Sign, Verify.
KEY_ADMINISTRATION = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
KEY_USE = (
    "kms:CreateGrant",  # DynamoDB and AWS Backup hold grants for the table and its backups
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
CRYPTOGRAPHIC = frozenset(KEY_USE) - {"kms:DescribeKey", "kms:CreateGrant"}
SERVICE_USE = ("kms:Decrypt", "kms:GenerateDataKey")


class EncryptionKeys(Construct):
    """``state`` (table, backups), ``messaging`` (SQS, SNS), ``logs`` (CloudWatch Logs),
    ``events`` (the bus and its archive) and ``workflows`` (Step Functions execution data)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        stack = self._stack = Stack.of(self)
        self.admin_role = iam.Role(
            self,
            "AdminRole",
            role_name=f"{config.prefix}-key-admin",
            assumed_by=iam.AccountRootPrincipal(),
            description="manages careflow's KMS keys; cannot encrypt or decrypt with them",
        )
        region = stack.region
        self.state = self._key(
            "State",
            "workflow state table and its backups",
            via=[f"dynamodb.{region}.amazonaws.com", f"backup.{region}.amazonaws.com"],
        )
        self.messaging = self._key(
            "Messaging",
            "SQS queues (DLQs, parked events) and SNS topics",
            via=[f"sqs.{region}.amazonaws.com", f"sns.{region}.amazonaws.com"],
        )
        # Read through CloudWatch Logs only, which decrypts as its service principal.
        self.logs = self._key("Logs", "CloudWatch Logs groups of functions and state machines")
        self.events = self._key(
            "Events",
            "the careflow event bus and its archive",
            via=[f"events.{region}.amazonaws.com"],
        )
        self.workflows = self._key(
            "Workflows",
            "Step Functions execution data (inputs, outputs, task tokens' payloads)",
            via=[f"states.{region}.amazonaws.com"],
        )
        iam.ManagedPolicy(
            self,
            "AdminPolicy",
            roles=[self.admin_role],
            statements=[
                iam.PolicyStatement(
                    sid="ManageCareflowKeys",
                    actions=list(KEY_ADMINISTRATION),
                    resources=[k.key_arn for k in self.all],
                )
            ],
        )
        self._service_principals(config)

    @property
    def all(self) -> list[kms.Key]:
        return [self.state, self.messaging, self.logs, self.events, self.workflows]

    def _service_principals(self, config: EnvironmentConfig) -> None:
        stack = self._stack
        this_account = {"StringEquals": {"aws:SourceAccount": stack.account}}
        # EventBridge writes to the encrypted target DLQs; CloudWatch alarms publish to SNS.
        self.messaging.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventBridgeAndCloudWatchToUseTheKey",
                principals=[
                    iam.ServicePrincipal("events.amazonaws.com"),
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                ],
                actions=list(SERVICE_USE),
                resources=["*"],
                conditions=this_account,
            )
        )
        logs_arn_pattern = stack.format_arn(service="logs", resource="log-group", resource_name="*")
        self.logs.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsForThisAccountsLogGroups",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[a for a in KEY_USE if a != "kms:CreateGrant"],
                resources=["*"],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": logs_arn_pattern}},
            )
        )
        # The bus and its archive encrypt and decrypt as EventBridge itself, for this bus.
        bus_arn = stack.format_arn(
            service="events", resource="event-bus", resource_name=config.event_bus_name
        )
        self.events.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventBridgeForTheCareflowBus",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=[*SERVICE_USE, "kms:ReEncryptFrom", "kms:ReEncryptTo"],
                resources=["*"],
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": stack.account,
                        "kms:EncryptionContext:aws:events:event-bus:arn": bus_arn,
                    }
                },
            )
        )
        self.events.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventBridgeToDescribeTheKey",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:DescribeKey"],
                resources=["*"],
                conditions=this_account,
            )
        )
        # Step Functions log delivery reads the encrypted execution data it logs.
        self.workflows.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowLogDeliveryForCareflowStateMachines",
                principals=[iam.ServicePrincipal("delivery.logs.amazonaws.com")],
                actions=["kms:Decrypt"],
                resources=["*"],
                conditions={
                    **this_account,
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="logs", resource="*", arn_format=ArnFormat.COLON_RESOURCE_NAME
                        )
                    },
                },
            )
        )

    def _key(self, name: str, purpose: str, *, via: Sequence[str] = ()) -> kms.Key:
        stack = self._stack
        account = iam.AccountRootPrincipal()
        statements = [
            iam.PolicyStatement(
                sid="KeyAdministration",
                principals=[account],
                actions=list(KEY_ADMINISTRATION),
                resources=["*"],
            )
        ]
        if via:
            statements.append(
                iam.PolicyStatement(
                    sid="UseThroughServiceOnly",
                    principals=[account],
                    actions=list(KEY_USE),
                    resources=["*"],
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": list(via),
                            "kms:CallerAccount": stack.account,
                        }
                    },
                )
            )
        return kms.Key(
            self,
            name,
            alias=f"alias/{self._config.prefix}-{name.lower()}",
            description=f"careflow {self._config.name}: {purpose}",
            enable_key_rotation=True,
            pending_window=Duration.days(30 if self._config.retain_data else 7),
            removal_policy=self._config.removal_policy,
            policy=iam.PolicyDocument(statements=statements),
        )
