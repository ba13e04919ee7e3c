"""Discharge coordination, one registered step per state-machine task.

What a step returns enters the execution's state and history: the encounter's id, codes,
statuses, bookings' references and times. The patient's identifier stays on the instance
record (``subject_refs``), in the encrypted table.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from careflow import facilities
from careflow.canonical.payer import EligibilityRequest
from careflow.canonical.services import ServiceRequest
from careflow.canonical.supply import RequisitionLine, RequisitionRequest
from careflow.domain.records import AuditEntry, Milestone
from careflow.kit.human_tasks import HumanTaskSpec, TaskSpec, open_scored_task
from careflow.kit.instances import Concluded, child_milestones, conclude, start_instance
from careflow.kit.instances import milestone as _milestone
from careflow.kit.steps import StepInput, StepOutput, step
from careflow.ml.governance import PredictorPort
from careflow.ports import (
    EhrPort,
    ErpPort,
    EventPublisher,
    PayerPort,
    PharmacyPort,
    StateStore,
    TransportPort,
)
from careflow.workflows.discharge_coordination import rules as r

if TYPE_CHECKING:
    from careflow.policies import PolicyReader

WORKFLOW_ID = "discharge-coordination"
ACTOR = "system:discharge"
# The milestone intake records for an ``Encounter.Discharged`` (A03) on the instance.
DEPARTED = "discharged"


# -- inputs and outputs --------------------------------------------------------------------
class RegisterDischarge(StepInput):
    workflow_id: str = WORKFLOW_ID
    instance_id: str
    correlation_id: str
    facility_id: str
    occurred_at: datetime
    encounter_id: str
    disposition: str | None = None
    expected_discharge_at: datetime | None = None
    patient_id: str
    patient_id_authority: str


class Needs(StepOutput):
    transport: bool
    pharmacy: bool
    dme: bool
    post_acute_authorization: bool
    billing: bool


class Early(StepOutput):
    """The discharge delay model's answer at the A16: ``escalate`` when its suggestion acted
    (ai-models on, confident) and foresaw a delay; ``task_id`` is the case manager's task,
    opened at once as an informational task (nothing waits on it: the arrangements and the
    threat line go on as the rules have them)."""

    escalate: bool = False
    cause: str | None = None
    task_id: str | None = None


class Registered(StepOutput):
    """The execution's state from here on: ids, codes and times."""

    workflow_id: str
    instance_id: str
    correlation_id: str
    facility_id: str
    encounter_id: str
    ordered_at: datetime
    policy: r.Policy
    needs: Needs
    early: Early = Early()


class Arrange(StepInput):
    instance_id: str
    facility_id: str
    encounter_id: str
    policy: r.Policy


class PostAcuteRoute(StepOutput):
    """How the post-acute authorization is had: CHILD (the prior authorization workflow,
    whose execution is ``auth_instance_id``; it reads the patient and coverage from the
    EHR by the encounter), or PERSON (``dependency`` says why)."""

    route: Literal["CHILD", "PERSON"]
    auth_instance_id: str | None = None
    auth_request: dict[str, Any] | None = None
    dependency: r.Dependency | None = None


class ChildOutcome(StepInput):
    """What the prior authorization workflow returns (its execution's output)."""

    outcome: str
    preauth_ref: str | None = None
    instance_id: str | None = None


class RecordPostAcute(StepInput):
    instance_id: str
    policy: r.Policy
    auth: ChildOutcome


class DependencyFailed(StepInput):
    instance_id: str
    dependency: str
    error: dict[str, Any] = {}


class Evaluate(StepInput):
    instance_id: str
    facility_id: str
    encounter_id: str
    policy: r.Policy
    dependencies: tuple[r.Dependency, ...]


class Evaluated(StepOutput):
    threatened: bool
    reasons: tuple[str, ...]
    task: HumanTaskSpec | None = None


class CaseManagerAnswer(StepInput):
    decision: str
    note: str = ""


class ApplyDecision(StepInput):
    instance_id: str
    policy: r.Policy
    case_manager: CaseManagerAnswer


class Decided(StepOutput):
    decision: str


