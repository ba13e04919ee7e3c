"""Surgical case readiness, one registered step per state-machine task.

Each takes its input model (the small JSON object the ASL selects), the ports it needs
and ``now``, and returns its output model. The generic entry point (``lambdas/step.py``)
runs them on AWS and in the local cloud; unit tests call them with in-memory fakes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from careflow.canonical.cases import SurgicalCase
from careflow.canonical.dependencies import (
    OUTCOME_EVENTS,
    DependencyResult,
    DependencyStatus,
    Outcome,
)
from careflow.canonical.payer import (
    AuthDecision,
    EligibilityRequest,
    PriorAuthRequest,
    PriorAuthResponse,
)
from careflow.canonical.supply import RequisitionRequest
from careflow.domain.records import AuditEntry, Instance, InstanceStatus, Milestone
from careflow.domain.tasks import open_task
from careflow.events.envelope import envelope
from careflow.kit.steps import StepInput, StepOutput, step
from careflow.ports import (
    EhrPort,
    ErpPort,
    EventPublisher,
    PayerPort,
    StateStore,
    SterileProcessingPort,
    WorkflowEngine,
)
from careflow.workflows.surgical_case_readiness import rules as r

WORKFLOW_ID = "surgical-case-readiness"


# -- inputs and outputs --------------------------------------------------------------------
class CaseStep(StepInput):
    instance_id: str
    case: SurgicalCase


class PolicyCaseStep(CaseStep):
    policy: r.Policy


class RegisterCase(StepInput):
    workflow_id: str = WORKFLOW_ID
    instance_id: str
    case_id: str
    correlation_id: str
    sla: dict[str, int]


class Registered(StepOutput):
    workflow_id: str
    instance_id: str
    correlation_id: str
    case: SurgicalCase
    policy: r.Policy


class AuthSubmitted(StepOutput):
    decision: AuthDecision
    preauth_ref: str | None
    submitted_at: str
    result: DependencyResult


class AwaitPayer(PolicyCaseStep):
    token: str
    escalated: bool = False
    preauth_ref: str
    submitted_at: str


class Waiting(StepOutput):
    resumed: bool = False
    waiting: bool = False


class PayerAnswer(StepInput):
    decision: AuthDecision
    preauth_ref: str | None = None


class PayerDecided(StepInput):
    instance_id: str
    payer: PayerAnswer


class PendedAuth(StepInput):
    preauth_ref: str | None = None


class PendExpired(StepInput):
    instance_id: str
    policy: r.Policy
    auth: PendedAuth


class SuppliesChecked(StepOutput):
    shortages: tuple[r.Shortage, ...]
    requisitions_needed: tuple[RequisitionRequest, ...]
    needs_requisition: bool
    result: DependencyResult


class CreateRequisitions(StepInput):
    instance_id: str
    policy: r.Policy
    supplies: SuppliesChecked


class DependencyFailed(StepInput):
    instance_id: str
    dependency: str
    error: dict[str, Any] = {}


class Evaluate(CaseStep):
    dependencies: tuple[DependencyResult, ...]


class CoordinatorTaskSpec(StepOutput):
    purpose: str
    title: str
    reasons: tuple[str, ...]
    escalation_chain: tuple[str, ...]
    allowed_decisions: tuple[str, ...]
    subject_ref: str
    facility_id: str


class Evaluated(StepOutput):
    outcome: Outcome
    reasons: tuple[str, ...]
    needs_coordinator: bool
    escalation_chain: tuple[str, ...] = ()
    threatened: tuple[str, ...] = ()
    task: CoordinatorTaskSpec | None = None


class CoordinatorAnswer(StepInput):
    decision: str
    note: str = ""


class ApplyDecision(PolicyCaseStep):
    dependencies: tuple[DependencyResult, ...]
    coordinator: CoordinatorAnswer


class Rechecked(Evaluated):
    dependencies: tuple[DependencyResult, ...]


class EvaluationSoFar(StepInput):
    outcome: Outcome
    reasons: tuple[str, ...] = ()


class Finalize(PolicyCaseStep):
    correlation_id: str
    evaluation: EvaluationSoFar
    escalation_exhausted: bool = False


class Finalized(StepOutput):
    outcome: Outcome
    reasons: tuple[str, ...]
    detail_type: str
    detail: dict[str, Any]


# -- helpers -------------------------------------------------------------------------------
def _milestone(
    store: StateStore,
    instance_id: str,
    name: str,
    now: datetime,
    status: str = "DONE",
    detail: str = "",
) -> None:
    store.record_milestone(
        Milestone(instance_id=instance_id, name=name, at=now, status=status, detail=detail)
    )


def _checked(
    store: StateStore,
    instance_id: str,
    name: str,
    result: DependencyResult,
    now: datetime,
    *,
    unless_ok: str,
) -> DependencyResult:
    """Records a check's milestone (DONE if the dependency is OK, else ``unless_ok``)."""
    _milestone(
        store,
        instance_id,
        name,
        now,
        status="DONE" if result.status is DependencyStatus.OK else unless_ok,
    )
    return result


