"""What a workflow package declares: its spec. Read by the registry, never by a step.

A package ``careflow/workflows/<package>/`` has a ``spec.py`` whose ``SPEC`` is a
:class:`Workflow`; its ASL file lives under ``statemachines/``. The catalog, intake, the
event schemas, the local cloud, the demo, observability and the CDK app read specs through
:mod:`careflow.kit.registry` and never name a workflow.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from careflow.kit import asl
from careflow.kit.asl import PLACEHOLDER
from careflow.kit.kpis import KpiDefinition, KpiValues

REPO_ROOT = Path(__file__).resolve().parents[4]
STATEMACHINES_DIR = REPO_ROOT / "statemachines"
LAMBDAS_DIR = REPO_ROOT / "lambdas"


# Placeholders every ASL file may use besides its functions' ARNs.
PLATFORM_PLACEHOLDERS = ("EventBusName", "TableName")

EVENT_BUS_NAME = "careflow"

# The generic entry point (lambdas/step.py): the function's configuration names its step.
STEP_HANDLER = "step.handler"
STEP_ENV = "CAREFLOW_STEP"


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function: logical name (ASL placeholder ``${<Name>FunctionArn}``).

    A step function names its step (``"<module>:<name>"``) and runs through the generic
    entry point; a function that truly differs (intake, event callbacks) names its own
    handler under ``lambdas/``.
    """

    name: str
    description: str
    step: str | None = None
    handler: str = STEP_HANDLER  # "<module>.<function>" relative to lambdas/
    timeout_seconds: int = 30
    memory_mb: int = 512
    # Sends task tokens back (SendTaskSuccess/Failure/Heartbeat): the CDK app grants it.
    answers_task_tokens: bool = False
    # Starts executions of other workflows' state machines (by workflow id).
    starts_workflows: tuple[str, ...] = ()
    # What the step reaches in the state table beyond instances and tasks by key (the CDK
    # app grants it; see stacks/permissions.py STORE_ACCESS): "census", "open_tasks",
    # "instances_by_status".
    store_access: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.step is None) == (self.handler == STEP_HANDLER):
            raise ValueError(f"{self.name}: give a step, or a handler of its own, not both")

    @property
    def placeholder(self) -> str:
        return f"{self.name}FunctionArn"

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]

    def environment(self) -> dict[str, str]:
        """What the function's configuration adds to the shared environment."""
        return {STEP_ENV: self.step} if self.step else {}


def step_function(name: str, step: str, description: str, **kw: Any) -> FunctionSpec:
    return FunctionSpec(name=name, step=step, description=description, **kw)


@dataclass(frozen=True)
class Trigger:
    """An EventBridge pattern that goes to intake for a workflow.

    ``effect`` says what the event does to the workflow's instance for its subject:

    - ``start`` (the default): starts it; ``build_input`` turns the validated event into
      the workflow's own input (beyond the envelope's metadata), and raises
      ``EnvelopeError`` for an event the workflow declines;
    - ``update``: ``build_input`` returns the instance record's new values (only
      ``scheduled_start`` for now), recorded with a milestone named after the event;
    - ``stop``: stops the running execution, the instance ends ``CANCELLED``.

    ``subject`` reads the business subject's id from the validated event (the
    appointment id, the order's request id): one instance per workflow, facility and
    subject, whatever the idempotency key. Without it (a ``start`` only), the
    idempotency key alone de-duplicates.

    ``reopens`` (a ``start`` with a ``subject`` only; off by default): a subject that was
    cancelled may be started again. A start event that occurred after the cancelling
    event (``metadata.occurred_at``, strictly later) starts a new instance, named after
    its own idempotency key; one that occurred before or at it (a late start of the
    cancelled episode) is refused, as it always is without ``reopens``.
    """

    source: str
    detail_type: str
    detail: Mapping[str, Any] | None = None
    build_input: Callable[[Any], dict[str, Any]] | None = None
    subject: Callable[[Any], str] | None = None
    effect: Literal["start", "update", "stop"] = "start"
    reopens: bool = False

    def __post_init__(self) -> None:
        if self.reopens and (self.effect != "start" or self.subject is None):
            raise ValueError(
                f"{self.detail_type}: only a start trigger with a subject reopens a subject"
            )

    def pattern(self) -> dict[str, Any]:
        pattern: dict[str, Any] = {"source": [self.source], "detail-type": [self.detail_type]}
        if self.detail:
            pattern["detail"] = dict(self.detail)
        return pattern