class CheckDeparture(StepInput):
    instance_id: str
    policy: r.Policy


class Departure(StepOutput):
    departed: bool
    departed_at: datetime | None = None
    gave_up: bool = False


class Finalize(StepInput):
    instance_id: str
    correlation_id: str
    facility_id: str
    encounter_id: str
    ordered_at: datetime
    policy: r.Policy
    dependencies: tuple[r.Dependency, ...]
    departure: Departure
    escalation_exhausted: bool = False


class Finalized(Concluded):
    delays: tuple[r.Delay, ...]


# The early escalation's task: informational, beside the workflow (never holds the departure).
EARLY_PURPOSE = "discharge-at-risk"


# -- helpers -------------------------------------------------------------------------------
def _arranged(store: StateStore, inp: Arrange, dep: r.Dependency, now: datetime) -> r.Dependency:
    ready = dep.ready_at.isoformat() if dep.ready_at else "not yet"
    _milestone(
        store,
        inp.instance_id,
        f"{dep.dependency}_arranged",
        now,
        status="DONE" if dep.status == r.MET else "PENDING",
        detail=f"{dep.reference or '-'} ready {ready}",
    )
    return dep


# -- steps ---------------------------------------------------------------------------------
def early_escalation(
    inp: RegisterDischarge,
    policy: r.Policy,
    *,
    store: StateStore,
    publisher: EventPublisher,
    predictor: PredictorPort | None,
    policies: Any,
    now: datetime,
) -> Early:
    """The discharge delay model at the A16 (audited by ``suggest``). Its suggestion acts
    (on, at or above the policy's threshold) and foresees a delay: the case manager's task
    opens now, with the likely cause in its reasons and EXPEDITE suggested, as an
    informational task (no task token): the execution never waits on it, so the
    arrangements, the threat-line evaluation and the departure go on exactly as the rules
    have them. The person's decision is recorded when they complete it (``task_completed``
    and ``model.accepted``/``model.overridden``, domain/tasks.complete_task). Otherwise
    (off, shadow, below the threshold, on time): nothing changes, the threat line decides."""
    from careflow.ml.governance import suggest
    from careflow.workflows.discharge_coordination import model

    if predictor is None:
        return Early()
    found = suggest(
        model.MODEL.id,
        model.features_of(
            disposition=inp.disposition,
            needs=policy.needs,
            ordered_at=inp.occurred_at,
            expected_at=policy.expected_discharge_at,
            time_zone=policy.time_zone,
        ),
        instance_id=inp.instance_id,
        facility_id=inp.facility_id,
        predictor=predictor,
        store=store,
        now=now,
        policies=policies,
        about=f"encounter/{inp.encounter_id}",
    )
    if found is None or not found.acts or found.label == model.ON_TIME:
        return Early()
    cause = found.label
    owner = policy.owners.get(cause)
    risk = model.MODEL.risk(found.prediction.scores)
    why = f"likely delay: {cause}" + (f" ({owner.cause}, {owner.owner})" if owner else "")
    reasons = (
        f"{why}, {risk:.0%} risk of missing {policy.expected_discharge_at.isoformat()}",
        *found.prediction.reasons,
    )
    decision = "EXPEDITE" if "EXPEDITE" in policy.case_manager_decisions else None
    _milestone(
        store,
        inp.instance_id,
        "discharge_at_risk",
        now,
        status="PENDING",
        detail=f"{cause} at {found.prediction.confidence:.2f} ({found.prediction.version})",
    )
    task = open_scored_task(
        store,
        publisher,
        predictor=predictor,
        policies=policies,
        instance_id=inp.instance_id,
        workflow_id=WORKFLOW_ID,
        spec=TaskSpec(
            facility_id=inp.facility_id,
            purpose=EARLY_PURPOSE,
            title=(
                f"Discharge of encounter {inp.encounter_id} at risk for "
                f"{policy.expected_discharge_at.isoformat()}: {cause}"
            ),
            reasons=reasons,
            subject_ref=f"encounter/{inp.encounter_id}",
            escalation_chain=policy.escalation_chain,
            allowed_decisions=policy.case_manager_decisions,
            policy_version=policy.policy_version,
            deadline_at=policy.expected_discharge_at,
            suggestion={**found.ref(), "decision": decision} if decision else found.ref(),
        ),
        due_in_seconds=policy.case_manager_task_s,
        token=None,  # informational: nothing waits on it
        now=now,
    )
    task_id = task.task_id
    return Early(escalate=True, cause=cause, task_id=task_id)


