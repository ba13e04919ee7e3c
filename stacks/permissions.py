"""What each catalog function may do to the state table and on the bus, derived from the
catalog: a step's ports (its keyword parameters, ``careflow.kit.steps``), its spec's
``answers_task_tokens``, and, for the two functions with handlers of their own (intake and
the payer-decision callback), what those handlers call.

Key prefixes follow the key design at the top of ``careflow.adapters.dynamodb_state`` and
``careflow.policies.store_dynamodb``; ``dynamodb:LeadingKeys`` sees only the partition key.

Audit entries are ``INST#<id> / AUDIT#...``: they share the instance's partition, so IAM
(which cannot see the sort key) protects them by allowing no function ``UpdateItem``,
``DeleteItem`` or ``BatchWriteItem`` on any ``INST#`` partition, and by an explicit deny of
the three on ``INST#`` in every role that may touch the table. The runtime replaces
instances and tasks with conditional ``PutItem`` (optimistic lock) and writes entries one
``PutItem`` each, so it needs none of them there.
"""

from __future__ import annotations

from dataclasses import dataclass

from careflow.catalog import INTAKE, PAYER_DECISION, FunctionSpec
from careflow.domain.tasks import SOURCE as WORKFLOW_SOURCE
from careflow.kit.steps import lookup

# Partition-key prefixes (dynamodb:LeadingKeys values).
INSTANCES = "INST#"  # instance, its milestones and its audit entries
TASKS = "TASK#"
WAITS = "WAIT#"  # a parked task token, or a payer answer that came first
POLICIES = "POLICY#"
PARKED = "PARKED#"
IDEMPOTENCY = "IDEMPOTENCY#"  # Powertools idempotency records of intake
SUBJECTS = "SUBJECT#"  # one record per (workflow, facility, subject): which instance runs it
TASKS_BY_INSTANCE = "ITASK#"  # GSI1's partition key of a task: its instance

GET, QUERY, PUT = "dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem"
UPDATE, DELETE = "dynamodb:UpdateItem", "dynamodb:DeleteItem"
BATCH_WRITE = "dynamodb:BatchWriteItem"
# Never allowed on an instance partition, where audit entries live; denied explicitly too.
AUDIT_PROTECTED = (BATCH_WRITE, DELETE, UPDATE)

__all__ = ["WORKFLOW_SOURCE", "Access", "ItemGrant", "access_of"]


@dataclass(frozen=True)
class ItemGrant:
    """``actions`` on the table's items whose partition key starts with one of ``prefixes``."""

    sid: str
    actions: tuple[str, ...]
    prefixes: tuple[str, ...]
    index: str | None = None  # a Query on this index (its partition key's prefixes)


@dataclass(frozen=True)
class Access:
    items: tuple[ItemGrant, ...] = ()
    event_sources: tuple[str, ...] = ()  # events:source values it may put on the bus

    @property
    def table_actions(self) -> set[str]:
        return {action for grant in self.items for action in grant.actions}


# What a port costs in AWS permissions (ports not listed reach only partner systems over
# HTTPS, or the clock).
WORKFLOW_RECORDS = ItemGrant("WorkflowRecords", (GET, PUT, QUERY), (INSTANCES, TASKS))
POLICY_VERSIONS = ItemGrant("PolicyVersions", (GET, QUERY), (POLICIES,))
TASK_TOKEN_WAITS = ItemGrant("TaskTokenWaits", (DELETE, PUT), (WAITS,))
PARKED_EVENTS = ItemGrant("ParkedEvents", (PUT,), (PARKED,))

# The functions with handlers of their own (lambdas/intake.py, lambdas/payer_decision.py).
HANDLER_ACCESS: dict[str, Access] = {
    # Powertools idempotency: get, put (conditional), update on completion, delete on failure.
    # One instance per subject (claims and updates the subject record); a reschedule or
    # cancellation updates the running instance, appends its milestone and audit entries
    # and closes its open tasks (found through GSI1 by instance); a duplicate is audited.
    INTAKE.name: Access(
        items=(
            ItemGrant("IntakeIdempotency", (DELETE, GET, PUT, UPDATE), (IDEMPOTENCY,)),
            ItemGrant("Subjects", (GET, PUT), (SUBJECTS,)),
            WORKFLOW_RECORDS,
            ItemGrant("TasksOfInstance", (QUERY,), (TASKS_BY_INSTANCE,), index="GSI1"),
            PARKED_EVENTS,
        )
    ),
    # Peeks at the parked token (a consistent read) before the payer's $inquire, takes it
    # (or keeps the early answer) once the payer has decided, and appends one audit entry.
    PAYER_DECISION.name: Access(
        items=(
            ItemGrant("TaskTokenWaits", (DELETE, GET, PUT), (WAITS,)),
            ItemGrant("AuditEntry", (PUT,), (INSTANCES,)),
            PARKED_EVENTS,
        )
    ),
}


class CatalogPermissionError(ValueError):
    """A function's ports and its spec disagree (e.g. the engine port without a grant)."""


def access_of(spec: FunctionSpec) -> Access:
    if spec.step is None:
        if spec.name not in HANDLER_ACCESS:
            raise CatalogPermissionError(
                f"{spec.name} has a handler of its own: say what it may do in HANDLER_ACCESS"
            )
        return HANDLER_ACCESS[spec.name]
    ports = set(lookup(spec.step).ports)
    if "engine" in ports and not (spec.answers_task_tokens or spec.starts_workflows):
        raise CatalogPermissionError(
            f"{spec.name} uses the engine port: set answers_task_tokens or starts_workflows"
        )
    items: list[ItemGrant] = []
    if "store" in ports:
        items.append(WORKFLOW_RECORDS)
        if spec.answers_task_tokens:
            items.append(TASK_TOKEN_WAITS)
    if "policies" in ports:
        items.append(POLICY_VERSIONS)
    sources = (WORKFLOW_SOURCE,) if "publisher" in ports else ()
    return Access(items=tuple(items), event_sources=sources)
