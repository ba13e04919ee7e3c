"""Human tasks: opened by a waiting workflow, escalated when overdue, worked by a person.

A task that a workflow waits on carries the Step Functions task token; completing
it resumes the execution. Who may work a task is governed (docs/decisions.md, "Governed
human tasks"): the actor is a named person (``user:<id>``) whose roles, from the actor
directory (:mod:`careflow.actors`), include one the task's pinned policy allows on its
queue (table ``queue_roles``: ``work`` and ``supervise`` roles). A task is claimed
before it is completed; a claim belongs to its claimant until they release it, someone
supervising the queue reassigns or releases it, or the task escalates. A task with
decisions takes one of them; a task without takes ``ACKNOWLEDGED``. Every change, and
every refusal for want of a role, is audited with actor, time, reason and the policy
version, identifiers only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from careflow.domain.records import AuditEntry, HumanTask, Milestone, TaskStatus
from careflow.events.envelope import envelope
from careflow.ports import (
    ConcurrentUpdate,
    EventPublisher,
    StaleTaskToken,
    StateStore,
    WorkflowEngine,
)

if TYPE_CHECKING:
    from careflow.policies import PolicyReader

SOURCE = "careflow.workflow"
ACKNOWLEDGED = "ACKNOWLEDGED"  # the decision of a task that offers none
QUEUE_ROLES_TABLE = "queue_roles"  # queue -> work, supervise (role lists), in every policy
# The decisions that take the documents a person chose (prior authorization's "attach the
# documents the payer asked for"): ``complete_task(documents=...)``.
ATTACH_DECISIONS = frozenset({"ATTACHED"})
MAX_DOCUMENTS = 50


class TaskError(Exception):
    """A task request that cannot be honoured; ``kind`` maps to an HTTP status."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # not_found | forbidden | conflict | invalid


def task_id_for(instance_id: str, purpose: str) -> str:
    digest = hashlib.sha256(f"{instance_id}|{purpose}".encode()).hexdigest()[:16]
    return f"task-{digest}"