@step()
def register_discharge(
    inp: RegisterDischarge,
    *,
    store: StateStore,
    publisher: EventPublisher,
    policies: PolicyReader,
    predictor: PredictorPort,
    now: datetime,
) -> Registered:
    """Records the instance, pins the discharge policy in force for the facility and decides
    the expected discharge time and the dependencies the disposition needs; the discharge
    delay model may open the case manager's task at once (:func:`early_escalation`)."""
    from careflow.policies import resolve

    facility = facilities.facility(inp.facility_id)
    if facility is None:  # intake takes only known facilities; a replay may not
        raise ValueError(f"facility {inp.facility_id} is not served")
    snapshot = resolve(r.POLICY, inp.facility_id, at=now, store=policies)
    policy = r.discharge_policy(
        snapshot,
        disposition=inp.disposition,
        expected_discharge_at=inp.expected_discharge_at,
        received_at=inp.occurred_at,
        zone=facility.zone,
    )
    start_instance(
        store,
        workflow_id=WORKFLOW_ID,
        instance_id=inp.instance_id,
        subject_type="encounter",
        subject_id=inp.encounter_id,
        facility_id=inp.facility_id,
        correlation_id=inp.correlation_id,
        policy=snapshot,
        started="discharge_pending",
        detail=(
            f"encounter {inp.encounter_id} disposition {inp.disposition or '-'} expected "
            f"{policy.expected_discharge_at.isoformat()}"
            + ("" if inp.expected_discharge_at else " (policy default)")
        ),
        actor=ACTOR,
        now=now,
        subject_refs={"patient": f"{inp.patient_id_authority}|{inp.patient_id}"},
    )
    needs = Needs(**{dep: dep in policy.needs for dep in r.DEPENDENCIES})
    return Registered(
        workflow_id=inp.workflow_id,
        instance_id=inp.instance_id,
        correlation_id=inp.correlation_id,
        facility_id=inp.facility_id,
        encounter_id=inp.encounter_id,
        ordered_at=inp.occurred_at,
        policy=policy,
        needs=needs,
        early=early_escalation(
            inp,
            policy,
            store=store,
            publisher=publisher,
            predictor=predictor,
            policies=policies,
            now=now,
        ),
    )


@step()
def book_transport(
    inp: Arrange, *, store: StateStore, transport: TransportPort, now: datetime
) -> r.Dependency:
    """The ride home or to the receiving facility, for the expected discharge time."""
    booking = transport.book_transport(
        ServiceRequest(
            facility_id=inp.facility_id,
            reference=inp.encounter_id,
            needed_by=inp.policy.expected_discharge_at,
        )
    )
    dep = r.arranged(r.TRANSPORT, booking.booking_id, booking.ready_at, inp.policy)
    return _arranged(store, inp, dep, now)


@step()
def order_meds_to_beds(
    inp: Arrange, *, store: StateStore, pharmacy: PharmacyPort, now: datetime
) -> r.Dependency:
    """The discharge medications, filled and brought to the bedside before the patient leaves."""
    booking = pharmacy.meds_to_beds(
        ServiceRequest(
            facility_id=inp.facility_id,
            reference=inp.encounter_id,
            needed_by=inp.policy.threat_at,
        )
    )
    dep = r.arranged(r.PHARMACY, booking.booking_id, booking.ready_at, inp.policy)
    return _arranged(store, inp, dep, now)


