"""An execution role whose permissions are all written out, in one customer-managed policy.

CDK's ``grant_*`` helpers write to an inline ``DefaultPolicy`` (HIPAA.Security-IAMNoInlinePolicy)
and use wildcard actions such as ``kms:GenerateDataKey*`` (AwsSolutions-IAM5). Instead the
resource that assumes this role gets an immutable view of it, so CDK adds nothing behind our
back, and every statement it needs is added here, explicitly, with exact actions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from stacks.compliance import acknowledge
from stacks.permissions import AUDIT_PROTECTED, INSTANCES, ItemGrant

KMS_ENCRYPT_DECRYPT = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey")
KMS_PRODUCE = ("kms:Decrypt", "kms:GenerateDataKey")
TASK_RESPONSES = ("states:SendTaskFailure", "states:SendTaskHeartbeat", "states:SendTaskSuccess")
XRAY_WRITE = (
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
)
# CloudWatch Logs vended delivery (Step Functions logging); these APIs take no resource ARN.
LOG_DELIVERY = (
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
)


class ExecutionRole(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        service: str,
        description: str,
        path: str,
        role_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        # Under careflow's path (``/careflow-<env>/``): the bus policy knows careflow's own
        # roles by it (only they may put careflow.workflow events).
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(service),
            description=description,
            path=path,
            role_name=role_name,
        )
        # All policies live under one construct, so that what uses the role can wait for them
        # (a DependsOn; the role itself is already ordered by the GetAtt of its ARN).
        self._permissions = Construct(self, "Permissions")
        self.policy = iam.ManagedPolicy(self._permissions, "Policy", roles=[self.role])
        # An immutable reference rather than ``role.without_policy_updates()``: the latter also
        # adds a DependsOn the role that duplicates the GetAtt of its ARN (cfn-lint W3005).
        self._immutable = iam.Role.from_role_arn(
            self, "Immutable", self.role.role_arn, mutable=False
        )

    @property
    def immutable(self) -> iam.IRole:
        """Hand this to the Function/StateMachine so CDK cannot add statements of its own."""
        return self._immutable

    def is_required_by(self, resource: IConstruct) -> None:
        """``resource`` is created only once every policy of the role is attached."""
        resource.node.add_dependency(self._permissions)

    def allow(
        self,
        sid: str,
        actions: Sequence[str],
        resources: Iterable[str],
        conditions: Mapping[str, Mapping[str, object]] | None = None,
    ) -> None:
        self.policy.add_statements(
            iam.PolicyStatement(
                sid=sid,
                actions=sorted(actions),
                resources=list(resources),
                conditions=dict(conditions) if conditions else None,
            )
        )

    def allow_any_resource(self, sid: str, actions: Sequence[str], *, reason: str) -> None:
        """For APIs that take no resource-level permission: ``Resource: *``, acknowledged.

        Each such statement gets a policy of its own, so its acknowledgment (and reason)
        covers exactly that statement and nothing added later.
        """
        policy = iam.ManagedPolicy(
            self._permissions,
            sid,
            roles=[self.role],
            statements=[iam.PolicyStatement(sid=sid, actions=sorted(actions), resources=["*"])],
        )
        acknowledge(policy, "AwsSolutions-IAM5[Resource::*]", reason)

    # --- the permissions careflow hands out -------------------------------------------------

    def table_items(self, table_arn: str, grants: Sequence[ItemGrant], key: kms.IKey) -> None:
        """Each grant on the table's items under its partition-key prefixes only, and an
        explicit deny of update/delete/batch-write on instance partitions (audit entries)."""
        if not grants:
            return
        for grant in grants:
            resource = f"{table_arn}/index/{grant.index}" if grant.index else table_arn
            self.allow(
                grant.sid,
                grant.actions,
                [resource],
                {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": _prefixes(grant.prefixes)}},
            )
        self.policy.add_statements(
            iam.PolicyStatement(
                sid="AuditEntriesAreAppendOnly",
                effect=iam.Effect.DENY,
                actions=sorted(AUDIT_PROTECTED),
                resources=[table_arn],
                conditions={
                    "ForAnyValue:StringLike": {"dynamodb:LeadingKeys": _prefixes([INSTANCES])}
                },
            )
        )
        self.allow("StateTableKey", KMS_ENCRYPT_DECRYPT, [key.key_arn])

    def send_messages(self, sid: str, queue: sqs.IQueue, key: kms.IKey) -> None:
        self.allow(sid, ["sqs:SendMessage"], [queue.queue_arn])
        self.allow(f"{sid}Key", KMS_PRODUCE, [key.key_arn])

    def put_events(self, bus_arn: str, sources: Sequence[str]) -> None:
        """``events:PutEvents`` on the careflow bus, for events of ``sources`` only."""
        if not sources:
            return
        self.allow(
            "PutEventsOnCareflowBus",
            ["events:PutEvents"],
            [bus_arn],
            {"StringEquals": {"events:source": sorted(sources)}},
        )

    def write_logs(self, log_group: logs.ILogGroup) -> None:
        self.allow(
            "WriteOwnLogGroup",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [log_group.log_group_arn],
        )

    def invoke_functions(self, function_arns: Iterable[str]) -> None:
        # Unqualified ARNs only: the ASL calls $LATEST, never a version or alias.
        self.allow("InvokeWorkflowFunctions", ["lambda:InvokeFunction"], function_arns)

    def _on_executions(self, sid: str, state_machine_names: Sequence[str], reason: str) -> None:
        """Describe and stop the executions of these state machines. Execution names are
        chosen at run time: the resource is ``execution:<name>:*``, in a policy of its own
        so that its acknowledgment covers exactly this statement."""
        stack = Stack.of(self)
        executions = [
            stack.format_arn(
                service="states",
                resource="execution",
                resource_name=f"{name}:*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for name in state_machine_names
        ]
        policy = iam.ManagedPolicy(
            self._permissions,
            sid,
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid=sid,
                    actions=["states:DescribeExecution", "states:StopExecution"],
                    resources=executions,
                )
            ],
        )
        for name in state_machine_names:
            acknowledge(
                policy,
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:"
                f"<AWS::AccountId>:execution:{name}:*]",
                reason,
            )

    def start_executions(self, state_machine_arns: Iterable[str]) -> None:
        self.allow("StartWorkflowExecutions", ["states:StartExecution"], state_machine_arns)

    def stop_executions(self, state_machine_names: Sequence[str]) -> None:
        """``states:DescribeExecution`` and ``states:StopExecution`` on the executions of
        these state machines (intake stops the instance of a cancelled appointment)."""
        self._on_executions(
            "StopWorkflowExecutions",
            state_machine_names,
            "a cancelled appointment stops its running instance; execution names are made "
            "per subject at run time, so the resource is every execution of the workflow's "
            "state machine.",
        )

    def start_child_executions(
        self, state_machine_arns: Sequence[str], state_machine_names: Sequence[str]
    ) -> None:
        """``states:startExecution.sync:2``: start, watch and stop the children, and the
        managed rule through which Step Functions hears that a child ended."""
        self.start_executions(state_machine_arns)
        self._on_executions(
            "WatchChildExecutions",
            state_machine_names,
            "states:startExecution.sync:2 watches and stops the child executions it "
            "starts; their names are made per instance at run time, so the resource is "
            "every execution of that one child state machine (AWS documents this form).",
        )
        self.allow(
            "ChildCompletionRule",
            ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            [
                Stack.of(self).format_arn(
                    service="events",
                    resource="rule",
                    resource_name="StepFunctionsGetEventsForStepFunctionsExecutionRule",
                )
            ],
        )

    def answer_task_tokens(
        self, state_machine_arns: Iterable[str], actions: Sequence[str] = TASK_RESPONSES
    ) -> None:
        self.allow("AnswerTaskTokens", actions, state_machine_arns)

    def use_execution_data_key(self, key: kms.IKey, state_machine_arns: Iterable[str]) -> None:
        """Step Functions encrypts execution data with ``key``: whoever runs, starts or
        answers an execution of these state machines encrypts and decrypts through it."""
        self.allow(
            "ExecutionDataKey",
            KMS_PRODUCE,
            [key.key_arn],
            {
                "StringEquals": {
                    "kms:EncryptionContext:aws:states:stateMachineArn": sorted(state_machine_arns)
                }
            },
        )

    def deliver_encrypted_logs(self, key: kms.IKey) -> None:
        """Log delivery of a state machine whose execution data ``key`` encrypts."""
        stack = Stack.of(self)
        self.allow(
            "LogDeliveryDataKey",
            ["kms:GenerateDataKey"],
            [key.key_arn],
            {
                "StringEquals": {
                    "kms:EncryptionContext:SourceArn": stack.format_arn(
                        service="logs", resource="*", arn_format=ArnFormat.COLON_RESOURCE_NAME
                    )
                }
            },
        )

    def write_traces(self) -> None:
        self.allow_any_resource(
            "XRayTracing",
            XRAY_WRITE,
            reason=(
                "X-Ray trace segments, telemetry and sampling rules have no resource-level "
                "permissions: AWS requires Resource '*' for these four write/sampling actions "
                "(the same statement CDK adds for tracing=ACTIVE)."
            ),
        )


def _prefixes(prefixes: Iterable[str]) -> list[str]:
    return [f"{prefix}*" for prefix in sorted(prefixes)]
