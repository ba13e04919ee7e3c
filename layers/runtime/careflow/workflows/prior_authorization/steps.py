"""Prior authorization's steps, one per state-machine task (see docs/adding-a-workflow.md).

The execution's state carries the request by its ids, codes and dates. Its patient and
coverage references are read once, at registration (from the request, or from the EHR by
the surgical case's id), and kept on the instance in the state table, where the submission
reads them: they never travel in the state or the history after the start.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import AwareDatetime, Field

from careflow.canonical.cases import Priority
from careflow.canonical.datatypes import Coding
from careflow.canonical.payer import AuthDecision, PriorAuthRequest, PriorAuthResponse
from careflow.domain.records import AuditEntry, Instance, InstanceStatus, Milestone
from careflow.domain.tasks import open_task
from careflow.events.envelope import envelope
from careflow.kit.human_tasks import HumanTaskSpec
from careflow.kit.instances import finish_instance, start_instance
from careflow.kit.instances import milestone as _milestone
from careflow.kit.steps import StepInput, StepOutput, step
from careflow.ports import EhrPort, EventPublisher, PayerPort, StateStore, WorkflowEngine
from careflow.workflows.prior_authorization import rules as r
from careflow.workflows.prior_authorization.events import PriorAuthRequested, ProcedureCode

if TYPE_CHECKING:
    from careflow.ml.governance import PredictorPort
    from careflow.policies import PolicyReader

WORKFLOW_ID = "prior-authorization"
ACTOR = "system:prior-authorization"
# What the person who reads an answer careflow cannot act on may record (the ASL's Choice).
REVIEW_DECISIONS = ("APPROVED", "DENIED", "REQUEST_AGAIN")


_ID = r"^[A-Za-z0-9\-.]+$"


# -- inputs and outputs --------------------------------------------------------------------
class Request(StepInput):
    """The request as the state carries it: ids, codes and the service date, no patient
    or coverage (they are on the instance, in the state table)."""

    request_id: str = Field(min_length=1, max_length=64, pattern=_ID)
    service_line: Literal["imaging", "infusion", "surgery", "post-acute", "other"]
    payer_id: str = Field(min_length=1, max_length=64, pattern=_ID)
    procedure_codes: tuple[ProcedureCode, ...] = Field(min_length=1, max_length=25)
    service_date: AwareDatetime
    priority: Literal["routine", "expedited"] = "routine"
    # A surgical case's request (a parent's child execution): its patient and coverage
    # are read from the EHR by the case's id.
    case_id: str | None = Field(default=None, max_length=64, pattern=_ID)
    # A discharge's post-acute request (a parent's child execution): its patient and
    # coverage are read from the EHR by the encounter's visit number.
    encounter_id: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")


class IncomingRequest(Request):
    """What starts the workflow: ``PriorAuth.Requested``'s data (with the patient and
    coverage references it carries), or a parent's request by case id."""

    patient_ref: str | None = None
    coverage_ref: str | None = None


class Register(StepInput):
    workflow_id: str = WORKFLOW_ID
    instance_id: str
    correlation_id: str
    facility_id: str
    request: IncomingRequest


class Registered(StepOutput):
    workflow_id: str
    instance_id: str
    correlation_id: str
    facility_id: str
    request: Request
    policy: r.Clocks
    attachments: tuple[str, ...] = ()
    document_refs: tuple[str, ...] = ()


class Submit(StepInput):
    instance_id: str
    facility_id: str
    # IncomingRequest: an execution started before the references moved to the table
    # still carries them in its state (see _payer_request)
    request: IncomingRequest
    policy: r.Clocks
    attachments: tuple[str, ...] = ()
    # The documents the nurse attached (``DocumentReference/<id>``, ids only): the proposed
    # ones she confirmed, or her own choice; empty: the requested types, as before.
    document_refs: tuple[str, ...] = ()