@dataclass(frozen=True)
class Schedule:
    """An EventBridge Scheduler schedule that puts ``detail_type`` on the bus for a facility
    (one of the workflow's triggers then starts it). The event's id, idempotency key and
    time come from the schedule's run (``<aws.scheduler.execution-id>``,
    ``<aws.scheduler.scheduled-time>``); locally, put the same event (the partner API's
    ``POST /v1/events`` or ``LocalCloud.put_event``)."""

    name: str  # PascalCase, unique across the catalog: the schedule's logical id
    expression: str  # "cron(0 3,15 * * ? *)", in ``time_zone``
    time_zone: str
    source: str
    detail_type: str
    facility_id: str
    data: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def detail(self) -> dict[str, Any]:
        """The event's ``detail``, with the scheduler's context attributes."""
        run, at = "<aws.scheduler.execution-id>", "<aws.scheduler.scheduled-time>"
        return {
            "metadata": {
                "event_id": run,
                "idempotency_key": f"schedule:{self.name}:{at}",
                "facility_id": self.facility_id,
                "occurred_at": at,
                "schema_version": "1.0",
                "correlation_id": run,
            },
            "data": dict(self.data),
        }


@dataclass(frozen=True)
class Sla:
    name: str
    seconds: int
    description: str


@dataclass(frozen=True)
class Kpi:
    name: str  # CloudWatch metric name
    unit: Literal["Count", "Seconds", "Percent"]
    description: str


@dataclass(frozen=True)
class Subscription:
    """A non-starting event a workflow reacts to (e.g. a payer decision that resumes it)."""

    source: str
    detail_type: str
    function: str  # logical name of a function with a handler of its own

    def pattern(self) -> dict[str, Any]:
        return {"source": [self.source], "detail-type": [self.detail_type]}


@dataclass(frozen=True)
class Scenario:
    """A demo scenario: ``run(demo)`` drives it on the local cloud (see localcloud.demo)."""

    key: str
    subject_id: str
    story: str


