"""What each catalog function may do to the state table and on the bus, derived from the
catalog: a step's ports (its keyword parameters, ``careflow.kit.steps``), its spec's
``answers_task_tokens``, and, for the functions with handlers of their own (intake, the
payer-decision callback, the execution-status watcher), what those handlers call.

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

from careflow.adapters.hl7v2.receive import IDEMPOTENCY_WORKFLOW as HL7_IDEMPOTENCY_WORKFLOW
from careflow.catalog import EXECUTION_STATUS, INTAKE, MODEL_DRIFT, PAYER_DECISION, FunctionSpec
from careflow.domain.tasks import SOURCE as WORKFLOW_SOURCE
from careflow.events.envelope import SOURCES
from careflow.kit.steps import lookup

# Every source an outside system may publish: careflow.<system>, all but careflow's own.
PARTNER_SOURCES = tuple(f"careflow.{s}" for s in SOURCES if f"careflow.{s}" != WORKFLOW_SOURCE)

# Partition-key prefixes (dynamodb:LeadingKeys values).
INSTANCES = "INST#"  # instance, its milestones and its audit entries
TASKS = "TASK#"
WAITS = "WAIT#"  # a parked task token, or a payer answer that came first
POLICIES = "POLICY#"
PARKED = "PARKED#"
IDEMPOTENCY = "IDEMPOTENCY#"  # Powertools idempotency records of intake
SUBJECTS = "SUBJECT#"  # one record per (workflow, facility, subject): which instance runs it
TASKS_BY_INSTANCE = "ITASK#"  # GSI1's partition key of a task: its instance
INSTANCES_BY_SUBJECT = "SUBJ#"  # GSI1's partition key of an instance: its subject
OPEN_TASKS = "OPEN#"  # GSI2's partition key of an open task: OPEN#queue#facility
INSTANCES_BY_STATUS = "WFST#"  # GSI3's partition key of an instance: WFST#workflow#status
CENSUS = "CENSUS#"  # a facility's census, one item per encounter

GET, QUERY, PUT = "dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem"
UPDATE, DELETE = "dynamodb:UpdateItem", "dynamodb:DeleteItem"
BATCH_WRITE = "dynamodb:BatchWriteItem"
# Never allowed on an instance partition, where audit entries live; denied explicitly too.
AUDIT_PROTECTED = (BATCH_WRITE, DELETE, UPDATE)

__all__ = [
    "API_ACCESS",
    "MLLP_ACCESS",
    "PARTNER_SOURCES",
    "WORKFLOW_SOURCE",
    "Access",
    "ItemGrant",
    "access_of",
]


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
# A step's instance's tasks (GSI1 by instance): concluding closes the alerts nobody answered.
TASKS_OF_INSTANCE = ItemGrant("TasksOfInstance", (QUERY,), (TASKS_BY_INSTANCE,), index="GSI1")
POLICY_VERSIONS = ItemGrant("PolicyVersions", (GET, QUERY), (POLICIES,))
TASK_TOKEN_WAITS = ItemGrant("TaskTokenWaits", (DELETE, PUT), (WAITS,))
PARKED_EVENTS = ItemGrant("ParkedEvents", (PUT,), (PARKED,))

# What a step's spec may ask beyond its port's grant (``FunctionSpec.store_access``).
STORE_ACCESS: dict[str, ItemGrant] = {
    "census": ItemGrant("Census", (GET, PUT, QUERY), (CENSUS,)),
    "open_tasks": ItemGrant("OpenTasksByQueueAndFacility", (QUERY,), (OPEN_TASKS,), index="GSI2"),
    "instances_by_status": ItemGrant(
        "InstancesByWorkflowAndStatus", (QUERY,), (INSTANCES_BY_STATUS,), index="GSI3"
    ),
}

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
            TASKS_OF_INSTANCE,
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
    # Reads the instance and its audit trail (a repeated delivery), writes the instance's
    # new status with a milestone and an audit entry (conditional PutItem), closes its open
    # tasks (found through GSI1 by instance); parks an event it cannot read.
    EXECUTION_STATUS.name: Access(
        items=(
            WORKFLOW_RECORDS,
            TASKS_OF_INSTANCE,
            PARKED_EVENTS,
        )
    ),
    # The daily drift check (lambdas/model_drift.py): reads only. Instances updated within
    # the window (GSI3), their audit trails (Query on INST#), the ai-models policy in force.
    MODEL_DRIFT.name: Access(
        items=(
            ItemGrant("InstancesAndAuditTrails", (GET, QUERY), (INSTANCES,)),
            ItemGrant(
                "InstancesByWorkflowAndStatus", (QUERY,), (INSTANCES_BY_STATUS,), index="GSI3"
            ),
            POLICY_VERSIONS,
        )
    ),
}


# Where HL7 v2 feeds come from: ADT (encounters) is the EHR's, SIU (appointments) is
# scheduling's (careflow.canonical.encounters, the surgical readiness triggers).
HL7_SOURCES = ("careflow.ehr", "careflow.scheduling")
# careflow.adapters.hl7v2.receive: one subject record of the pseudo-workflow
# ``hl7v2-inbound`` per sending facility + MSH-10 (the idempotency record: a conditional
# claim, a read, a conditional update once published), and an SIU's remembered start
# (``WAIT#hl7v2-start#<facility>#<appointment>``: taken, then put back).
HL7_MESSAGE_RECORDS = f"{SUBJECTS}{HL7_IDEMPOTENCY_WORKFLOW}#"
HL7_APPOINTMENT_STARTS = f"{WAITS}hl7v2-start#"

# The partner API's function (lambdas/api.py, stacks/api_stack.py): reads instances, tasks and
# policies and the three indexes behind the list routes; starts an instance as intake does
# (Powertools idempotency on the Idempotency-Key, the subject record, the instance); claims,
# completes and reassigns a task by conditional PutItem of the task and one audit entry
# each; relays a partner's event (or a payer's PAS notification) onto the bus under a
# partner source; receives an HL7 v2 message (POST /v1/hl7v2) as the MLLP listener does
# (its record under the subjects, an SIU's remembered start, a parked message). No
# UpdateItem, DeleteItem or BatchWriteItem on instances (audit entries), no Scan, and no
# WAIT# item but an SIU's start.
API_ACCESS = Access(
    items=(
        WORKFLOW_RECORDS,
        POLICY_VERSIONS,
        ItemGrant("Subjects", (GET, PUT), (SUBJECTS,)),
        ItemGrant("StartIdempotency", (DELETE, GET, PUT, UPDATE), (IDEMPOTENCY,)),
        ItemGrant(
            "InstancesBySubjectAndTasksOfInstance",
            (QUERY,),
            (INSTANCES_BY_SUBJECT, TASKS_BY_INSTANCE),
            index="GSI1",
        ),
        ItemGrant("OpenTasksByQueueAndFacility", (QUERY,), (OPEN_TASKS,), index="GSI2"),
        ItemGrant("InstancesByWorkflowAndStatus", (QUERY,), (INSTANCES_BY_STATUS,), index="GSI3"),
        ItemGrant("Hl7AppointmentStarts", (DELETE, PUT), (HL7_APPOINTMENT_STARTS,)),
        ItemGrant("ParkedMessages", (GET, PUT), (PARKED,)),
    ),
    event_sources=PARTNER_SOURCES,
)


# The MLLP listener's task (stacks/constructs/mllp_listener.py, entry point
# ``python -m careflow.adapters.hl7v2.mllp_service``), which runs the same
# ``careflow.adapters.hl7v2.receive`` as ``POST /v1/hl7v2``: it answers AA once the
# message's record is stored, parks what it cannot map (a read, then one PutItem: the
# ids and the reason), and puts the canonical events on the bus under the two HL7 sources
# only. No instance, task, policy item or other workflow's subject; no Query, no Scan.
MLLP_ACCESS = Access(
    items=(
        ItemGrant("Hl7MessageRecords", (GET, PUT), (HL7_MESSAGE_RECORDS,)),
        ItemGrant("Hl7AppointmentStarts", (DELETE, PUT), (HL7_APPOINTMENT_STARTS,)),
        ItemGrant("ParkedMessages", (GET, PUT), (PARKED,)),
    ),
    event_sources=HL7_SOURCES,
)


# Amazon Bedrock (careflow.adapters.predictor_bedrock), only in a deployment that names a
# Bedrock model (``-c bedrock_model_id=...``): the functions whose step has the predictor
# port may call Converse (``bedrock:InvokeModel``) on that one foundation model; without
# the context no role gets any Bedrock permission. Whether anything is sent is still the
# ai-models policy's call (a model's backend, and phi_egress), at prediction time.
BEDROCK_INVOKE = ("bedrock:InvokeModel",)


def uses_predictor(spec: FunctionSpec) -> bool:
    return spec.step is not None and "predictor" in lookup(spec.step).ports


def bedrock_grant(spec: FunctionSpec, bedrock_model_id: str | None) -> tuple[str, ...]:
    """The Bedrock actions ``spec``'s function gets: none without a named model, or for a
    function whose step never predicts."""
    return BEDROCK_INVOKE if bedrock_model_id and uses_predictor(spec) else ()


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
    if spec.store_access and "store" not in ports:
        raise CatalogPermissionError(f"{spec.name} asks for store_access without the store port")
    if "store" in ports:
        items += [WORKFLOW_RECORDS, TASKS_OF_INSTANCE]
        if spec.answers_task_tokens:
            items.append(TASK_TOKEN_WAITS)
        for name in spec.store_access:
            if name not in STORE_ACCESS:
                raise CatalogPermissionError(f"{spec.name}: no store access named {name!r}")
            items.append(STORE_ACCESS[name])
    # a model's step reads the ai-models policy in force (its mode, threshold, egress)
    if "policies" in ports or "predictor" in ports:
        items.append(POLICY_VERSIONS)
    sources = (WORKFLOW_SOURCE,) if "publisher" in ports else ()
    return Access(items=tuple(items), event_sources=sources)