class Submitted(StepOutput):
    """Where the request stands (the state's ``$.decision``): after a submission, then
    after each inquiry, so the payer's clock travels with it."""

    decision: AuthDecision
    preauth_ref: str | None
    reason: str | None = None
    documents_requested: tuple[str, ...] = ()
    needs_documents: bool = False
    submitted_at: str
    stage: r.Stage = r.Stage.DECIDED
    document_task: HumanTaskSpec | None = None
    wait_s: int = 0  # a pend: how long to wait for the payer's notification
    escalated: bool = False
    conformance: tuple[str, ...] = ()
    review_task: HumanTaskSpec | None = None  # stage REVIEW: a person reads the payer's answer


class Await(StepInput):
    token: str
    instance_id: str
    preauth_ref: str


class Waiting(StepOutput):
    resumed: bool = False
    waiting: bool = False


class Inquiry(StepOutput):
    decision: AuthDecision
    preauth_ref: str
    reason: str | None = None
    stage: r.Stage
    wait_s: int
    escalated: bool
    submitted_at: str
    conformance: tuple[str, ...] = ()
    review_task: HumanTaskSpec | None = None


class Inquire(StepInput):
    instance_id: str
    facility_id: str
    request: Request
    preauth_ref: str
    submitted_at: datetime
    policy: r.Clocks
    escalated: bool = False


class PayerAnswer(StepInput):
    """What ``PayerDecision`` resumed the wait with: the payer's answer to its ``$inquire``."""

    verified: bool
    decision: AuthDecision
    preauth_ref: str
    reason: str | None = None
    conformance: tuple[str, ...] = ()
    claimed: str | None = None


class ClockSoFar(StepInput):
    """Of the state's ``$.decision`` (after a submission, an inquiry or an escalation):
    where the payer's clock stands."""

    submitted_at: str
    escalated: bool = False


class Accept(StepInput):
    instance_id: str
    facility_id: str
    request: Request
    policy: r.Clocks
    clock: ClockSoFar
    answer: PayerAnswer


class Escalate(StepInput):
    instance_id: str
    facility_id: str
    request: Request
    policy: r.Clocks
    clock: Inquiry


class DecisionSoFar(StepInput):
    decision: str
    preauth_ref: str | None = None
    reason: str | None = None
    stage: str = r.Stage.DECIDED


class Conclude(StepInput):
    instance_id: str
    correlation_id: str
    facility_id: str
    request: Request
    policy: r.Clocks
    decision: DecisionSoFar


class AuthOutcome(StepOutput):
    """The execution's output: what a parent workflow reads."""

    request_id: str
    instance_id: str
    outcome: r.Outcome
    decision: str
    preauth_ref: str | None
    reasons: tuple[str, ...]
    turnaround_seconds: int
    first_pass: bool
    policy_version: str
    decision_clock_s: int


class Concluded(StepOutput):
    result: AuthOutcome
    detail_type: str
    detail: dict[str, object]


# -- helpers -------------------------------------------------------------------------------
def _subject_refs(request: IncomingRequest, ehr: EhrPort) -> dict[str, str]:
    """The request's patient and coverage: as the event gave them, or from the EHR."""
    if request.patient_ref and request.coverage_ref:
        # the event's own contract checks them (PriorAuthRequested)
        PriorAuthRequested.model_validate(
            request.model_dump(mode="json", exclude={"case_id", "encounter_id"})
        )
        return {"patient": request.patient_ref, "coverage": request.coverage_ref}
    if request.case_id:
        case = ehr.get_surgical_case(request.case_id)
        refs = {"patient": case.patient_ref}
        if case.coverage_ref:
            refs["coverage"] = case.coverage_ref
        return refs
    if request.encounter_id:
        coverage = ehr.encounter_coverage(request.encounter_id)
        if coverage is None:
            raise ValueError("request: the EHR does not know the encounter")
        refs = {"patient": coverage.patient_ref}
        if coverage.coverage_ref:
            refs["coverage"] = coverage.coverage_ref
        return refs
    raise ValueError(
        "request: patient_ref and coverage_ref, or case_id, or encounter_id, are required"
    )


