"""Surgical case readiness, one registered step per state-machine task.

Each takes its input model (the small JSON object the ASL selects), the ports it needs
and ``now``, and returns its output model. The generic entry point (``lambdas/step.py``)
runs them on AWS and in the local cloud; unit tests call them with in-memory fakes.

What a step returns enters the execution's state and history: identifiers, codes,
statuses and the case's dates only. The case record (patient and coverage, surgeon,
room, supplies, trays) stays in the EHR, the system of record: a step that needs it reads
it there by the case id.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import model_validator

from careflow.canonical.cases import SurgicalCase
from careflow.canonical.dependencies import (
    OUTCOME_EVENTS,
    DependencyResult,
    DependencyStatus,
    Outcome,
)
from careflow.canonical.payer import (
    EligibilityRequest,
)
from careflow.canonical.supply import RequisitionRequest
from careflow.domain.records import AuditEntry, InstanceStatus, Milestone
from careflow.domain.tasks import open_task, task_id_for
from careflow.events.envelope import envelope
from careflow.kit.human_tasks import HumanTaskSpec
from careflow.kit.instances import child_milestones, finish_instance, start_instance
from careflow.kit.instances import milestone as _milestone
from careflow.kit.steps import StepInput, StepOutput, step
from careflow.ml.governance import PredictorPort, suggest
from careflow.ports import (
    ConnectorError,
    EhrPort,
    ErpPort,
    EventPublisher,
    PayerPort,
    StateStore,
    SterileProcessingPort,
)
from careflow.workflows.surgical_case_readiness import rules as r
from careflow.workflows.surgical_case_readiness import supply_disruption as sd

if TYPE_CHECKING:
    from careflow.policies import PolicyReader

WORKFLOW_ID = "surgical-case-readiness"


# -- inputs and outputs --------------------------------------------------------------------
class CaseStep(StepInput):
    """A step on the case, by id: the step reads the case from the EHR."""

    instance_id: str
    case_id: str

    @model_validator(mode="before")
    @classmethod
    def _ids_of_a_whole_case(cls, data: Any) -> Any:
        """An execution started before the state carried the case by id passes the whole
        case (its definition is the one it started with): its ids are taken from it."""
        if isinstance(data, dict) and isinstance(data.get("case"), dict):
            case = data["case"]
            ids = ("case_id", "facility_id", "scheduled_start")
            data = {**{k: case[k] for k in ids if k in case}, **data}
        return data


class PolicyCaseStep(CaseStep):
    policy: r.Policy


class RegisterCase(StepInput):
    workflow_id: str = WORKFLOW_ID
    instance_id: str
    case_id: str
    correlation_id: str


class Registered(StepOutput):
    """The execution's state from here on: the case by id, never its record."""

    workflow_id: str
    instance_id: str
    correlation_id: str
    case_id: str
    facility_id: str
    scheduled_start: datetime  # the case's date: its outcome event names it
    policy: r.Policy
    # How the authorization is obtained: CHILD (the prior authorization workflow, whose
    # execution is ``auth_instance_id``), NOT_REQUIRED, or NO_COVERAGE (nothing to ask).
    auth_route: str
    auth_instance_id: str
    auth_request: dict[str, Any] | None = None


class ChildOutcome(StepInput):
    """What the prior authorization workflow returns (its execution's output)."""

    outcome: str
    preauth_ref: str | None = None
    instance_id: str | None = None
    decision_clock_s: int | None = None


class RecordAuthorization(StepInput):
    instance_id: str
    auth: ChildOutcome


# The child's milestones, as the case's timeline names them.
CHILD_MILESTONES = {
    "submitted": "authorization_submitted",
    "documents_requested": "authorization_documents_requested",
    "resubmitted": "authorization_resubmitted",
    "pended": "authorization_pended",
    "inquired": "authorization_inquired",
    "pend_escalated": "authorization_escalated",
    "concluded_approved": "authorization_approved",
    "concluded_modified": "authorization_modified",
    "concluded_partial": "authorization_partial",
    "concluded_denied": "authorization_denied",
    "concluded_not_required": "authorization_not_required",
    "concluded_expired": "authorization_clock_expired",
    "concluded_no_documents": "authorization_documents_missing",
    "concluded_error": "authorization_check_failed",
}


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