def _eligibility_request(case: SurgicalCase) -> EligibilityRequest:
    return EligibilityRequest(
        case_id=case.case_id,
        patient_ref=case.patient_ref,
        coverage_ref=case.coverage_ref,
        payer_id=case.payer_id,
        service_date=case.scheduled_start,
        procedure_codes=case.procedure_codes,
    )


# -- steps ---------------------------------------------------------------------------------
@step()
def register_case(
    inp: RegisterCase, *, store: StateStore, ehr: EhrPort, now: datetime
) -> Registered:
    """Fetches the case from the EHR, records the instance, resolves the case's timers."""
    case = ehr.get_surgical_case(inp.case_id)
    policy = r.case_policy(case, inp.sla)
    store.put_instance(
        Instance(
            instance_id=inp.instance_id,
            workflow_id=WORKFLOW_ID,
            subject_type="case",
            subject_id=case.case_id,
            facility_id=case.facility_id,
            status=InstanceStatus.RUNNING,
            started_at=now,
            updated_at=now,
            correlation_id=inp.correlation_id,
            execution_name=inp.instance_id,
        ),
        with_entries=[
            Milestone(
                instance_id=inp.instance_id,
                name="readiness_started",
                at=now,
                detail=f"case {case.case_id} on {case.scheduled_start.isoformat()}",
            )
        ],
    )
    return Registered(
        workflow_id=inp.workflow_id,
        instance_id=inp.instance_id,
        correlation_id=inp.correlation_id,
        case=case,
        policy=policy,
    )


@step()
def submit_prior_auth(
    inp: CaseStep, *, store: StateStore, payer: PayerPort, now: datetime
) -> AuthSubmitted:
    case = inp.case
    if not case.auth_required:
        response = PriorAuthResponse(decision=AuthDecision.NOT_REQUIRED)
    else:
        response = payer.submit_prior_auth(
            PriorAuthRequest(
                case_id=case.case_id,
                patient_ref=case.patient_ref,
                coverage_ref=case.coverage_ref,
                payer_id=case.payer_id,
                facility_id=case.facility_id,
                procedure_codes=case.procedure_codes,
                service_date=case.scheduled_start,
                priority=case.priority,
            )
        )
    result = r.authorization_result(response)
    name = {AuthDecision.PENDED: "authorization_pended"}.get(
        response.decision, f"authorization_{response.decision.value.lower()}"
    )
    store.record(
        Milestone(
            instance_id=inp.instance_id,
            name="authorization_submitted",
            at=now,
            detail=f"preauth {response.preauth_ref}",
        ),
        Milestone(
            instance_id=inp.instance_id,
            name=name,
            at=now + timedelta(microseconds=1),
            status="PENDING" if response.decision is AuthDecision.PENDED else "DONE",
        ),
    )
    return AuthSubmitted(
        decision=response.decision,
        preauth_ref=response.preauth_ref,
        submitted_at=now.isoformat(),
        result=result,
    )