def _payer_request(
    request: IncomingRequest,
    instance: Instance | None,
    facility_id: str,
    attachments: tuple[str, ...],
    documents: tuple[str, ...] = (),
) -> PriorAuthRequest:
    refs = instance.subject_refs if instance is not None else {}
    if not refs and request.patient_ref:  # an execution started before they moved there
        refs = {"patient": request.patient_ref, "coverage": request.coverage_ref or ""}
    if "patient" not in refs:
        raise ValueError("the instance has no patient reference to submit for")
    return PriorAuthRequest(
        case_id=request.request_id,
        patient_ref=refs["patient"],
        coverage_ref=refs.get("coverage") or None,
        payer_id=request.payer_id,
        facility_id=facility_id,
        procedure_codes=tuple(
            Coding(system=c.system, code=c.code, display=c.display) for c in request.procedure_codes
        ),
        service_date=request.service_date,
        priority=Priority(request.priority),
        attachments=attachments,
        documents=documents if attachments else (),
    )


def _review(
    request: Request,
    facility_id: str,
    policy: r.Clocks,
    response: PriorAuthResponse | PayerAnswer,
) -> HumanTaskSpec:
    """The task for a person when careflow does not act on the payer's answer: the problems
    are element paths and rules (no values), the decision a code."""
    what = (
        f"the payer's review action is not one careflow knows ({response.decision.value})"
        if response.decision is AuthDecision.UNKNOWN
        else f"the payer says {response.decision.value}, in a response that breaks PAS rules"
    )
    return HumanTaskSpec(
        purpose="payer-answer",
        title=f"Payer's answer on {request.request_id} needs a person: read it, record it",
        reasons=(what, *response.conformance),
        escalation_chain=policy.pend_chain,
        allowed_decisions=REVIEW_DECISIONS,
        subject_ref=f"prior-auth/{request.request_id}",
        facility_id=facility_id,
        policy_version=policy.policy_version,
    )


def _needs_review(response: PriorAuthResponse | PayerAnswer) -> bool:
    return response.decision is AuthDecision.UNKNOWN or bool(response.conformance)


# -- steps ---------------------------------------------------------------------------------
@step()
def register_request(
    inp: Register, *, store: StateStore, ehr: EhrPort, policies: PolicyReader, now: datetime
) -> Registered:
    """Records the instance with the request's patient and coverage references (the state
    carries the request without them) and pins the policy in force: the request's decision
    clocks and queues, with the policy's version, for the instance's whole life."""
    from careflow.policies import resolve

    refs = _subject_refs(inp.request, ehr)
    snapshot = resolve(r.POLICY, inp.facility_id, at=now, store=policies)
    clocks = r.clocks_from(
        snapshot,
        priority=inp.request.priority,
        service_line=inp.request.service_line,
        service_date=inp.request.service_date,
        now=now,
    )
    start_instance(
        store,
        workflow_id=WORKFLOW_ID,
        instance_id=inp.instance_id,
        subject_type="prior-auth",
        subject_id=inp.request.request_id,
        facility_id=inp.facility_id,
        correlation_id=inp.correlation_id,
        policy=snapshot,
        started="request_received",
        detail=f"{inp.request.service_line}, {inp.request.priority}",
        actor=ACTOR,
        now=now,
        decisions=clocks.rows,
        subject_refs=refs,
        service_line=inp.request.service_line,
    )
    return Registered(
        workflow_id=inp.workflow_id,
        instance_id=inp.instance_id,
        correlation_id=inp.correlation_id,
        facility_id=inp.facility_id,
        request=Request.model_validate(inp.request.model_dump()),  # without the references
        policy=clocks,
    )


def _documents_task(
    inp: Submit,
    instance: Instance | None,
    requested: tuple[str, ...],
    *,
    store: StateStore,
    ehr: EhrPort,
    predictor: PredictorPort | None,
    policies: PolicyReader | None,
    now: datetime,
) -> HumanTaskSpec:
    """The nurse's task to attach what the payer asked for, with the patient's documents
    that answer it proposed (ids and classes only) when the attachments model is on and
    sure (see :mod:`attachments`); otherwise as without the model."""
    from careflow.workflows.prior_authorization import attachments

    wanted = ", ".join(requested)
    patient = (instance.subject_refs if instance is not None else {}).get("patient")
    documents = ehr.patient_documents(patient) if patient else ()
    found = attachments.propose(
        documents,
        requested,
        instance_id=inp.instance_id,
        facility_id=inp.facility_id,
        predictor=predictor,
        store=store,
        policies=policies,
        now=now,
    )
    suggestion = found.suggestion()
    title = f"Payer asks for documents on {inp.request.request_id}: attach them"
    decisions: tuple[str, ...] = (attachments.OWN_CHOICE,)
    if found.proposed:
        ids = ", ".join(c.document_id for c in found.proposed)
        title = f"Payer asks for documents on {inp.request.request_id}: attach {ids}?"
        decisions = (attachments.PROPOSED, attachments.OWN_CHOICE)
    return HumanTaskSpec(
        purpose="documents",
        title=title,
        reasons=(f"requested: {wanted}", *found.reasons()),
        escalation_chain=inp.policy.documents_chain,
        allowed_decisions=decisions,
        subject_ref=f"prior-auth/{inp.request.request_id}",
        facility_id=inp.facility_id,
        policy_version=inp.policy.policy_version,
        suggestion=suggestion,
    )


