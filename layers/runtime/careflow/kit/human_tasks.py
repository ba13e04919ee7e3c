"""The human-task loop's steps (see :mod:`careflow.kit.asl`): open a task, escalate it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from careflow.domain.records import HumanTask
from careflow.domain.tasks import escalate_task, open_task, task_id_for
from careflow.kit.steps import StepInput, StepOutput, step
from careflow.ml import priority
from careflow.ml.governance import PredictorPort
from careflow.policies import PolicyReader
from careflow.ports import EventPublisher, StateStore


class TaskSpec(StepInput):
    facility_id: str
    purpose: str
    title: str
    subject_ref: str
    reasons: tuple[str, ...] = ()
    escalation_chain: tuple[str, ...] = ()
    allowed_decisions: tuple[str, ...] = ()
    excluded_actors: tuple[str, ...] = ()  # may not claim or decide it (separation of duties)
    policy_version: str = "v1"  # the version of the policy that set its SLA and chain
    deadline_at: datetime | None = None  # the subject's own deadline (the task priority model)
    value_usd: float | None = None
    suggestion: dict[str, Any] | None = None  # a model's, for the person to confirm


class HumanTaskSpec(StepOutput):
    """A step's answer that a ``careflow:HumanTask`` state opens (its ``Task.$``): the same
    fields as :class:`TaskSpec`, which reads it; every workflow returns this one model."""

    purpose: str
    title: str
    reasons: tuple[str, ...]
    escalation_chain: tuple[str, ...]
    allowed_decisions: tuple[str, ...]
    subject_ref: str
    facility_id: str
    policy_version: str
    excluded_actors: tuple[str, ...] = ()
    deadline_at: datetime | None = None
    value_usd: float | None = None
    suggestion: dict[str, Any] | None = None


class CreateHumanTask(StepInput):
    token: str
    instance_id: str
    workflow_id: str
    task: TaskSpec
    due_in_seconds: int = Field(gt=0)


class OpenedTask(StepOutput):
    task_id: str
    queue: str


def open_scored_task(
    store: StateStore,
    publisher: EventPublisher,
    *,
    predictor: PredictorPort | None,
    policies: PolicyReader,
    instance_id: str,
    workflow_id: str,
    spec: TaskSpec,
    due_in_seconds: int,
    token: str | None,
    now: datetime,
) -> HumanTask:
    """Opens the task ``spec`` describes with its task priority score and reasons (none when
    the model is off or in shadow): the kit's human-task loop (``token``: the execution
    waits on it) and a step's informational task (``token`` None: nothing waits on it, so
    no workflow awaits its decision)."""
    scored = priority.score(
        store,
        predictor,
        policies=policies,
        instance_id=instance_id,
        task_id=task_id_for(instance_id, spec.purpose),
        workflow_id=workflow_id,
        queue=(spec.escalation_chain or ("department_director",))[0],
        facility_id=spec.facility_id,
        due_in_seconds=due_in_seconds,
        deadline_at=spec.deadline_at,
        value_usd=spec.value_usd,
        awaits_decision=token is not None and bool(spec.allowed_decisions),
        now=now,
    )
    return open_task(
        store,
        publisher,
        instance_id=instance_id,
        workflow_id=workflow_id,
        facility_id=spec.facility_id,
        purpose=spec.purpose,
        title=spec.title,
        reasons=spec.reasons,
        subject_ref=spec.subject_ref,
        escalation_chain=spec.escalation_chain,
        due_in_seconds=due_in_seconds,
        token=token,
        allowed_decisions=spec.allowed_decisions,
        now=now,
        policy_version=spec.policy_version,
        excluded_actors=spec.excluded_actors,
        deadline_at=spec.deadline_at,
        value_usd=spec.value_usd,
        suggestion=spec.suggestion,
        priority=scored,
    )


@step()
def create_human_task(
    inp: CreateHumanTask,
    *,
    store: StateStore,
    publisher: EventPublisher,
    predictor: PredictorPort,
    policies: PolicyReader,
    now: datetime,
) -> OpenedTask:
    """Opens (or re-opens after escalation) the task the execution waits on, scored by the
    task priority model when the ai-models policy has it on (the inboxes order by it)."""
    task = open_scored_task(
        store,
        publisher,
        predictor=predictor,
        policies=policies,
        instance_id=inp.instance_id,
        workflow_id=inp.workflow_id,
        spec=inp.task,
        due_in_seconds=inp.due_in_seconds,
        token=inp.token,
        now=now,
    )
    return OpenedTask(task_id=task.task_id, queue=task.queue)


class EscalateHumanTask(StepInput):
    instance_id: str
    purpose: str


class Escalated(StepOutput):
    task_id: str
    queue: str
    level: int
    exhausted: bool


@step()
def escalate_human_task(
    inp: EscalateHumanTask, *, store: StateStore, publisher: EventPublisher, now: datetime
) -> Escalated:
    """The task's SLA ran out: move it up its escalation chain."""
    from careflow.observability import kpi_metric, metrics

    task_id = task_id_for(inp.instance_id, inp.purpose)
    task = escalate_task(store, publisher, task_id=task_id, now=now)
    metrics.add_metric(name="HumanTasksEscalated", unit="Count", value=1)
    # the enterprise sla_adherence: a task escalated is a task whose due time passed
    kpi_metric(
        "HumanTaskSlaMissed", "Count", 1, workflow_id=task.workflow_id, facility_id=task.facility_id
    )
    return Escalated(
        task_id=task.task_id,
        queue=task.queue,
        level=task.escalation_level,
        exhausted=task.escalation_level >= len(task.escalation_chain),
    )