@step()
def order_dme(inp: Arrange, *, store: StateStore, erp: ErpPort, now: datetime) -> r.Dependency:
    """Durable medical equipment: a requisition in the ERP (idempotent on the encounter)."""
    req = erp.create_requisition(
        RequisitionRequest(
            facility_id=inp.facility_id,
            supplier_id=inp.policy.dme_supplier,
            lines=tuple(RequisitionLine(item_id=i, quantity=1) for i in inp.policy.dme_items),
            needed_by=inp.policy.threat_at,
            reason="durable medical equipment for a discharge",
            reference=f"discharge:{inp.encounter_id}",
        )
    )
    dep = r.arranged(r.DME, req.requisition_id, req.expected_delivery, inp.policy)
    return _arranged(store, inp, dep, now)


@step()
def request_post_acute_authorization(
    inp: Arrange, *, store: StateStore, ehr: EhrPort, now: datetime
) -> PostAcuteRoute:
    """Home-health, SNF or rehab authorization, through the prior authorization workflow
    (a child execution) when the EHR holds the encounter's coverage and the policy a
    service code for the disposition; otherwise PENDING on the utilization review nurse."""
    service = inp.policy.post_acute_service
    coverage = ehr.encounter_coverage(inp.encounter_id)
    if coverage is None:
        why = "the EHR does not know the encounter: a person requests the authorization"
    elif coverage.coverage_ref is None or coverage.payer_id is None:
        why = "no active coverage with a payer on the encounter: a person arranges it"
    elif service is None:
        why = "the policy has no service code for the disposition: a person requests it"
    else:
        auth_instance_id = f"{inp.instance_id}-auth"
        _milestone(
            store,
            inp.instance_id,
            "post_acute_authorization_requested",
            now,
            status="PENDING",
            detail=f"{service.code} with {coverage.payer_id}: {auth_instance_id}",
        )
        return PostAcuteRoute(
            route="CHILD",
            auth_instance_id=auth_instance_id,
            auth_request={
                "request_id": auth_instance_id,
                "encounter_id": inp.encounter_id,
                "service_line": "post-acute",
                "payer_id": coverage.payer_id,
                "procedure_codes": [service.model_dump(exclude_none=True)],
                "service_date": inp.policy.expected_discharge_at.isoformat(),
                "priority": inp.policy.post_acute_priority,
            },
        )
    dep = r.Dependency(dependency=r.POST_ACUTE_AUTHORIZATION, status=r.PENDING, reason=why)
    return PostAcuteRoute(route="PERSON", dependency=_arranged(store, inp, dep, now))


# The child's milestones, as the discharge's timeline names them.
CHILD_MILESTONES = {
    "submitted": "post_acute_authorization_submitted",
    "documents_requested": "post_acute_authorization_documents_requested",
    "resubmitted": "post_acute_authorization_resubmitted",
    "pended": "post_acute_authorization_pended",
    "pend_escalated": "post_acute_authorization_escalated",
}


@step()
def record_post_acute_authorization(
    inp: RecordPostAcute, *, store: StateStore, now: datetime
) -> r.Dependency:
    """The dependency from the prior authorization workflow's outcome, with the child's
    milestones mirrored on the discharge's timeline."""
    auth = inp.auth
    dep = r.post_acute_authorization(auth.outcome, auth.preauth_ref, inp.policy, now)
    store.record(*child_milestones(store, auth.instance_id, inp.instance_id, CHILD_MILESTONES))
    status = "DONE" if dep.status == r.MET else "PENDING" if dep.status != r.DENIED else "FAILED"
    _milestone(
        store,
        inp.instance_id,
        "post_acute_authorization_arranged",
        now,
        status=status,
        detail=f"{auth.outcome} {dep.reference or '-'}",
    )
    return dep


@step()
def check_billing_readiness(
    inp: Arrange, *, store: StateStore, ehr: EhrPort, payer: PayerPort, now: datetime
) -> r.Dependency:
    """Billing readiness: the encounter's coverage, active with its payer (eligibility).
    Tracked and owned by patient financial services; it never holds the patient."""
    coverage = ehr.encounter_coverage(inp.encounter_id)
    active = None
    if coverage is not None and coverage.coverage_ref is not None:
        answer = payer.check_eligibility(
            EligibilityRequest(
                case_id=inp.encounter_id,
                patient_ref=coverage.patient_ref,
                coverage_ref=coverage.coverage_ref,
                payer_id=coverage.payer_id,
                service_date=inp.policy.expected_discharge_at,
                procedure_codes=(),
            )
        )
        active = answer.active
    dep = r.billing_readiness(
        known=coverage is not None,
        coverage_ref=coverage.coverage_ref if coverage is not None else None,
        active=active,
    )
    _milestone(
        store,
        inp.instance_id,
        "billing_ready" if dep.status == r.MET else "billing_not_ready",
        now,
        status="DONE" if dep.status == r.MET else "PENDING",
        detail=dep.reason,
    )
    return dep