@step()
def submit_request(
    inp: Submit,
    *,
    store: StateStore,
    payer: PayerPort,
    ehr: EhrPort,
    predictor: PredictorPort,
    policies: PolicyReader,
    now: datetime,
) -> Submitted:
    """``Claim/$submit``; a resubmission carries the documents the payer asked for. The
    patient and coverage come from the instance in the state table. When the payer asks
    for documents, the nurse's task proposes the patient's documents that answer it."""
    instance = store.get_instance(inp.instance_id)
    response: PriorAuthResponse = payer.submit_prior_auth(
        _payer_request(inp.request, instance, inp.facility_id, inp.attachments, inp.document_refs)
    )
    entries = [
        Milestone(
            instance_id=inp.instance_id,
            name="resubmitted" if inp.attachments else "submitted",
            at=now,
            detail=f"preauth {response.preauth_ref}",
        )
    ]
    task = review = None
    later = now + timedelta(microseconds=1)
    if _needs_review(response):
        review = _review(inp.request, inp.facility_id, inp.policy, response)
        entries.append(_review_milestone(inp.instance_id, later, response))
    elif response.decision is AuthDecision.PENDED and response.documents_requested:
        wanted = ", ".join(response.documents_requested)
        entries.append(
            Milestone(
                instance_id=inp.instance_id,
                name="documents_requested",
                at=later,
                status="PENDING",
                detail=wanted,
            )
        )
        task = _documents_task(
            inp,
            instance,
            response.documents_requested,
            store=store,
            ehr=ehr,
            predictor=predictor,
            policies=policies,
            now=later,
        )
    elif response.decision is AuthDecision.PENDED:
        entries.append(
            Milestone(instance_id=inp.instance_id, name="pended", at=later, status="PENDING")
        )
    store.record(*entries)
    pended = response.decision is AuthDecision.PENDED and review is None
    return Submitted(
        decision=response.decision,
        preauth_ref=response.preauth_ref,
        reason=response.reason,
        documents_requested=response.documents_requested,
        needs_documents=task is not None,
        submitted_at=now.isoformat(),
        document_task=task,
        stage=r.Stage.REVIEW if review else r.Stage.WAIT if pended else r.Stage.DECIDED,
        wait_s=inp.policy.overdue_s if pended else 0,
        conformance=response.conformance,
        review_task=review,
    )


def _review_milestone(
    instance_id: str, at: datetime, response: PriorAuthResponse | PayerAnswer
) -> Milestone:
    problems = len(response.conformance)
    return Milestone(
        instance_id=instance_id,
        name="payer_answer_review",
        at=at,
        status="PENDING",
        detail=f"{response.decision.value}, {problems} conformance problem(s)",
    )


@step()
def await_decision(
    inp: Await, *, store: StateStore, engine: WorkflowEngine, now: datetime
) -> Waiting:
    """Parks the task token under the authorization until the payer's notification (the
    ``PayerDecision`` function sends it back); resumes at once if the answer came first."""
    early = store.take_early_answer(inp.preauth_ref)
    if early is not None:
        engine.send_task_success(inp.token, early)
        return Waiting(resumed=True)
    store.put_wait(inp.preauth_ref, inp.token, inp.instance_id, now)
    return Waiting(waiting=True)