class Evaluate(PolicyCaseStep):
    facility_id: str
    dependencies: tuple[DependencyResult, ...]


class Evaluated(StepOutput):
    outcome: Outcome
    reasons: tuple[str, ...]
    needs_coordinator: bool
    escalation_chain: tuple[str, ...] = ()
    threatened: tuple[str, ...] = ()
    task: HumanTaskSpec | None = None


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
    facility_id: str
    scheduled_start: datetime
    correlation_id: str
    evaluation: EvaluationSoFar
    escalation_exhausted: bool = False


class Finalized(StepOutput):
    outcome: Outcome
    reasons: tuple[str, ...]
    detail_type: str
    detail: dict[str, Any]


# -- helpers -------------------------------------------------------------------------------
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
def _auth_request(case: SurgicalCase) -> dict[str, Any]:
    """The prior authorization request for the case: ids, codes and the date. The child
    reads the patient and coverage from the EHR by the case's id."""
    return {
        "request_id": case.case_id,
        "case_id": case.case_id,
        "service_line": "surgery",
        "payer_id": case.payer_id,
        "procedure_codes": [
            {"system": c.system, "code": c.code, "display": c.display} for c in case.procedure_codes
        ],
        "service_date": case.scheduled_start.isoformat(),
        "priority": case.priority.value,
    }


@step()
def register_case(
    inp: RegisterCase, *, store: StateStore, ehr: EhrPort, policies: PolicyReader, now: datetime
) -> Registered:
    """Fetches the case from the EHR, records the instance, pins the policy in force for its
    facility (timers, queues, escalation chains) and decides how the authorization is had."""
    from careflow.policies import resolve

    case = ehr.get_surgical_case(inp.case_id)
    snapshot = resolve(r.POLICY, case.facility_id, at=now, store=policies)
    policy = r.case_policy(case, snapshot)
    if not case.auth_required:
        route = "NOT_REQUIRED"
    elif case.coverage_ref and case.payer_id:
        route = "CHILD"
    else:
        route = "NO_COVERAGE"
    start_instance(
        store,
        workflow_id=WORKFLOW_ID,
        instance_id=inp.instance_id,
        subject_type="case",
        subject_id=case.case_id,
        facility_id=case.facility_id,
        correlation_id=inp.correlation_id,
        policy=snapshot,
        started="readiness_started",
        detail=f"case {case.case_id} on {case.scheduled_start.isoformat()}",
        actor="system:readiness",
        now=now,
        scheduled_start=case.scheduled_start,
        service_line=case.service_line,
    )
    return Registered(
        workflow_id=inp.workflow_id,
        instance_id=inp.instance_id,
        correlation_id=inp.correlation_id,
        case_id=case.case_id,
        facility_id=case.facility_id,
        scheduled_start=case.scheduled_start,
        policy=policy,
        auth_route=route,
        auth_instance_id=f"{inp.instance_id}-auth",
        auth_request=_auth_request(case) if route == "CHILD" else None,
    )


@step()
def record_authorization(
    inp: RecordAuthorization, *, store: StateStore, now: datetime
) -> DependencyResult:
    """The authorization dependency from the prior authorization workflow's outcome (the
    child execution's output), with the child's milestones mirrored on the case's timeline."""
    auth = inp.auth
    hours = auth.decision_clock_s / 3600 if auth.decision_clock_s else None
    result = r.authorization_result(auth.outcome, auth.preauth_ref, decision_clock_hours=hours)
    mirrored: list[Milestone | AuditEntry] = [
        *child_milestones(store, auth.instance_id, inp.instance_id, CHILD_MILESTONES)
    ]
    if not auth.instance_id or auth.outcome == "NOT_REQUIRED":
        mirrored.append(
            Milestone(
                instance_id=inp.instance_id,
                name=f"authorization_{auth.outcome.lower()}",
                at=now,
                status="DONE" if result.status is DependencyStatus.OK else "FAILED",
            )
        )
    store.record(*mirrored)
    return result


@step()
def verify_benefits(
    inp: CaseStep, *, store: StateStore, ehr: EhrPort, payer: PayerPort, now: datetime
) -> DependencyResult:
    case = ehr.get_surgical_case(inp.case_id)
    response = payer.check_eligibility(_eligibility_request(case))
    result = r.benefits_result(response)
    return _checked(store, inp.instance_id, "benefits_verified", result, now, unless_ok="FAILED")


