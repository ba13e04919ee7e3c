"""The one DynamoDB table holding workflow state, tasks, audit events and idempotency records."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_backup as backup
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.compliance import acknowledge
from stacks.config import EnvironmentConfig

# Access patterns besides "by instance" (PK/SK): name -> what it answers.
GLOBAL_SECONDARY_INDEXES: dict[str, str] = {
    "GSI1": "instances by subject (patient, case, encounter, invoice, PO)",
    "GSI2": "open human tasks by queue#facility, ordered by due time",
    "GSI3": "instances by workflow#status",
}
TTL_ATTRIBUTE = "expiration"


def _string(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class StateTable(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, key: kms.IKey, config: EnvironmentConfig
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = key
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=_string("PK"),
            sort_key=_string("SK"),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            time_to_live_attribute=TTL_ATTRIBUTE,
            deletion_protection=config.deletion_protection,
            removal_policy=config.removal_policy,
        )
        for name in GLOBAL_SECONDARY_INDEXES:
            self.table.add_global_secondary_index(
                index_name=name,
                partition_key=_string(f"{name}PK"),
                sort_key=_string(f"{name}SK"),
                projection_type=dynamodb.ProjectionType.ALL,
            )
        if config.backup_plan:
            self._backup_plan(config)
        else:
            for rule in ("AwsSolutions-DDB4", "HIPAA.Security-DynamoDBInBackupPlan"):
                acknowledge(
                    self.table,
                    rule,
                    f"{config.name} holds synthetic data only and is torn down freely; "
                    "point-in-time recovery (35 days) covers it. The AWS Backup plan is "
                    "enabled in prod (cdk.json backup_plan), where the vault outlives the stack.",
                )

    @property
    def index_names(self) -> list[str]:
        return list(GLOBAL_SECONDARY_INDEXES)

    def _backup_plan(self, config: EnvironmentConfig) -> None:
        vault = backup.BackupVault(
            self,
            "Vault",
            backup_vault_name=f"{config.prefix}-state",
            encryption_key=self.key,
            removal_policy=config.removal_policy,
        )
        plan = backup.BackupPlan(self, "Plan", backup_vault=vault)
        plan.add_rule(
            backup.BackupPlanRule(
                rule_name="Daily",
                schedule_expression=events.Schedule.cron(hour="5", minute="0"),
                delete_after=Duration.days(config.backup_retention_days),
            )
        )
        if config.audit_retention_days:
            # The audit trail lives in the table; a monthly copy outlives the daily ones.
            plan.add_rule(
                backup.BackupPlanRule(
                    rule_name="MonthlyAuditRetention",
                    schedule_expression=events.Schedule.cron(day="1", hour="6", minute="0"),
                    delete_after=Duration.days(config.audit_retention_days),
                )
            )
        selection = plan.add_selection(
            "StateTable", resources=[backup.BackupResource.from_dynamo_db_table(self.table)]
        )
        acknowledge(
            selection,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSBackupServiceRolePolicyForBackup]",
            "AWS Backup's own service-role policy, maintained by AWS as the backup APIs evolve; "
            "the role is assumable only by backup.amazonaws.com and the selection limits it "
            "to this table.",
        )
