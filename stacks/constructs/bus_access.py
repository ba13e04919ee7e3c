"""Who may put which events on the careflow bus.

Each outside system (EHR, ERP, payer, scheduling, workforce) publishes through a role of its
own, ``careflow-<env>-<system>-publisher``, that may put only ``careflow.<system>`` events;
the bus's resource policy denies a ``careflow.<system>`` event from any other principal and
any event from another account, and ``careflow.workflow`` (careflow's own decisions and
task events) from anything but careflow's own function and state machine roles. IAM then
narrows each careflow role to the sources it publishes (stacks/permissions.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.permissions import PARTNER_SOURCES, WORKFLOW_SOURCE

PUT_EVENTS = "events:PutEvents"


def partner_system(source: str) -> str:
    return source.removeprefix("careflow.")


def _trust(stack: Stack, scheduled: bool) -> iam.IPrincipal:
    root = iam.AccountRootPrincipal()
    if not scheduled:
        return root
    schedules = iam.ServicePrincipal(
        "scheduler.amazonaws.com",
        conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
    )
    return iam.CompositePrincipal(root, schedules)


class BusAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus: events.EventBus,
        bus_name: str,
        prefix: str,
        careflow_role_arn_patterns: Sequence[str],
        relay_role_arns: Sequence[str] = (),
        scheduled_sources: Sequence[str] = (),
    ) -> None:
        """``relay_role_arns``: careflow roles that put partner events on a partner's
        behalf once they have authenticated it (the ``/v1`` API's function).
        ``scheduled_sources``: sources an EventBridge Scheduler schedule of the catalog puts
        (``stacks/constructs/schedules.py``): their publisher role is also assumable by the
        scheduler, for this account's schedules only."""
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # Built from the name: the bus's own ARN in its policy would be a circular reference.
        bus_arn = stack.format_arn(service="events", resource="event-bus", resource_name=bus_name)
        self.publisher_roles: dict[str, iam.Role] = {}
        for source in PARTNER_SOURCES:
            system = partner_system(source)
            role = iam.Role(
                self,
                f"{system.capitalize()}Publisher",
                role_name=f"{prefix}-{system}-publisher",
                # Who in this account may assume it (the interface engine's role, the payer
                # notification relay) is granted in IAM by the account's administrators.
                assumed_by=_trust(stack, source in scheduled_sources),
                description=f"publishes {source} events on the careflow bus, nothing else",
            )
            iam.ManagedPolicy(
                self,
                f"{system.capitalize()}PublisherPolicy",
                roles=[role],
                statements=[
                    iam.PolicyStatement(
                        sid="PutOwnSourceOnly",
                        actions=[PUT_EVENTS],
                        resources=[bus.event_bus_arn],
                        conditions={"StringEquals": {"events:source": source}},
                    )
                ],
            )
            self.publisher_roles[source] = role

        statements: list[iam.PolicyStatement] = []

        def deny(sid: str, conditions: dict[str, dict[str, object]]) -> None:
            statements.append(
                iam.PolicyStatement(
                    sid=sid,
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=[PUT_EVENTS],
                    resources=[bus_arn],
                    conditions=conditions,
                )
            )

        deny("OnlyThisAccountPuts", {"StringNotEquals": {"aws:PrincipalAccount": stack.account}})
        for source, role in self.publisher_roles.items():
            deny(
                f"{partner_system(source).capitalize()}EventsOnlyFromItsPublisherRole",
                {
                    "StringEquals": {"events:source": source},
                    "ArnNotEquals": {"aws:PrincipalArn": [role.role_arn, *relay_role_arns]},
                },
            )
        deny(
            "WorkflowEventsOnlyFromCareflowRoles",
            {
                "StringEquals": {"events:source": WORKFLOW_SOURCE},
                "ArnNotLike": {"aws:PrincipalArn": list(careflow_role_arn_patterns)},
            },
        )
        # One document on the bus itself (AWS::Events::EventBus Policy) rather than
        # ``bus.add_to_resource_policy``, whose AWS::Events::EventBusPolicy per statement
        # goes through CfnEventBusPolicy's deprecated ``principal`` (a jsii warning).
        cfn_bus = bus.node.default_child
        assert isinstance(cfn_bus, events.CfnEventBus)
        cfn_bus.policy = iam.PolicyDocument(statements=statements).to_json()