@step()
def check_clinician_and_room(
    inp: CaseStep, *, store: StateStore, ehr: EhrPort, now: datetime
) -> DependencyResult:
    case = ehr.get_surgical_case(inp.case_id)
    result = r.clinician_and_room_result(
        ehr.appointment_participants(case.appointment_id), case, now
    )
    return _checked(
        store, inp.instance_id, "clinician_and_room_checked", result, now, unless_ok="PENDING"
    )


@step()
def check_supplies(
    inp: PolicyCaseStep, *, store: StateStore, ehr: EhrPort, erp: ErpPort, now: datetime
) -> SuppliesChecked:
    case = ehr.get_surgical_case(inp.case_id)
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
    inp: PolicyCaseStep,
    *,
    store: StateStore,
    ehr: EhrPort,
    sterile: SterileProcessingPort,
    now: datetime,
) -> DependencyResult:
    case = ehr.get_surgical_case(inp.case_id)
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


def _threatening_shortage(dependencies: tuple[DependencyResult, ...]) -> r.Shortage | None:
    """The shortage the coordinator decides on: the largest of a threatened supplies check."""
    for dep in dependencies:
        if dep.dependency == r.SUPPLIES and dep.status is DependencyStatus.THREATENED:
            found = [r.Shortage.model_validate(s) for s in dep.details.get("shortages", ())]
            if found:
                return max(found, key=lambda s: (s.shortfall, s.item_id))
    return None


def shortage_features(
    case: SurgicalCase, shortage: r.Shortage, erp: ErpPort, now: datetime
) -> dict[str, Any]:
    """The supply_disruption model's input: the case's date, the shortfall, the other
    facilities' available stock and the card's substitutes (read from the ERP), the vendor."""
    from careflow.facilities import facilities

    need = next((n for n in case.supplies if n.item_id == shortage.item_id), None)
    substitutes = list(need.substitutes) if need else []
    own = erp.stock_positions(case.facility_id, substitutes) if substitutes else []
    others = [
        pos
        for fac in sorted(facilities())
        if fac != case.facility_id
        for pos in erp.stock_positions(fac, [shortage.item_id])
    ]
    return sd.features_of(
        days_to_case=(case.scheduled_start - now).total_seconds() / 86400,
        quantity_short=shortage.shortfall,
        other_available=[p.available for p in others],
        substitute_in_stock=any(p.available >= shortage.shortfall for p in own),
        vendor_lead_days=shortage.lead_time_days,
        vendor_consignment=any(p.consignment for p in others),
        implant=bool(need and need.implant),
        in_item_master=shortage.supplier_id != "unknown",
    )


def _shortage_advice(
    inp: Evaluate,
    shortage: r.Shortage,
    *,
    store: StateStore,
    ehr: EhrPort,
    erp: ErpPort,
    predictor: PredictorPort,
    policies: PolicyReader,
    decisions: tuple[str, ...],
    now: datetime,
) -> tuple[tuple[str, ...], dict[str, Any] | None]:
    """The ranked actions for the coordinator's task (reasons and its suggestion), when
    the ai-models policy has the supply_disruption model on; nothing otherwise (in shadow
    the prediction is audited only). An ERP or EHR that cannot answer leaves the task as
    the rules open it: the readiness outcome never waits on the model."""
    try:
        features = shortage_features(ehr.get_surgical_case(inp.case_id), shortage, erp, now)
    except ConnectorError:
        return (), None
    found = suggest(
        sd.MODEL.id,
        features,
        instance_id=inp.instance_id,
        facility_id=inp.facility_id,
        predictor=predictor,
        store=store,
        now=now,
        policies=policies,
        about=task_id_for(inp.instance_id, "coordinator"),
    )
    if found is None or found.setting.mode != "on":
        return (), None
    ranked = ", ".join(f"{a} {p:.0%}" for a, p in found.prediction.ranked())
    why = "; ".join(found.prediction.reasons) or "no single feature stands out"
    reasons = (
        f"shortage of {shortage.item_id} ({shortage.shortfall} short): suggested actions "
        f"{ranked} (supply_disruption {found.prediction.version})",
        f"why {found.label}: {why}",
    )
    suggestion = {**found.ref(), "decision": found.label if found.label in decisions else None}
    return reasons, suggestion


