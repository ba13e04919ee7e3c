"""The catalog: every registered workflow, read by the CDK app and the local cloud.

Workflows are not listed here: each is a package under ``careflow/workflows/`` found by
:mod:`careflow.kit.registry`. This module adds the functions that are not steps of a
workflow (event intake and event callbacks, which have handlers of their own) and the
views the CDK app and the local cloud need.
"""

from __future__ import annotations

from careflow.kit.registry import workflow, workflows
from careflow.kit.spec import (
    EVENT_BUS_NAME,
    LAMBDAS_DIR,
    PLACEHOLDER,
    PLATFORM_PLACEHOLDERS,
    STATEMACHINES_DIR,
    FunctionSpec,
    Kpi,
    Sla,
    Subscription,
    Trigger,
    Workflow,
)

__all__ = [
    "CATALOG",
    "EVENT_BUS_NAME",
    "EXECUTION_STATUS",
    "INTAKE",
    "LAMBDAS_DIR",
    "PLACEHOLDER",
    "PLATFORM_PLACEHOLDERS",
    "SHARED_FUNCTIONS",
    "STATEMACHINES_DIR",
    "FunctionSpec",
    "Kpi",
    "Sla",
    "Subscription",
    "Trigger",
    "Workflow",
    "all_functions",
    "workflow",
]

# Functions with a handler of their own: the targets of EventBridge rules.
INTAKE = FunctionSpec(
    name="Intake",
    handler="intake.handler",
    description="Validates domain events and starts workflows once",
)
PAYER_DECISION = FunctionSpec(
    name="PayerDecision",
    handler="payer_decision.handler",
    description="Resumes the workflow waiting on a pended prior authorization",
    answers_task_tokens=True,
)
EXECUTION_STATUS = FunctionSpec(
    name="ExecutionStatus",
    handler="execution_status.handler",
    description="Marks the instance of an execution that failed, timed out or was aborted",
)
MODEL_DRIFT = FunctionSpec(
    name="ModelDrift",
    handler="model_drift.handler",
    description="Daily: each triage model's input drift (PSI) as the ModelDriftPsi metric",
    timeout_seconds=300,
)
SHARED_FUNCTIONS: tuple[FunctionSpec, ...] = (
    INTAKE,
    PAYER_DECISION,
    EXECUTION_STATUS,
    MODEL_DRIFT,
)

CATALOG: tuple[Workflow, ...] = workflows()


def all_functions() -> dict[str, FunctionSpec]:
    """Every function once, by logical name (the kit's appear in several workflows)."""
    functions: dict[str, FunctionSpec] = {fn.name: fn for fn in SHARED_FUNCTIONS}
    for wf in CATALOG:
        for fn in wf.functions:
            functions.setdefault(fn.name, fn)
    return functions