@step()
def await_payer_decision(
    inp: AwaitPayer,
    *,
    store: StateStore,
    engine: WorkflowEngine,
    publisher: EventPublisher,
    now: datetime,
) -> Waiting:
    """Parks the task token under the pended authorization's reference.

    If the payer's answer already came (it can overtake us), resumes at once.
    On the escalation pass, also opens an informational task for utilization review.
    """
    ref = inp.preauth_ref
    if inp.escalated:
        case = inp.case
        open_task(
            store,
            publisher,
            instance_id=inp.instance_id,
            workflow_id=WORKFLOW_ID,
            facility_id=case.facility_id,
            purpose=f"pend-overdue:{ref}",
            title=f"Payer decision on {ref} overdue: contact the payer",
            reasons=(f"authorization {ref} pended since {inp.submitted_at}",),
            subject_ref=f"case/{case.case_id}",
            escalation_chain=("utilization_review_nurse", "department_director"),
            due_in_seconds=inp.policy.pend_remaining_s,
            token=None,
            allowed_decisions=(),
            now=now,
        )
        _milestone(
            store,
            inp.instance_id,
            "authorization_escalated",
            now,
            status="ESCALATED",
            detail=f"no payer decision on {ref} yet",
        )
    early = store.take_early_answer(ref)
    if early is not None:
        engine.send_task_success(inp.token, early)
        return Waiting(resumed=True)
    store.put_wait(ref, inp.token, inp.instance_id, now)
    return Waiting(waiting=True)


@step()
def payer_decided(inp: PayerDecided, *, store: StateStore, now: datetime) -> DependencyResult:
    """The step after the payer's decision arrived: its dependency result."""
    response = PriorAuthResponse(decision=inp.payer.decision, preauth_ref=inp.payer.preauth_ref)
    result = r.authorization_result(response)
    _milestone(
        store,
        inp.instance_id,
        f"authorization_{response.decision.value.lower()}",
        now,
        detail=f"payer decided {response.preauth_ref}",
    )
    return result


@step()
def pend_expired(inp: PendExpired, *, store: StateStore, now: datetime) -> DependencyResult:
    hours = (inp.policy.pend_escalation_s + inp.policy.pend_remaining_s) / 3600
    result = r.pend_expired_result(inp.auth.preauth_ref, hours)
    _milestone(
        store,
        inp.instance_id,
        "authorization_clock_expired",
        now,
        status="FAILED",
        detail=f"{hours:g} h without a payer decision",
    )
    return result


@step()
def verify_benefits(
    inp: CaseStep, *, store: StateStore, payer: PayerPort, now: datetime
) -> DependencyResult:
    response = payer.check_eligibility(_eligibility_request(inp.case))
    result = r.benefits_result(response)
    return _checked(store, inp.instance_id, "benefits_verified", result, now, unless_ok="FAILED")


@step()
def check_clinician_and_room(
    inp: CaseStep, *, store: StateStore, ehr: EhrPort, now: datetime
) -> DependencyResult:
    case = inp.case
    result = r.clinician_and_room_result(
        ehr.appointment_participants(case.appointment_id), case, now
    )
    return _checked(
        store, inp.instance_id, "clinician_and_room_checked", result, now, unless_ok="PENDING"
    )


@step()
def check_supplies(
    inp: PolicyCaseStep, *, store: StateStore, erp: ErpPort, now: datetime
) -> SuppliesChecked:
    case = inp.case
    positions = erp.stock_positions(case.facility_id, [n.item_id for n in case.supplies])
    shortages = r.find_shortages(case, positions)
    requests = r.requisitions_for(case, shortages, inp.policy)
    _milestone(
        store,
        inp.instance_id,
        "supplies_checked",
        now,
        status="DONE" if not shortages else "PENDING",
        detail=f"{len(shortages)} shortage(s)",
    )
    return SuppliesChecked(
        shortages=tuple(shortages),
        requisitions_needed=tuple(requests),
        needs_requisition=bool(requests),
        result=r.supplies_result(shortages, (), inp.policy),
    )