@step()
def record_dependency_error(
    inp: DependencyFailed, *, store: StateStore, now: datetime
) -> r.Dependency:
    """An arrangement's Catch: the dependency is ERROR (a person arranges it by hand); a
    post-acute authorization still with the payer at the threat line (``States.Timeout``
    of the child's wait) is PENDING: the prior authorization goes on by itself."""
    name = str(inp.error.get("Error", "Error"))
    if name == "States.Timeout":
        reason = "no decision by the threat line: the prior authorization goes on"
        _milestone(store, inp.instance_id, f"{inp.dependency}_waiting", now, "PENDING")
        return r.Dependency(dependency=inp.dependency, status=r.PENDING, reason=reason)
    _milestone(store, inp.instance_id, f"{inp.dependency}_failed", now, "FAILED", detail=name)
    store.record_audit(
        AuditEntry(
            instance_id=inp.instance_id,
            at=now,
            actor=ACTOR,
            action="dependency_failed",
            reason=name,
            detail={"dependency": inp.dependency},
        )
    )
    return r.Dependency(dependency=inp.dependency, status=r.ERROR, reason=name)


@step()
def evaluate_discharge(inp: Evaluate, *, store: StateStore, now: datetime) -> Evaluated:
    """Which dependencies threaten the expected discharge time: any, and a case manager
    decides (escalating along the policy's chain)."""
    from careflow.observability import metrics

    evaluation = r.evaluate(inp.dependencies, inp.policy)
    threatened = bool(evaluation.threatened)
    _milestone(
        store,
        inp.instance_id,
        "discharge_threatened" if threatened else "dependencies_arranged",
        now,
        status="PENDING" if threatened else "DONE",
        detail=", ".join(evaluation.threatened),
    )
    if not threatened:
        return Evaluated(threatened=False, reasons=())
    metrics.add_metric(name="DischargesThreatened", unit="Count", value=1)
    store.record_audit(
        AuditEntry(
            instance_id=inp.instance_id,
            at=now,
            actor=ACTOR,
            action="discharge_threatened",
            reason="; ".join(evaluation.reasons),
            policy_version=inp.policy.policy_version,
            detail={"predicted": [d.model_dump() for d in evaluation.predicted]},
        )
    )
    task = HumanTaskSpec(
        purpose="discharge-threatened",
        title=(
            f"Discharge of encounter {inp.encounter_id} threatened for "
            f"{inp.policy.expected_discharge_at.isoformat()}"
        ),
        reasons=evaluation.reasons,
        escalation_chain=inp.policy.escalation_chain,
        allowed_decisions=inp.policy.case_manager_decisions,
        subject_ref=f"encounter/{inp.encounter_id}",
        facility_id=inp.facility_id,
        policy_version=inp.policy.policy_version,
        deadline_at=inp.policy.expected_discharge_at,  # the task priority model's deadline
    )
    return Evaluated(threatened=True, reasons=evaluation.reasons, task=task)


@step()
def apply_case_manager_decision(inp: ApplyDecision, *, store: StateStore, now: datetime) -> Decided:
    decision = inp.case_manager.decision
    _milestone(store, inp.instance_id, "case_manager_decided", now, detail=decision)
    return Decided(decision=decision)


@step()
def check_departure(inp: CheckDeparture, *, store: StateStore, now: datetime) -> Departure:
    """The departure is the A03 that intake recorded on the instance (its milestone)."""
    for m in store.milestones(inp.instance_id):
        if m.name == DEPARTED:
            return Departure(departed=True, departed_at=m.at)
    return Departure(departed=False, gave_up=now >= inp.policy.give_up_at)


