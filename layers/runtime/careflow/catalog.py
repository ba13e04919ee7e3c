"""The one catalog: every workflow declared once, read by the CDK app and the local cloud.

Nothing about a workflow is written twice. The CDK app (``stacks/``) and the local
cloud (``careflow.localcloud``) both build their resources from :data:`CATALOG`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

REPO_ROOT = Path(__file__).resolve().parents[3]
STATEMACHINES_DIR = REPO_ROOT / "statemachines"
LAMBDAS_DIR = REPO_ROOT / "lambdas"

PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9]*)\}")

# Placeholders every ASL file may use besides its functions' ARNs.
PLATFORM_PLACEHOLDERS = ("EventBusName", "TableName")

EVENT_BUS_NAME = "careflow"


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function: logical name (ASL placeholder ``${<Name>FunctionArn}``), handler."""

    name: str
    handler: str  # "<module>.<function>" relative to lambdas/
    description: str
    timeout_seconds: int = 30
    memory_mb: int = 512
    # Sends task tokens back (SendTaskSuccess/Failure/Heartbeat): the CDK app grants it.
    answers_task_tokens: bool = False

    @property
    def placeholder(self) -> str:
        return f"{self.name}FunctionArn"

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@dataclass(frozen=True)
class Trigger:
    """An EventBridge pattern that starts a workflow (through the intake function)."""

    source: str
    detail_type: str
    detail: Mapping[str, Any] | None = None

    def pattern(self) -> dict[str, Any]:
        pattern: dict[str, Any] = {"source": [self.source], "detail-type": [self.detail_type]}
        if self.detail:
            pattern["detail"] = dict(self.detail)
        return pattern


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
    function: str  # logical name of a shared function

    def pattern(self) -> dict[str, Any]:
        return {"source": [self.source], "detail-type": [self.detail_type]}


@dataclass(frozen=True)
class Workflow:
    id: str  # kebab-case, stable: appears in ARNs, table keys and metrics
    name: str  # PascalCase: the state machine's name
    title: str
    asl: str  # file name under statemachines/
    type: Literal["STANDARD", "EXPRESS"]
    functions: tuple[FunctionSpec, ...]
    triggers: tuple[Trigger, ...]
    slas: tuple[Sla, ...] = ()
    kpis: tuple[Kpi, ...] = ()
    publishes: tuple[str, ...] = ()  # detail-types it puts on the bus
    subscriptions: tuple[Subscription, ...] = field(default=())

    @property
    def asl_path(self) -> Path:
        return STATEMACHINES_DIR / self.asl

    def definition_text(self) -> str:
        return self.asl_path.read_text(encoding="utf-8")

    def placeholders(self) -> set[str]:
        return set(PLACEHOLDER.findall(self.definition_text()))

    def sla(self, name: str) -> Sla:
        for sla in self.slas:
            if sla.name == name:
                return sla
        raise KeyError(f"workflow {self.id} has no SLA named {name}")

    def sla_seconds(self) -> dict[str, int]:
        return {sla.name: sla.seconds for sla in self.slas}

    def substitutions(
        self, function_arns: Mapping[str, str], *, event_bus_name: str, table_name: str
    ) -> dict[str, str]:
        """Values for every ``${...}`` in the ASL file, keyed by placeholder name."""
        subs = {fn.placeholder: function_arns[fn.name] for fn in self.functions}
        subs["EventBusName"] = event_bus_name
        subs["TableName"] = table_name
        return subs

    def render(
        self, function_arns: Mapping[str, str], *, event_bus_name: str, table_name: str
    ) -> dict[str, Any]:
        """The ASL with every placeholder filled; raises if one is left."""
        subs = self.substitutions(
            function_arns, event_bus_name=event_bus_name, table_name=table_name
        )
        missing = self.placeholders() - subs.keys()
        if missing:
            raise KeyError(f"{self.asl}: no substitution for {sorted(missing)}")
        text = PLACEHOLDER.sub(lambda m: subs[m.group(1)], self.definition_text())
        rendered: dict[str, Any] = json.loads(text)
        return rendered


def _fn(name: str, handler: str, description: str, **kw: Any) -> FunctionSpec:
    return FunctionSpec(name=name, handler=handler, description=description, **kw)