@step()
def create_requisitions(
    inp: CreateRequisitions, *, store: StateStore, erp: ErpPort, now: datetime
) -> DependencyResult:
    created = []
    for request in inp.supplies.requisitions_needed:
        req = erp.create_requisition(request)
        created.append(req)
        _milestone(
            store,
            inp.instance_id,
            "requisition_created",
            now,
            detail=f"{req.requisition_id} expected {req.expected_delivery.isoformat()}",
        )
    store.record_audit(
        AuditEntry(
            instance_id=inp.instance_id,
            at=now,
            actor="system:readiness",
            action="requisition_created",
            reason="implant or supply shortage",
            policy_version=inp.policy.policy_version,
            detail={"requisitions": [q.requisition_id for q in created]},
        )
    )
    return r.supplies_result(inp.supplies.shortages, created, inp.policy)


@step()
def check_sterile_processing(
    inp: PolicyCaseStep, *, store: StateStore, sterile: SterileProcessingPort, now: datetime
) -> DependencyResult:
    case = inp.case
    trays = sterile.tray_status(case.facility_id, case.tray_ids)
    result = r.sterile_result(trays, case, inp.policy)
    return _checked(
        store, inp.instance_id, "sterile_processing_checked", result, now, unless_ok="PENDING"
    )


@step()
def record_dependency_error(
    inp: DependencyFailed, *, store: StateStore, now: datetime
) -> DependencyResult:
    """A check's Catch: the dependency becomes ERROR (a person verifies it by hand)."""
    name = str(inp.error.get("Error", "Error"))
    result = r.error_result(inp.dependency, name)
    _milestone(
        store,
        inp.instance_id,
        f"{inp.dependency}_check_failed",
        now,
        status="FAILED",
        detail=name,
    )
    store.record_audit(
        AuditEntry(
            instance_id=inp.instance_id,
            at=now,
            actor="system:readiness",
            action="dependency_check_failed",
            reason=name,
            detail={"dependency": inp.dependency},
        )
    )
    return result


@step()
def evaluate_readiness(inp: Evaluate, *, store: StateStore, now: datetime) -> Evaluated:
    case = inp.case
    evaluation = r.evaluate(inp.dependencies)
    _milestone(store, inp.instance_id, "readiness_evaluated", now, detail=evaluation.outcome.value)
    task = None
    if evaluation.needs_coordinator:
        task = CoordinatorTaskSpec(
            purpose="coordinator",
            title=f"Case {case.case_id} at risk: decide before the hard stop",
            reasons=evaluation.reasons,
            escalation_chain=(r.COORDINATOR_QUEUE, *evaluation.escalation_chain),
            allowed_decisions=r.COORDINATOR_DECISIONS,
            subject_ref=f"case/{case.case_id}",
            facility_id=case.facility_id,
        )
    return Evaluated(**evaluation.model_dump(), task=task)