@step()
def inquire(inp: Inquire, *, store: StateStore, payer: PayerPort, now: datetime) -> Inquiry:
    """Re-reads the decision from the payer (``Claim/$inquire``), the system of record: after
    a notification (a signal, not the truth) or once the notification is overdue."""
    response = payer.inquire(inp.preauth_ref)
    elapsed = (now - inp.submitted_at).total_seconds()
    stage, wait_s = r.next_stage(
        response.decision,
        elapsed,
        inp.policy,
        escalated=inp.escalated,
        needs_review=_needs_review(response),
    )
    _milestone(
        store,
        inp.instance_id,
        "inquired",
        now,
        detail=f"{response.decision.value} after {elapsed / 3600:.0f} h",
    )
    task = None
    if stage is r.Stage.REVIEW:
        task = _review(inp.request, inp.facility_id, inp.policy, response)
        store.record(_review_milestone(inp.instance_id, now + timedelta(microseconds=1), response))
    return Inquiry(
        decision=response.decision,
        preauth_ref=inp.preauth_ref,
        reason=response.reason,
        stage=stage,
        wait_s=wait_s,
        escalated=inp.escalated,
        submitted_at=inp.submitted_at.isoformat(),
        conformance=response.conformance,
        review_task=task,
    )


@step()
def accept_decision(inp: Accept, *, store: StateStore, now: datetime) -> Inquiry:
    """The payer's answer that ``PayerDecision`` re-read with ``Claim/$inquire`` when the
    notification came: the workflow acts on it without asking the payer a second time (one
    ``$inquire`` per signal). An answer careflow cannot act on goes to a person."""
    answer = inp.answer
    submitted_at = datetime.fromisoformat(inp.clock.submitted_at)
    elapsed = (now - submitted_at).total_seconds()
    review = _needs_review(answer)
    stage, wait_s = r.next_stage(
        answer.decision, elapsed, inp.policy, escalated=inp.clock.escalated, needs_review=review
    )
    entries = [
        Milestone(
            instance_id=inp.instance_id,
            name="payer_decided",
            at=now,
            detail=f"{answer.decision.value} after {elapsed / 3600:.0f} h (re-read with $inquire)",
        )
    ]
    if review:
        entries.append(_review_milestone(inp.instance_id, now + timedelta(microseconds=1), answer))
    store.record(*entries)
    return Inquiry(
        decision=answer.decision,
        preauth_ref=answer.preauth_ref,
        reason=answer.reason,
        stage=stage,
        wait_s=wait_s,
        escalated=inp.clock.escalated,
        submitted_at=inp.clock.submitted_at,
        conformance=answer.conformance,
        review_task=_review(inp.request, inp.facility_id, inp.policy, answer) if review else None,
    )


@step()
def escalate_pend(
    inp: Escalate, *, store: StateStore, publisher: EventPublisher, now: datetime
) -> Inquiry:
    """The pend is past its escalation point: a person chases the payer before the clock runs
    out (an informational task: the execution keeps waiting on the payer)."""
    remaining_h = inp.clock.wait_s / 3600
    open_task(
        store,
        publisher,
        instance_id=inp.instance_id,
        workflow_id=WORKFLOW_ID,
        facility_id=inp.facility_id,
        purpose=f"pend-overdue:{inp.clock.preauth_ref}",
        title=f"Payer decision on {inp.clock.preauth_ref} overdue: contact the payer",
        reasons=(
            f"pended since {inp.clock.submitted_at}; "
            f"the decision clock runs out in {remaining_h:g} h",
        ),
        subject_ref=f"prior-auth/{inp.request.request_id}",
        escalation_chain=inp.policy.pend_chain,
        due_in_seconds=inp.clock.wait_s,
        token=None,
        allowed_decisions=(),
        now=now,
        policy_version=inp.policy.policy_version,
    )
    _milestone(
        store,
        inp.instance_id,
        "pend_escalated",
        now,
        status="ESCALATED",
        detail=f"no payer decision on {inp.clock.preauth_ref} yet",
    )
    return inp.clock.model_copy(update={"stage": r.Stage.WAIT, "escalated": True})