def _task_event(
    task: HumanTask, what: str, *, level: int, now: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    """The envelope of a task event; ``data`` carries identifiers only (never title or reasons).

    The key is deterministic per task, round and level: ``created_at`` tells apart the rounds
    of a task re-opened under the same id after completion (another documents request), so
    a consumer deduplicating on it drops redeliveries, not the next round.
    """
    key = f"{task.task_id}:{what}:{level}@{task.created_at.isoformat()}"
    return envelope(
        event_id=key,
        idempotency_key=key,
        facility_id=task.facility_id,
        occurred_at=now,
        correlation_id=task.instance_id,  # the instance's correlation id would cost a read
        data=data,
    )


def open_task(
    store: StateStore,
    publisher: EventPublisher,
    *,
    instance_id: str,
    workflow_id: str,
    facility_id: str,
    purpose: str,
    title: str,
    reasons: Sequence[str],
    subject_ref: str,
    escalation_chain: Sequence[str],
    due_in_seconds: int,
    token: str | None,
    allowed_decisions: Sequence[str],
    now: datetime,
    policy_version: str = "v1",
    excluded_actors: Sequence[str] = (),
    deadline_at: datetime | None = None,
    value_usd: float | None = None,
    suggestion: Mapping[str, Any] | None = None,
    priority: tuple[float, tuple[str, ...]] | None = None,
) -> HumanTask:
    """Opens the task, or re-opens it with a fresh token after an escalation.
    ``excluded_actors`` may not claim or decide it (separation of duties); ``priority`` is
    the task priority model's score and reasons (:mod:`careflow.ml.priority`)."""
    task_id = task_id_for(instance_id, purpose)
    existing = store.get_task(task_id)
    if existing is not None and existing.status in (TaskStatus.OPEN, TaskStatus.CLAIMED):
        task = existing.model_copy(
            update={"task_token": token, "due_at": now + timedelta(seconds=due_in_seconds)}
        )
        return store.update_task(task)
    chain = tuple(escalation_chain) or ("department_director",)
    task = HumanTask(
        task_id=task_id,
        instance_id=instance_id,
        workflow_id=workflow_id,
        facility_id=facility_id,
        queue=chain[0],
        title=title,
        reasons=tuple(reasons),
        subject_ref=subject_ref,
        created_at=now,
        due_at=now + timedelta(seconds=due_in_seconds),
        escalation_chain=chain,
        task_token=token,
        allowed_decisions=tuple(allowed_decisions),
        excluded_actors=tuple(excluded_actors),
        policy_version=policy_version,
        deadline_at=deadline_at,
        value_usd=value_usd,
        suggestion=dict(suggestion) if suggestion else None,
        priority=priority[0] if priority else None,
        priority_reasons=priority[1] if priority else (),
    )
    store.put_task(task)
    store.record_milestone(
        Milestone(
            instance_id=instance_id, name="task_opened", at=now, detail=f"{task.queue}: {title}"
        )
    )
    store.record_audit(
        AuditEntry(
            instance_id=instance_id,
            at=now,
            actor="system:human-task",
            action="task_opened",
            reason="; ".join(reasons),
            policy_version=policy_version,
            detail={"task_id": task_id, "queue": task.queue},
        )
    )
    publisher.publish(
        SOURCE,
        "HumanTask.Opened",
        _task_event(
            task,
            "opened",
            level=task.escalation_level,
            now=now,
            data={
                "task_id": task_id,
                "instance_id": instance_id,
                "queue": task.queue,
                "facility_id": facility_id,
                "due_at": task.due_at.isoformat(),
            },
        ),
    )
    return task


def escalate_task(
    store: StateStore,
    publisher: EventPublisher,
    *,
    task_id: str,
    now: datetime,
) -> HumanTask:
    """Moves an overdue task one step up its escalation chain (stays at the top when there)."""
    task = store.get_task(task_id)
    if task is None:
        raise TaskError("not_found", f"no task {task_id}")
    level = min(task.escalation_level + 1, len(task.escalation_chain) - 1)
    queue = task.escalation_chain[level] if task.escalation_chain else task.queue
    escalated = store.update_task(
        task.model_copy(
            update={
                "escalation_level": task.escalation_level + 1,
                "queue": queue,
                "task_token": None,
                "status": TaskStatus.OPEN,
                "claimed_by": None,
            }
        )
    )
    store.record_milestone(
        Milestone(
            instance_id=task.instance_id,
            name="task_escalated",
            at=now,
            status="ESCALATED",
            detail=f"level {escalated.escalation_level} to {queue}",
        )
    )
    store.record_audit(
        AuditEntry(
            instance_id=task.instance_id,
            at=now,
            actor="system:sla-timer",
            action="task_escalated",
            reason=f"task overdue since {task.due_at.isoformat()}",
            policy_version=task.policy_version,
            detail={
                "task_id": task_id,
                "queue": queue,
                "level": escalated.escalation_level,
                **({"claim_released": task.claimed_by} if task.claimed_by else {}),
            },
        )
    )
    publisher.publish(
        SOURCE,
        "Workflow.Escalated",
        _task_event(
            escalated,
            "escalated",
            level=escalated.escalation_level,
            now=now,
            data={
                "task_id": task_id,
                "instance_id": task.instance_id,
                "queue": queue,
                "facility_id": task.facility_id,
                "level": escalated.escalation_level,
            },
        ),
    )
    return escalated


# -- who may work a task -------------------------------------------------------------------
class ActorRoles(Protocol):
    """The actor directory (:class:`careflow.actors.Directory`): an unknown actor has none."""

    def roles_of(self, actor: str) -> frozenset[str]: ...


@dataclass(frozen=True)
class QueueRoles:
    """The roles a task's pinned policy allows on its current queue."""

    work: frozenset[str]  # claim, complete, acknowledge; be reassigned the task
    supervise: frozenset[str]  # reassign or release someone else's claim
    policy_version: str


def queue_roles(task: HumanTask, policies: PolicyReader) -> QueueRoles:
    """From the policy version the task's instance pinned; none when it names no roles for
    the queue (or cannot be loaded): nobody may work the task until that is fixed."""
    from careflow.policies import PolicyError, SnapshotVersion, load

    try:
        name = SnapshotVersion.parse(task.policy_version).name
        snapshot = load(name, task.facility_id, task.policy_version, store=policies)
        outputs = snapshot.table(QUEUE_ROLES_TABLE).decide({"queue": task.queue}).outputs
    except PolicyError:
        return QueueRoles(frozenset(), frozenset(), task.policy_version)
    return QueueRoles(
        frozenset(outputs["work"]), frozenset(outputs["supervise"]), task.policy_version
    )


def _directory(directory: ActorRoles | None) -> ActorRoles:
    if directory is not None:
        return directory
    from careflow.actors import directory as configured

    return configured()


def _find(store: StateStore, task_id: str) -> HumanTask:
    task = store.get_task(task_id)
    if task is None:
        raise TaskError("not_found", f"There is no task {task_id}.")
    return task


def _audit(
    store: StateStore,
    task: HumanTask,
    *,
    actor: str,
    action: str,
    now: datetime,
    reason: str = "",
    **detail: Any,
) -> None:
    """Identifiers only in ``detail``: task, queue, actors, roles, decision."""
    store.record_audit(
        AuditEntry(
            instance_id=task.instance_id,
            at=now,
            actor=actor,
            action=action,
            reason=reason,
            policy_version=task.policy_version,
            detail={"task_id": task.task_id, "queue": task.queue, **detail},
        )
    )


def _refuse(
    store: StateStore, task: HumanTask, *, actor: str, attempted: str, now: datetime, why: str
) -> TaskError:
    """Audits a refusal for want of a role (no reason text: only identifiers)."""
    _audit(
        store,
        task,
        actor=actor.strip() or "(none)",
        action="task_refused",
        now=now,
        attempted=attempted,
    )
    return TaskError("forbidden", why)


def _role_in(
    store: StateStore,
    task: HumanTask,
    *,
    actor: str,
    allowed: frozenset[str],
    directory: ActorRoles,
    attempted: str,
    now: datetime,
    as_what: str = "work",
) -> str:
    """The actor's role that ``allowed`` holds (the first by name), else refused."""
    if not actor.strip():
        raise _refuse(
            store,
            task,
            actor=actor,
            attempted=attempted,
            now=now,
            why=f"Task {task.task_id} can only be worked by a named person (user:<id>).",
        )
    if as_what == "work" and actor in task.excluded_actors:
        raise _refuse(
            store,
            task,
            actor=actor,
            attempted=attempted,
            now=now,
            why=(
                f"{actor} may not {attempted} task {task.task_id}: separation of duties "
                "(the same person may not both make and approve this decision)."
            ),
        )
    held = sorted(directory.roles_of(actor) & allowed)
    if not held:
        raise _refuse(
            store,
            task,
            actor=actor,
            attempted=attempted,
            now=now,
            why=(
                f"{actor} holds no role that may {as_what} queue {task.queue} under policy "
                f"{task.policy_version}."
            ),
        )
    return held[0]


def _change(store: StateStore, task: HumanTask, **update: Any) -> HumanTask:
    """Writes the change unless someone changed the task since it was read (a conflict)."""
    try:
        return store.update_task(task.model_copy(update=update))
    except ConcurrentUpdate:
        raise TaskError(
            "conflict", f"Task {task.task_id} changed meanwhile; read it again and retry."
        ) from None


def _open_or_claimed(task: HumanTask) -> None:
    if task.status not in (TaskStatus.OPEN, TaskStatus.CLAIMED):
        raise TaskError("conflict", f"Task {task.task_id} is {task.status.value.lower()}.")


# -- what a person does with a task ---------------------------------------------------------
def claim_task(
    store: StateStore,
    *,
    task_id: str,
    actor: str,
    now: datetime,
    policies: PolicyReader,
    directory: ActorRoles | None = None,
    reason: str = "",
) -> HumanTask:
    """The actor takes the task; claiming one's own claim again changes nothing."""
    task = _find(store, task_id)
    roles = queue_roles(task, policies)
    role = _role_in(
        store,
        task,
        actor=actor,
        allowed=roles.work,
        directory=_directory(directory),
        attempted="claim",
        now=now,
    )
    _open_or_claimed(task)
    if task.status is TaskStatus.CLAIMED:
        if task.claimed_by == actor:
            return task
        raise TaskError("conflict", f"Task {task_id} is claimed by another person.")
    claimed = _change(store, task, status=TaskStatus.CLAIMED, claimed_by=actor)
    _audit(store, task, actor=actor, action="task_claimed", now=now, reason=reason, role=role)
    return claimed


def release_task(
    store: StateStore,
    *,
    task_id: str,
    actor: str,
    now: datetime,
    policies: PolicyReader,
    directory: ActorRoles | None = None,
    reason: str = "",
) -> HumanTask:
    """Back to the queue, unclaimed: by its claimant, or by someone supervising the queue."""
    task = _find(store, task_id)
    _open_or_claimed(task)
    if task.status is not TaskStatus.CLAIMED:
        raise TaskError("conflict", f"Task {task_id} is not claimed.")
    role = "claimant"
    if not (actor and task.claimed_by == actor):
        role = _role_in(
            store,
            task,
            actor=actor,
            allowed=queue_roles(task, policies).supervise,
            directory=_directory(directory),
            attempted="release",
            now=now,
            as_what="supervise",
        )
    released = _change(store, task, status=TaskStatus.OPEN, claimed_by=None)
    _audit(
        store,
        task,
        actor=actor,
        action="task_released",
        now=now,
        reason=reason,
        role=role,
        previous=task.claimed_by,
    )
    return released


def reassign_task(
    store: StateStore,
    *,
    task_id: str,
    actor: str,
    to: str,
    reason: str,
    now: datetime,
    policies: PolicyReader,
    directory: ActorRoles | None = None,
) -> HumanTask:
    """Moves the claim to ``to``, who must be allowed to work the queue: by its claimant
    handing it over, or by someone supervising the queue (claimed or not)."""
    task = _find(store, task_id)
    roles = queue_roles(task, policies)
    people = _directory(directory)
    role = "claimant"
    if not (actor and task.status is TaskStatus.CLAIMED and task.claimed_by == actor):
        role = _role_in(
            store,
            task,
            actor=actor,
            allowed=roles.supervise,
            directory=people,
            attempted="reassign",
            now=now,
            as_what="supervise",
        )
    if not to.strip() or not people.roles_of(to) & roles.work:
        raise _refuse(
            store,
            task,
            actor=actor,
            attempted="reassign",
            now=now,
            why=(
                f"{to.strip() or 'Nobody'} holds no role that may work queue {task.queue} "
                f"under policy {task.policy_version}."
            ),
        )
    _open_or_claimed(task)
    if task.status is TaskStatus.CLAIMED and task.claimed_by == to:
        return task
    moved = _change(store, task, status=TaskStatus.CLAIMED, claimed_by=to)
    _audit(
        store,
        task,
        actor=actor,
        action="task_reassigned",
        now=now,
        reason=reason,
        role=role,
        previous=task.claimed_by,
        to=to,
    )
    return moved


def complete_task(
    store: StateStore,
    engine: WorkflowEngine,
    *,
    task_id: str,
    actor: str,
    decision: str,
    reason: str,
    now: datetime,
    policies: PolicyReader,
    directory: ActorRoles | None = None,
    documents: Sequence[str] | None = None,
    ehr: Any = None,
) -> HumanTask:
    """Records the decision of the task's claimant and resumes the waiting execution with it.

    ``decision`` is one of the task's allowed decisions, or ``ACKNOWLEDGED`` for a task
    that offers none (see :func:`acknowledge_task`). ``documents``: with an
    :data:`ATTACH_DECISIONS` decision, the ids of the patient's documents the person
    attached (``DocumentReference/<id>`` or ``<id>``), checked against the patient's
    documents in the EHR (``ehr``, default the wired one) and sent to the workflow as
    ``documents`` (ids only)."""
    task = _find(store, task_id)
    action = "acknowledge" if not task.allowed_decisions else "complete"
    role = _role_in(
        store,
        task,
        actor=actor,
        allowed=queue_roles(task, policies).work,
        directory=_directory(directory),
        attempted=action,
        now=now,
    )
    _open_or_claimed(task)
    if task.allowed_decisions and decision not in task.allowed_decisions:
        raise TaskError(
            "invalid", f"The decision must be one of {', '.join(task.allowed_decisions)}."
        )
    if not task.allowed_decisions and decision != ACKNOWLEDGED:
        raise TaskError(
            "invalid", f"Task {task_id} offers no decision: acknowledge it ({ACKNOWLEDGED})."
        )
    if task.status is TaskStatus.OPEN:
        raise TaskError(
            "conflict", f"Task {task_id} is not claimed: claim it before you {action} it."
        )
    if task.claimed_by != actor:
        raise TaskError("conflict", f"Task {task_id} is claimed by another person.")
    if task.allowed_decisions and task.task_token is None and not task.informational:
        raise TaskError("conflict", f"Task {task_id} is being escalated; retry in a moment.")
    refs = _patient_documents(store, task, decision, documents, ehr) if documents else ()
    if documents is not None and not refs:
        raise TaskError("invalid", "documents: give at least one document id, or leave it out.")
    completed = _change(
        store,
        task,
        status=TaskStatus.COMPLETED,
        decision=decision,
        completed_by=actor,
        completed_at=now,
    )
    _audit(
        store,
        task,
        actor=actor,
        action="task_acknowledged" if decision == ACKNOWLEDGED else "task_completed",
        now=now,
        reason=reason,
        role=role,
        decision=decision,
        **({"documents": list(refs)} if refs else {}),
    )
    if task.suggestion:
        from careflow.ml.governance import record_review

        record_review(
            store,
            instance_id=task.instance_id,
            suggestion=task.suggestion,
            decision=decision,
            actor=actor,
            now=now,
        )
    store.record_milestone(
        Milestone(
            instance_id=task.instance_id,
            name="task_completed",
            at=now,
            detail=f"{decision} by {actor}",
        )
    )
    if task.task_token:
        try:
            engine.send_task_success(
                task.task_token,
                {
                    "task_id": task_id,
                    "decision": decision,
                    "actor": actor,
                    "note": reason,
                    **({"documents": list(refs)} if refs else {}),
                },
            )
        except StaleTaskToken:
            store.update_task(completed.model_copy(update={"status": TaskStatus.CLOSED}))
            raise TaskError(
                "conflict", f"The workflow stopped waiting on task {task_id}."
            ) from None
    return completed


def _patient_documents(
    store: StateStore, task: HumanTask, decision: str, documents: Sequence[str], ehr: Any
) -> tuple[str, ...]:
    """The given document ids as ``DocumentReference/<id>`` references, each one of the
    task's patient's documents (an id the EHR does not list for the patient is refused)."""
    if decision not in ATTACH_DECISIONS:
        raise TaskError(
            "invalid",
            f"documents go with {', '.join(sorted(ATTACH_DECISIONS))}, not with {decision}.",
        )
    refs = tuple(dict.fromkeys(d if "/" in d else f"DocumentReference/{d}" for d in documents))
    if len(refs) > MAX_DOCUMENTS:
        raise TaskError("invalid", f"documents: at most {MAX_DOCUMENTS}.")
    instance = store.get_instance(task.instance_id)
    patient = (instance.subject_refs if instance is not None else {}).get("patient")
    if not patient:
        raise TaskError("invalid", f"Task {task.task_id} has no patient to attach documents of.")
    if ehr is None:
        from careflow import wiring

        ehr = wiring.ehr()
    from careflow.ports import ConnectorError

    try:
        known = {d.document_id for d in ehr.patient_documents(patient)}
    except ConnectorError:
        raise TaskError(
            "conflict", "The EHR could not list the patient's documents; retry in a moment."
        ) from None
    unknown = [r for r in refs if r not in known]
    if unknown:
        raise TaskError("invalid", f"documents: not the patient's documents: {', '.join(unknown)}.")
    return refs


def acknowledge_task(
    store: StateStore,
    engine: WorkflowEngine,
    *,
    task_id: str,
    actor: str,
    reason: str,
    now: datetime,
    policies: PolicyReader,
    directory: ActorRoles | None = None,
) -> HumanTask:
    """Completes a task that offers no decision (an alert, a chase, an appeal to consider)."""
    task = _find(store, task_id)
    if task.allowed_decisions:
        raise TaskError(
            "invalid",
            f"Task {task_id} needs a decision ({', '.join(task.allowed_decisions)}), "
            "not an acknowledgement.",
        )
    return complete_task(
        store,
        engine,
        task_id=task_id,
        actor=actor,
        decision=ACKNOWLEDGED,
        reason=reason,
        now=now,
        policies=policies,
        directory=directory,
    )