# The audit entry finalize writes for a departure: its times, in numbers (GET /v1/kpis).
MEASURED = "discharge_measured"


@step()
def finalize_discharge(inp: Finalize, *, store: StateStore, now: datetime) -> Finalized:
    """DISCHARGED with its order-to-departure time and its delays by cause, or
    NOT_DISCHARGED when no departure came before the policy gave up."""
    from careflow.observability import kpi_metric, metrics

    policy, departure = inp.policy, inp.departure
    entries: list[Milestone | AuditEntry] = []
    delays: tuple[r.Delay, ...] = ()
    seconds = noon = None
    reasons: tuple[str, ...]
    if departure.departed and departure.departed_at is not None:
        outcome = "DISCHARGED"
        departed_at = departure.departed_at
        delays = r.delays(inp.dependencies, policy, departed_at)
        seconds = r.order_to_departure_s(inp.ordered_at, departed_at)
        noon = r.before_noon(departed_at, policy)
        late = max(0, int((departed_at - policy.expected_discharge_at).total_seconds() // 60))
        reasons = (f"departed {late} min after the expected discharge" if late else "on time",)
        metrics.add_metric(name="Discharged", unit="Count", value=1)
        metrics.add_metric(name="OrderToDepartureSeconds", unit="Seconds", value=seconds)
        if noon:
            metrics.add_metric(name="DischargedBeforeNoon", unit="Count", value=1)
    else:
        outcome = "NOT_DISCHARGED"
        reasons = ("no departure (A03) before the policy stopped waiting",)
    if inp.escalation_exhausted:
        reasons = (*reasons, "no decision from the escalation chain before its last SLA")
    billing = next((d for d in inp.dependencies if d.dependency == r.BILLING), None)
    if billing is not None and billing.status not in (r.MET, r.NOT_NEEDED):
        reasons = (*reasons, f"billing not ready: {billing.reason or billing.status}")
    for delay in delays:  # by cause: the delay_recorded audit entries and the event
        metrics.add_metric(name="DischargeDelayMinutes", unit="Count", value=delay.minutes)
        kpi_metric(  # the enterprise discharge_delay_causes: minutes by cause and facility
            "DischargeDelayCauseMinutes",
            "Count",
            delay.minutes,
            workflow_id=WORKFLOW_ID,
            facility_id=inp.facility_id,
            cause=delay.cause,
        )
        entries.append(
            AuditEntry(
                instance_id=inp.instance_id,
                at=now,
                actor=ACTOR,
                action="delay_recorded",
                reason=delay.cause,
                policy_version=policy.policy_version,
                detail=delay.model_dump(),
            )
        )
    measured = None
    if seconds is not None and departure.departed_at is not None:  # what /v1/kpis reads
        measured = (
            MEASURED,
            {
                "ordered_at": inp.ordered_at.isoformat(),
                "departed_at": departure.departed_at.isoformat(),
                "order_to_departure_seconds": seconds,
                "before_noon": noon,
                "noon_hour": policy.noon_hour,
            },
        )
    return conclude(
        store,
        instance_id=inp.instance_id,
        facility_id=inp.facility_id,
        correlation_id=inp.correlation_id,
        now=now,
        outcome=outcome,
        reasons=reasons,
        milestone_name="discharge_concluded",
        succeeded=outcome == "DISCHARGED",
        detail_type="Discharge.Concluded",
        actor=ACTOR,
        policy_version=policy.policy_version,
        measured=measured,
        entries=entries,
        output=Finalized,
        delays=delays,
        data={
            "encounter_id": inp.encounter_id,
            "instance_id": inp.instance_id,
            "outcome": outcome,
            "expected_discharge_at": policy.expected_discharge_at.isoformat(),
            "departed_at": departure.departed_at.isoformat() if departure.departed_at else None,
            "order_to_departure_seconds": seconds,
            "before_noon": noon,
            "delays": [d.model_dump() for d in delays],
            "billing_readiness": (
                billing.status if billing is not None and billing.status != r.NOT_NEEDED else None
            ),
        },
    )