@step()
def conclude(
    inp: Conclude, *, store: StateStore, publisher: EventPublisher, now: datetime
) -> Concluded:
    """Writes how the request ended, opens an appeal task on a denial, returns the outcome
    (the execution's output) and its event."""
    from careflow.observability import kpi_metric, metrics

    outcome, reasons = r.outcome_of(inp.decision.decision, inp.decision.stage)
    if inp.decision.reason and outcome in (r.Outcome.DENIED, r.Outcome.ERROR):
        reasons = (*reasons, f"payer: {inp.decision.reason}")
    instance = store.get_instance(inp.instance_id)
    started = instance.started_at if instance else now
    turnaround = int((now - started).total_seconds())
    seen = {m.name for m in store.milestones(inp.instance_id)}
    first_pass = outcome is r.Outcome.APPROVED and not seen & {
        "pended",
        "documents_requested",
        "payer_answer_review",
    }
    entries = (
        Milestone(
            instance_id=inp.instance_id,
            name=f"concluded_{outcome.value.lower()}",
            at=now,
            status="DONE" if outcome in (r.Outcome.APPROVED, r.Outcome.NOT_REQUIRED) else "FAILED",
            detail=inp.decision.preauth_ref or "",
        ),
        AuditEntry(
            instance_id=inp.instance_id,
            at=now,
            actor=ACTOR,
            action="outcome",
            reason="; ".join(reasons) or outcome.value,
            policy_version=inp.policy.policy_version,
            detail={"outcome": outcome.value, "preauth_ref": inp.decision.preauth_ref},
        ),
    )
    finish_instance(
        store,
        inp.instance_id,
        status=InstanceStatus.COMPLETED,
        outcome=outcome.value,
        reasons=reasons,
        entries=entries,
        now=now,
    )
    if outcome is r.Outcome.DENIED:
        open_task(
            store,
            publisher,
            instance_id=inp.instance_id,
            workflow_id=WORKFLOW_ID,
            facility_id=inp.facility_id,
            purpose="appeal",
            title=f"Authorization {inp.decision.preauth_ref} denied: appeal or re-request",
            reasons=reasons,
            subject_ref=f"prior-auth/{inp.request.request_id}",
            escalation_chain=inp.policy.appeal_chain,
            due_in_seconds=inp.policy.appeal_task_s,
            token=None,
            allowed_decisions=(),
            now=now,
            policy_version=inp.policy.policy_version,
        )
    metrics.add_metric(name="PriorAuthConcluded", unit="Count", value=1)
    metrics.add_metric(name="PriorAuthTurnaround", unit="Seconds", value=turnaround)
    kpi_metric(  # the enterprise authorization_turnaround, by facility and service line
        "AuthorizationTurnaround",
        "Seconds",
        turnaround,
        workflow_id=WORKFLOW_ID,
        facility_id=inp.facility_id,
        service_line=inp.request.service_line,
    )
    if "pended" in seen:
        metrics.add_metric(name="PriorAuthPended", unit="Count", value=1)
    if first_pass:
        metrics.add_metric(name="PriorAuthFirstPassApproved", unit="Count", value=1)
    if outcome is r.Outcome.EXPIRED:
        metrics.add_metric(name="PriorAuthClockBreached", unit="Count", value=1)
    result = AuthOutcome(
        request_id=inp.request.request_id,
        instance_id=inp.instance_id,
        outcome=outcome,
        decision=inp.decision.decision,
        preauth_ref=inp.decision.preauth_ref,
        reasons=reasons,
        turnaround_seconds=turnaround,
        first_pass=first_pass,
        policy_version=inp.policy.policy_version,
        decision_clock_s=inp.policy.deadline_s,
    )
    detail = envelope(
        event_id=f"{inp.instance_id}:concluded",
        idempotency_key=f"{inp.instance_id}:concluded",
        facility_id=inp.facility_id,
        occurred_at=now,
        correlation_id=inp.correlation_id,
        data=result.model_dump(
            mode="json",
            include={
                "request_id",
                "instance_id",
                "outcome",
                "preauth_ref",
                "reasons",
                "first_pass",
            },
        )
        | {"turnaround_seconds": turnaround},
    )
    return Concluded(result=result, detail_type="PriorAuth.Concluded", detail=detail)