@dataclass(frozen=True)
class Workflow:
    id: str  # kebab-case, stable: appears in ARNs, table keys and metrics
    name: str  # PascalCase: the state machine's name
    title: str
    asl: str  # file name under statemachines/ (or an absolute path)
    type: Literal["STANDARD", "EXPRESS"]
    steps: tuple[FunctionSpec, ...]
    triggers: tuple[Trigger, ...] = ()
    slas: tuple[Sla, ...] = ()
    kpis: tuple[Kpi, ...] = ()  # CloudWatch metrics its steps emit
    # KPIs of its own that GET /v1/kpis serves beside the generic ones (careflow.kit.kpis):
    # their definitions, and "<module>:<name>" of the KpiValues function computing them.
    served_kpis: tuple[KpiDefinition, ...] = ()
    kpi_values: str | None = None
    publishes: tuple[str, ...] = ()  # detail-types it puts on the bus
    subscriptions: tuple[Subscription, ...] = ()
    schedules: tuple[Schedule, ...] = ()  # EventBridge Scheduler schedules that start it
    # Data models of the detail-types it consumes (triggers and subscriptions), by detail-type.
    event_schemas: Mapping[str, builtins.type] = field(default_factory=dict)
    subject_type: str = "subject"
    # The policy its instances pin (policies/enterprise/<policy>.json): who may work its
    # queues (queue_roles) is read from it, e.g. for what the operations page shows a role.
    policy: str = ""
    # Workflows this one starts as children (states:startExecution.sync:2), by workflow id.
    children: tuple[str, ...] = ()
    # "<module>:<name>" of a callable(demo) -> list of case reports (localcloud.demo).
    demo: str | None = None
    # "<module>:<name>" of its bench case (careflow.kit.bench): a callable(cloud, key) ->
    # the intake target of one start event; ``make bench`` runs it in the mix of
    # workflows. One that waits for people or later events has a ``drive(cloud, key,
    # instance_id)`` in the same module that plays them. None: left out of the mix;
    # ``bench_excluded`` says why (a few words, printed on its line).
    bench: str | None = None
    bench_excluded: str = ""
    # "<module>:<name>" of the models (careflow.ml.registry.ModelDef) it owns: they learn
    # from its history and its steps ask them through the predictor port.
    models: tuple[str, ...] = ()
    package: str = ""  # set by the registry

    @property
    def asl_path(self) -> Path:
        path = Path(self.asl)
        return path if path.is_absolute() else STATEMACHINES_DIR / self.asl

    def definition_text(self) -> str:
        return self.asl_path.read_text(encoding="utf-8")

    def expanded(self) -> dict[str, Any]:
        """The ASL with the kit's macros expanded, placeholders still in place."""
        return asl.expand_text(self.definition_text())

    def placeholders(self) -> set[str]:
        import json

        return set(PLACEHOLDER.findall(json.dumps(self.expanded())))

    @property
    def functions(self) -> tuple[FunctionSpec, ...]:
        """Its steps and the kit's functions its expanded definition uses."""
        used = self.placeholders()
        return (*self.steps, *(fn for fn in KIT_FUNCTIONS if fn.placeholder in used))

    def kpi_function(self) -> KpiValues | None:
        """The function computing its :attr:`served_kpis` (imported), if it has one."""
        if self.kpi_values is None:
            return None
        import importlib

        module, name = self.kpi_values.split(":")
        fn: KpiValues = getattr(importlib.import_module(module), name)
        return fn

    def sla(self, name: str) -> Sla:
        for sla in self.slas:
            if sla.name == name:
                return sla
        raise KeyError(f"workflow {self.id} has no SLA named {name}")

    def sla_seconds(self) -> dict[str, int]:
        return {sla.name: sla.seconds for sla in self.slas}

    def substitutions(
        self,
        function_arns: Mapping[str, str],
        *,
        event_bus_name: str,
        table_name: str,
        state_machine_arns: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Values for every ``${...}`` in the expanded ASL, keyed by placeholder name."""
        subs = {fn.placeholder: function_arns[fn.name] for fn in self.functions}
        subs["EventBusName"] = event_bus_name
        subs["TableName"] = table_name
        for child in self.children:
            subs[state_machine_placeholder(child)] = (state_machine_arns or {})[child]
        return subs

    def render(
        self,
        function_arns: Mapping[str, str],
        *,
        event_bus_name: str,
        table_name: str,
        state_machine_arns: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Plain ASL, every macro expanded and every placeholder filled; raises if one is left.

        The CDK app and the local cloud both call this (the CDK passes tokens as values)."""
        subs = self.substitutions(
            function_arns,
            event_bus_name=event_bus_name,
            table_name=table_name,
            state_machine_arns=state_machine_arns,
        )
        return asl.render(self.expanded(), subs, source=self.asl)


def state_machine_placeholder(workflow_id: str) -> str:
    """``${<PascalCase id>StateMachineArn}``, for a child workflow's state machine."""
    return "".join(part.capitalize() for part in workflow_id.split("-")) + "StateMachineArn"


# The kit's own functions, used by the human-task macro of any workflow.
_HUMAN_TASKS = "careflow.kit.human_tasks"
CREATE_HUMAN_TASK = step_function(
    "CreateHumanTask", f"{_HUMAN_TASKS}:create_human_task", "Opens a human task with a task token"
)
ESCALATE_HUMAN_TASK = step_function(
    "EscalateHumanTask",
    f"{_HUMAN_TASKS}:escalate_human_task",
    "Escalates an overdue human task",
)
KIT_FUNCTIONS: tuple[FunctionSpec, ...] = (CREATE_HUMAN_TASK, ESCALATE_HUMAN_TASK)