@step()
def evaluate_readiness(
    inp: Evaluate,
    *,
    store: StateStore,
    ehr: EhrPort,
    erp: ErpPort,
    predictor: PredictorPort,
    policies: PolicyReader,
    now: datetime,
) -> Evaluated:
    """The case's outcome; a threatened case opens the coordinator's task. When a shortage
    threatens it, the task offers the shortage actions too (the policy's
    ``shortage_decisions``) ranked by the supply_disruption model (the ai-models policy is
    read through ``policies``): the coordinator's choice is what the workflow does, and
    the kit audits it against the suggestion."""
    evaluation = r.evaluate(inp.dependencies, inp.policy)
    _milestone(store, inp.instance_id, "readiness_evaluated", now, detail=evaluation.outcome.value)
    task = None
    if evaluation.needs_coordinator:
        decisions = inp.policy.coordinator_decisions
        reasons: tuple[str, ...] = ()
        suggestion = None
        shortage = _threatening_shortage(inp.dependencies)
        if shortage is not None and inp.policy.shortage_decisions:
            extra = [d for d in inp.policy.shortage_decisions if d not in decisions]
            decisions = (*decisions[:1], *extra, *decisions[1:])
            reasons, suggestion = _shortage_advice(
                inp,
                shortage,
                store=store,
                ehr=ehr,
                erp=erp,
                predictor=predictor,
                policies=policies,
                decisions=decisions,
                now=now,
            )
        task = HumanTaskSpec(
            purpose="coordinator",
            title=f"Case {inp.case_id} at risk: decide before the hard stop",
            reasons=(*evaluation.reasons, *reasons),
            escalation_chain=(inp.policy.coordinator_queue, *evaluation.escalation_chain),
            allowed_decisions=decisions,
            subject_ref=f"case/{inp.case_id}",
            facility_id=inp.facility_id,
            policy_version=inp.policy.policy_version,
            suggestion=suggestion,
            deadline_at=inp.policy.hard_stop_at,  # the task priority model's deadline
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
    policy = inp.policy
    decision = inp.coordinator.decision
    rechecked: list[DependencyResult] = []
    recheck = decision != "CANCEL" and any(
        d.status not in (DependencyStatus.OK, DependencyStatus.BLOCKED) for d in inp.dependencies
    )
    case = ehr.get_surgical_case(inp.case_id) if recheck else None
    for dep in inp.dependencies:
        if case is None or dep.status in (DependencyStatus.OK, DependencyStatus.BLOCKED):
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
    evaluation = r.after_coordinator(decision, rechecked, inp.coordinator.note, inp.policy)
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
    finish_instance(
        store,
        inp.instance_id,
        status=InstanceStatus(outcome.value),
        reasons=reasons,
        entries=entries,
        now=now,
    )
    if outcome is Outcome.BLOCKED:
        open_task(
            store,
            publisher,
            instance_id=inp.instance_id,
            workflow_id=WORKFLOW_ID,
            facility_id=inp.facility_id,
            purpose="blocked-follow-up",
            title=f"Case {inp.case_id} blocked: appeal, re-submit or reschedule",
            reasons=reasons,
            subject_ref=f"case/{inp.case_id}",
            escalation_chain=("utilization_review_nurse", "scheduler", "department_director"),
            due_in_seconds=inp.policy.coordinator_task_s,
            token=None,
            allowed_decisions=(),
            now=now,
            policy_version=inp.policy.policy_version,
        )
    detail = envelope(
        event_id=f"{inp.instance_id}:{outcome.value}",
        idempotency_key=f"{inp.instance_id}:outcome",
        facility_id=inp.facility_id,
        occurred_at=now,
        correlation_id=inp.correlation_id,
        data={
            "case_id": inp.case_id,
            "instance_id": inp.instance_id,
            "outcome": outcome.value,
            "reasons": list(reasons),
            "scheduled_start": inp.scheduled_start.isoformat(),
        },
    )
    return Finalized(
        outcome=outcome, reasons=reasons, detail_type=OUTCOME_EVENTS[outcome], detail=detail
    )
