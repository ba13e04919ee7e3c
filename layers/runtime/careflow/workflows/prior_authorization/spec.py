"""Prior authorization, as the registry reads it."""

from __future__ import annotations

from typing import Any

from careflow.kit.spec import Kpi, Sla, Subscription, Trigger, Workflow, step_function
from careflow.workflows.prior_authorization import kpis
from careflow.workflows.prior_authorization.events import PriorAuthDecided, PriorAuthRequested

_STEPS = "careflow.workflows.prior_authorization.steps"
HOUR, DAY = 3600, 86400


def _input(event: Any) -> dict[str, Any]:
    """What the workflow takes from ``PriorAuth.Requested``: the request, as validated."""
    return {"request": event.data.model_dump(mode="json")}


def _request(event: Any) -> str:
    """The subject: the order's request id (one authorization instance per request)."""
    return str(event.data.request_id)


def _step(name: str, step: str, description: str, **kw: Any) -> Any:
    return step_function(name, f"{_STEPS}:{step}", description, **kw)


SPEC = Workflow(
    id="prior-authorization",
    name="PriorAuthorization",
    title="Prior authorization",
    asl="prior_authorization.asl.json",
    type="STANDARD",
    subject_type="prior-auth",
    policy="prior-authorization",
    steps=(
        _step("RegisterAuthRequest", "register_request", "Records the request, pins its clocks"),
        _step("SubmitAuthRequest", "submit_request", "Da Vinci PAS Claim/$submit"),
        _step(
            "AwaitAuthDecision",
            "await_decision",
            "Parks the pended request's task token until the payer's notification",
            answers_task_tokens=True,  # resumes at once when the decision came first
        ),
        _step(
            "AcceptAuthDecision",
            "accept_decision",
            "Takes the payer's answer PayerDecision re-read with $inquire (no second $inquire)",
        ),
        _step("InquireAuthDecision", "inquire", "Da Vinci PAS Claim/$inquire"),
        _step("EscalateAuthPend", "escalate_pend", "A person chases an overdue pend"),
        _step("ConcludeAuthRequest", "conclude", "Writes the outcome, opens an appeal task"),
    ),
    triggers=(
        Trigger(
            source="careflow.ehr",
            detail_type="PriorAuth.Requested",
            build_input=_input,
            subject=_request,
        ),
    ),
    event_schemas={
        "PriorAuth.Requested": PriorAuthRequested,
        "PriorAuth.Decided": PriorAuthDecided,
    },
    slas=(
        Sla("notification_overdue_expedited", 24 * HOUR, "no notification: $inquire allowed"),
        Sla("pend_escalation_expedited", 48 * HOUR, "escalate an expedited pend"),
        Sla("decision_clock_expedited", 72 * HOUR, "CMS-0057-F expedited decision clock"),
        Sla("notification_overdue_standard", 3 * DAY, "no notification: $inquire allowed"),
        Sla("pend_escalation_standard", 5 * DAY, "escalate a standard pend"),
        Sla("decision_clock_standard", 7 * DAY, "CMS-0057-F standard decision clock"),
        Sla("documents_task", 24 * HOUR, "the nurse attaches what the payer asked for"),
        Sla("appeal_task", 2 * DAY, "an appeal or a new request is started"),
    ),
    kpis=(
        Kpi("PriorAuthTurnaround", "Seconds", "request to the payer's final decision"),
        Kpi("PriorAuthPended", "Count", "requests the payer pended (pend rate with Concluded)"),
        Kpi("PriorAuthFirstPassApproved", "Count", "approved on first submission, no pend"),
        Kpi("PriorAuthClockBreached", "Count", "decision clocks that ran out"),
        Kpi("PriorAuthConcluded", "Count", "requests concluded"),
    ),
    served_kpis=kpis.DEFINITIONS,
    models=("careflow.workflows.prior_authorization.model:MODEL",),
    kpi_values="careflow.workflows.prior_authorization.kpis:values",
    publishes=("PriorAuth.Concluded",),
    subscriptions=(Subscription("careflow.payer", "PriorAuth.Decided", "PayerDecision"),),
    demo="careflow.workflows.prior_authorization.demo:run",
    bench="careflow.workflows.prior_authorization.bench:case",
)