# Functions shared by all workflows: event intake, human tasks, payer callbacks.
INTAKE = _fn("Intake", "intake.handler", "Validates domain events and starts workflows once")
SHARED_FUNCTIONS: tuple[FunctionSpec, ...] = (
    INTAKE,
    _fn(
        "PayerDecision",
        "payer_decision.handler",
        "Resumes the workflow waiting on a pended prior authorization",
        answers_task_tokens=True,
    ),
    _fn("CreateHumanTask", "human_task_create.handler", "Opens a human task with a task token"),
    _fn("EscalateHumanTask", "human_task_escalate.handler", "Escalates an overdue human task"),
)

SURGICAL_CASE_READINESS = Workflow(
    id="surgical-case-readiness",
    name="SurgicalCaseReadiness",
    title="Surgical case readiness",
    asl="surgical_case_readiness.asl.json",
    type="STANDARD",
    functions=(
        _fn("RegisterCase", "readiness_register.handler", "Records the case and its milestones"),
        _fn(
            "SubmitPriorAuth",
            "readiness_prior_auth.handler",
            "Submits the Da Vinci PAS request",
        ),
        _fn(
            "AwaitPayerDecision",
            "readiness_await_payer.handler",
            "Parks the pended authorization's task token until the payer decides",
            answers_task_tokens=True,  # resumes at once when the decision came first
        ),
        _fn("VerifyBenefits", "readiness_benefits.handler", "CoverageEligibility check"),
        _fn(
            "CheckClinicianAndRoom",
            "readiness_resources.handler",
            "Surgeon, anesthesia and OR availability",
        ),
        _fn(
            "CheckSupplies",
            "readiness_supplies.handler",
            "Implants and case-cart supplies on hand",
        ),
        _fn(
            "CreateRequisition",
            "readiness_requisition.handler",
            "Procurement requisition for a shortage",
        ),
        _fn("CheckSterileProcessing", "readiness_sterile.handler", "Instrument tray readiness"),
        _fn("RecordDependency", "readiness_record.handler", "Records a dependency result"),
        _fn("EvaluateReadiness", "readiness_evaluate.handler", "READY / AT_RISK / BLOCKED"),
        _fn(
            "ApplyCoordinatorDecision",
            "readiness_apply_decision.handler",
            "Re-checks the case after a coordinator's decision",
        ),
        _fn("FinalizeCase", "readiness_finalize.handler", "Writes the outcome and its reasons"),
        *SHARED_FUNCTIONS[2:],
    ),
    triggers=(
        Trigger(
            source="careflow.scheduling",
            detail_type="Appointment.Booked",
            detail={"data": {"appointment_type": ["procedure"]}},
        ),
    ),
    slas=(
        Sla("coordinator_task", 4 * 3600, "a coordinator acts on a threatened case"),
        Sla("pend_escalation_expedited", 48 * 3600, "escalate an expedited pend"),
        Sla("pend_deadline_expedited", 72 * 3600, "CMS-0057-F expedited decision clock"),
        Sla("pend_escalation_standard", 5 * 86400, "escalate a standard pend"),
        Sla("pend_deadline_standard", 7 * 86400, "CMS-0057-F standard decision clock"),
        Sla("hard_stop", 72 * 3600, "readiness must be settled this long before the case"),
    ),
    kpis=(
        Kpi("CasesReady", "Count", "cases found READY"),
        Kpi("CasesAtRisk", "Count", "cases found AT_RISK"),
        Kpi("CasesBlocked", "Count", "cases found BLOCKED"),
        Kpi("AuthorizationTurnaround", "Seconds", "submission to payer decision"),
        Kpi("PriorAuthPended", "Count", "authorizations pended by the payer"),
        Kpi("RequisitionsCreated", "Count", "shortages turned into requisitions"),
        Kpi("HumanTasksEscalated", "Count", "tasks escalated for breaching their SLA"),
    ),
    publishes=("Case.Ready", "Case.AtRisk", "Case.Blocked"),
    subscriptions=(Subscription("careflow.payer", "PriorAuth.Decided", "PayerDecision"),),
)

CATALOG: tuple[Workflow, ...] = (SURGICAL_CASE_READINESS,)


def workflow(workflow_id: str) -> Workflow:
    for wf in CATALOG:
        if wf.id == workflow_id:
            return wf
    raise KeyError(f"no workflow {workflow_id!r} in the catalog")


def all_functions() -> dict[str, FunctionSpec]:
    """Every function once, by logical name (shared ones appear in several workflows)."""
    functions: dict[str, FunctionSpec] = {fn.name: fn for fn in SHARED_FUNCTIONS}
    for wf in CATALOG:
        for fn in wf.functions:
            functions.setdefault(fn.name, fn)
    return functions