@step()
def apply_coordinator_decision(
    inp: ApplyDecision,
    *,
    store: StateStore,
    ehr: EhrPort,
    payer: PayerPort,
    erp: ErpPort,
    sterile: SterileProcessingPort,
    now: datetime,
) -> Rechecked:
    """Re-checks what was threatened, then settles the outcome the data supports."""
    case, policy = inp.case, inp.policy
    decision = inp.coordinator.decision
    rechecked: list[DependencyResult] = []
    for dep in inp.dependencies:
        if dep.status in (DependencyStatus.OK, DependencyStatus.BLOCKED) or decision == "CANCEL":
            rechecked.append(dep)
        elif dep.dependency == r.SUPPLIES:
            positions = erp.stock_positions(case.facility_id, [n.item_id for n in case.supplies])
            shortages = r.find_shortages(case, positions)
            rechecked.append(dep if shortages else r.supplies_result((), (), policy))
        elif dep.dependency == r.STERILE_PROCESSING:
            rechecked.append(
                r.sterile_result(sterile.tray_status(case.facility_id, case.tray_ids), case, policy)
            )
        elif dep.dependency == r.CLINICIAN_AND_ROOM:
            rechecked.append(
                r.clinician_and_room_result(
                    ehr.appointment_participants(case.appointment_id), case, now
                )
            )
        elif dep.dependency == r.BENEFITS:
            rechecked.append(r.benefits_result(payer.check_eligibility(_eligibility_request(case))))
        else:  # an authorization is not re-submitted: the payer's answer stands
            rechecked.append(dep)
    evaluation = r.after_coordinator(decision, rechecked, inp.coordinator.note)
    _milestone(
        store,
        inp.instance_id,
        "coordinator_decided",
        now,
        detail=f"{decision}: {evaluation.outcome.value}",
    )
    return Rechecked(**evaluation.model_dump(), dependencies=tuple(rechecked))


@step()
def finalize_case(
    inp: Finalize, *, store: StateStore, publisher: EventPublisher, now: datetime
) -> Finalized:
    """Writes the outcome; opens follow-up work for a blocked case; returns the outcome event."""
    case = inp.case
    outcome = inp.evaluation.outcome
    reasons = inp.evaluation.reasons
    if inp.escalation_exhausted:
        outcome = Outcome.AT_RISK
        reasons = (*reasons, "no decision from the escalation chain before its last SLA")
    name = {
        Outcome.READY: "case_ready",
        Outcome.AT_RISK: "case_at_risk",
        Outcome.BLOCKED: "case_blocked",
    }[outcome]
    entries = (
        Milestone(
            instance_id=inp.instance_id,
            name=name,
            at=now,
            status="DONE" if outcome is Outcome.READY else "FAILED",
        ),
        AuditEntry(
            instance_id=inp.instance_id,
            at=now,
            actor="system:readiness",
            action="outcome",
            reason="; ".join(reasons),
            policy_version=inp.policy.policy_version,
            detail={"outcome": outcome.value},
        ),
    )
    instance = store.get_instance(inp.instance_id)
    if instance is None:
        store.record(*entries)
    else:
        store.update_instance(
            instance.model_copy(
                update={
                    "status": InstanceStatus(outcome.value),
                    "updated_at": now,
                    "outcome_reasons": reasons,
                }
            ),
            with_entries=entries,
        )
    if outcome is Outcome.BLOCKED:
        open_task(
            store,
            publisher,
            instance_id=inp.instance_id,
            workflow_id=WORKFLOW_ID,
            facility_id=case.facility_id,
            purpose="blocked-follow-up",
            title=f"Case {case.case_id} blocked: appeal, re-submit or reschedule",
            reasons=reasons,
            subject_ref=f"case/{case.case_id}",
            escalation_chain=("utilization_review_nurse", "scheduler", "department_director"),
            due_in_seconds=inp.policy.coordinator_task_s,
            token=None,
            allowed_decisions=(),
            now=now,
        )
    detail = envelope(
        event_id=f"{inp.instance_id}:{outcome.value}",
        idempotency_key=f"{inp.instance_id}:outcome",
        facility_id=case.facility_id,
        occurred_at=now,
        correlation_id=inp.correlation_id,
        data={
            "case_id": case.case_id,
            "instance_id": inp.instance_id,
            "outcome": outcome.value,
            "reasons": list(reasons),
            "scheduled_start": case.scheduled_start.isoformat(),
        },
    )
    return Finalized(
        outcome=outcome, reasons=reasons, detail_type=OUTCOME_EVENTS[outcome], detail=detail
    )
