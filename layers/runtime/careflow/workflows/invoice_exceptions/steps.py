"""Invoice exception handling, one registered step per state-machine task.

What a step returns enters the execution's state and history: ids, causes, statuses,
decimal strings and dates. The invoice, its PO and its receipts are re-read from the ERP
(the system of record) by id whenever a step needs them.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from careflow import facilities
from careflow.canonical.payables import (
    ContractPrice,
    InvoiceApproval,
    InvoiceExceptionAction,
)
from careflow.domain.records import AuditEntry, Milestone
from careflow.kit.human_tasks import HumanTaskSpec
from careflow.kit.instances import Concluded, conclude, start_instance
from careflow.kit.instances import milestone as _milestone
from careflow.kit.steps import StepInput, StepOutput, step
from careflow.ports import ErpPort, EventPublisher, StateStore
from careflow.workflows.invoice_exceptions import rules as r

if TYPE_CHECKING:
    from careflow.ml.governance import PredictorPort
    from careflow.policies import PolicyReader

WORKFLOW_ID = "invoice-exceptions"
ACTOR = "system:invoice-match"
PURPOSE = "invoice-exception"
# The audit entries the KPIs read (kpis.py).
RAISED = "invoice_exception_raised"
MEASURED = "invoice_measured"

# Outcomes.
MATCHED = "MATCHED"
RESOLVED_ACCEPTED = "RESOLVED_ACCEPTED"
CREDIT_MEMO_REQUESTED = "CREDIT_MEMO_REQUESTED"
RETURNED = "RETURNED"
DUPLICATE = "DUPLICATE"
NO_RECEIPT = "NO_RECEIPT"
UNRESOLVED = "UNRESOLVED"
AWAITING_APPROVAL = "AWAITING_APPROVAL"  # accepted, above the policy's limit: a second person
APPROVAL_PURPOSE = "variance-approval"
APPROVAL_DECISIONS = ("APPROVE", "REJECT")
# AP's decision -> the outcome it concludes.
DECISION_OUTCOMES = {
    "ACCEPT_VARIANCE": RESOLVED_ACCEPTED,
    "REQUEST_CREDIT_MEMO": CREDIT_MEMO_REQUESTED,
    "RETURN": RETURNED,
}
RESOLVED = frozenset(DECISION_OUTCOMES.values())
# The invoice exception model at receipt (decision 49): a confident no_receipt asks the
# cause's queue (receiving) at once; the exception task names the likely cause, and
# suggests the decision that follows it when the rules found that cause too.
RISK_MILESTONE = "exception_risk"
RECEIPT_PURPOSE = "receipt-expected"
SUGGESTED_DECISION = {
    r.PRICE_VARIANCE: "REQUEST_CREDIT_MEMO",
    r.CONTRACT_PRICE_VARIANCE: "REQUEST_CREDIT_MEMO",
    r.QUANTITY_VARIANCE: "REQUEST_CREDIT_MEMO",
    r.MISSING_PO: "RETURN",
}


# -- inputs and outputs --------------------------------------------------------------------
class RegisterInvoice(StepInput):
    workflow_id: str = WORKFLOW_ID
    instance_id: str
    correlation_id: str
    facility_id: str
    occurred_at: datetime
    invoice_id: str
    vendor_id: str
    invoice_number: str
    po_id: str | None = None


class Registered(StepOutput):
    """The execution's state from here on: ids and the pinned policy."""

    workflow_id: str
    instance_id: str
    correlation_id: str
    facility_id: str
    invoice_id: str
    vendor_id: str
    invoice_number: str
    po_id: str | None
    received_at: datetime
    policy: r.Policy
    # the invoice exception model's suggestion at receipt (Suggestion.ref()) when its row
    # is on; None when off, in shadow, or without the invoice's facts: the rules decide
    risk: dict[str, Any] | None = None


class MatchInput(StepInput):
    instance_id: str
    facility_id: str
    invoice_id: str
    vendor_id: str
    invoice_number: str
    po_id: str | None = None
    policy: r.Policy
    risk: dict[str, Any] | None = None


class Matched(StepOutput):
    result: str  # MATCHED | EXCEPTION | DUPLICATE | AWAITING_RECEIPT | NO_RECEIPT
    causes: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    variance: str = "0.00"
    queue: str | None = None
    invoice_date: str | None = None
    duplicate_of: str | None = None
    task: HumanTaskSpec | None = None
    task_due_s: int | None = None  # until the invoice enters its next aging bucket


class ApAnswer(StepInput):
    """What completing the human task sends back."""

    decision: str
    actor: str = ""
    note: str = ""
    task_id: str | None = None


class ApplyDecision(StepInput):
    instance_id: str
    invoice_id: str
    policy: r.Policy
    match: Matched
    ap: ApAnswer


class Decided(StepOutput):
    decision: str
    outcome: str
    actor: str
    status: str  # the invoice's status in the ERP afterwards
    awaits_approval: bool = False  # a variance above the policy's limit: a second person
    approval_task: HumanTaskSpec | None = None
    approved_by: str | None = None


class ApproveVariance(StepInput):
    instance_id: str
    invoice_id: str
    policy: r.Policy
    match: Matched
    decision: Decided
    approval: ApAnswer


class Finalize(StepInput):
    instance_id: str
    correlation_id: str
    facility_id: str
    invoice_id: str
    policy: r.Policy
    match: Matched
    decision: Decided | None = None
    escalation_exhausted: bool = False


# -- helpers -------------------------------------------------------------------------------
def _today(now: datetime, policy: r.Policy) -> date:
    return now.astimezone(ZoneInfo(policy.time_zone)).date()


def _contracts(erp: ErpPort, supplier_id: str, items: set[str]) -> dict[str, ContractPrice]:
    found = {}
    for item in sorted(items):
        price = erp.contract_price(supplier_id, item)
        if price is not None:
            found[item] = price
    return found


def _action(
    erp: ErpPort,
    inp: Any,
    action: str,
    match: Matched,
    *,
    actor: str,
    reason: str,
) -> str:
    change = erp.record_invoice_exception_action(
        InvoiceExceptionAction(
            invoice_id=inp.invoice_id,
            reference=inp.instance_id,
            action=action,
            causes=match.causes,
            queue=match.queue or "ap_general",
            actor=actor,
            variance=Decimal(match.variance),
            reason=reason,
        )
    )
    return change.status


def _risk_features(
    erp: ErpPort, inp: RegisterInvoice, policy: r.Policy
) -> tuple[dict[str, Any], datetime, float] | None:
    """The model's features from the ERP (model.features_of), the receipt deadline and the
    invoice's total; None when the ERP does not hold the invoice as sent or cannot be read
    (the match then fails or decides as before)."""
    from careflow.workflows.invoice_exceptions import model

    try:
        invoice = erp.invoice(inp.invoice_id)
        if invoice is None or invoice.supplier_id != inp.vendor_id:
            return None
        po_id = invoice.po_id or inp.po_id
        po = erp.purchase_order(po_id) if po_id else None
        receipts = erp.receipts(po.po_id) if po is not None else []
        contracts = _contracts(erp, invoice.supplier_id, {x.item_id for x in invoice.lines})
    except Exception:  # a model's input never fails the registration: the match reads again
        return None
    received = invoice.received_at.astimezone(ZoneInfo(policy.time_zone)).date()
    features = model.features_of(
        line_count=len(invoice.lines),
        total=float(invoice.total),
        implant_lines=sum(1 for x in (po.lines if po else ()) if x.category == "implant"),
        po_lines=len(po.lines) if po else 0,
        contract_priced=bool(contracts),
        has_po=bool(po_id),
        po_known=po is not None,
        receipt_posted=bool(receipts),
        invoice_age_days=r.age_days(invoice.invoice_date, received),
    )
    return features, r.receipt_deadline(invoice, policy), float(invoice.total)


def exception_risk(
    inp: RegisterInvoice,
    policy: r.Policy,
    *,
    store: StateStore,
    erp: ErpPort,
    publisher: EventPublisher | None,
    predictor: PredictorPort | None,
    policies: Any,
    now: datetime,
) -> dict[str, Any] | None:
    """The invoice exception model at receipt (audited by ``suggest``): its suggestion for
    the match's state when its row is on (acting or not), None when off or in shadow.
    Acting (at or above the threshold), it is an ``exception_risk`` milestone; acting on
    ``no_receipt`` with no receipt posted, the queue the policy routes that cause to
    (receiving) gets an informational task now instead of after the receipt wait."""
    from careflow.ml.governance import suggest
    from careflow.workflows.invoice_exceptions import model

    if predictor is None:
        return None
    facts = _risk_features(erp, inp, policy)
    if facts is None:
        return None
    features, deadline, total = facts
    found = suggest(
        model.MODEL.id,
        features,
        instance_id=inp.instance_id,
        facility_id=inp.facility_id,
        predictor=predictor,
        store=store,
        now=now,
        policies=policies,
        about=f"invoice/{inp.invoice_id}",
    )
    if found is None or found.setting.mode != "on":
        return None
    ref = found.ref()
    if not found.acts:
        return ref
    cause, p = found.label, found.prediction
    early = (
        cause == r.NO_RECEIPT
        and publisher is not None
        and features["po_known"]
        and not features["receipt_posted"]
    )
    _milestone(
        store,
        inp.instance_id,
        RISK_MILESTONE,
        now,
        status="PENDING",
        detail=(
            f"{cause} at {p.confidence:.2f} ({p.model_id} {p.version})"
            + (f", {policy.queues[r.NO_RECEIPT]} asked at receipt" if early else "")
        ),
    )
    if early and publisher is not None:
        from careflow.kit.human_tasks import TaskSpec, open_scored_task

        queue = policy.queues[r.NO_RECEIPT]
        open_scored_task(
            store,
            publisher,
            predictor=predictor,
            policies=policies,
            instance_id=inp.instance_id,
            workflow_id=WORKFLOW_ID,
            spec=TaskSpec(
                facility_id=inp.facility_id,
                purpose=RECEIPT_PURPOSE,
                title=f"Invoice {inp.invoice_id}: its goods receipt is likely missing",
                reasons=(
                    f"likely cause at receipt: {cause} at {p.confidence:.2f} "
                    f"({p.model_id} {p.version})",
                    f"no goods receipt posted yet; without one by {deadline.isoformat()} the "
                    "invoice is held as no receipt",
                    *p.reasons,
                ),
                subject_ref=f"invoice/{inp.invoice_id}",
                escalation_chain=(queue,),
                policy_version=policy.policy_version,
                value_usd=total,  # the task priority model's money at stake
            ),
            due_in_seconds=max(3600, int((deadline - now).total_seconds())),
            token=None,  # informational: the match never waits on it
            now=now,
        )
    return ref


def _risk_now(inp: MatchInput, policies: Any, now: datetime) -> dict[str, Any] | None:
    """The suggestion at receipt as the ai-models policy in force now allows it: dropped
    when the row is no longer on (the kill switch reaches an invoice registered before
    it), whether it acts re-read against the threshold in force."""
    if not inp.risk:
        return None
    from careflow.ml.governance import setting

    conf = setting(str(inp.risk.get("model_id")), inp.facility_id, policies=policies, at=now)
    if conf.mode != "on":
        return None
    return {**inp.risk, "acts": float(inp.risk.get("confidence", 0.0)) >= conf.threshold}


def _with_risk(
    risk: dict[str, Any] | None, causes: tuple[str, ...], policy: r.Policy
) -> tuple[tuple[str, ...], dict[str, Any] | None]:
    """What the exception task shows of the suggestion at receipt: a reason naming the
    likely cause, and the suggestion; ``decision`` (the decision that follows the cause)
    only when it acts and the rules found that cause too: the rules' cause always wins."""
    if not risk:
        return (), None
    cause = str(risk.get("label"))
    said = f"likely cause at receipt: {cause} at {float(risk.get('confidence', 0)):.2f} "
    said += f"({risk.get('model_id')} {risk.get('version')})"
    if not risk.get("acts"):
        return (f"{said}, below the policy's threshold: the rules decide",), dict(risk)
    decision = SUGGESTED_DECISION.get(cause)
    if cause in causes and decision in policy.exception_decisions:
        return (f"{said}, as the match found; {decision} suggested",), {
            **risk,
            "decision": decision,
        }
    return (f"{said}; the match found {', '.join(causes)}, which decides",), dict(risk)


# -- steps ---------------------------------------------------------------------------------
@step()
def register_invoice(
    inp: RegisterInvoice,
    *,
    store: StateStore,
    policies: PolicyReader,
    erp: ErpPort,
    publisher: EventPublisher,
    predictor: PredictorPort,
    now: datetime,
) -> Registered:
    """Records the instance and pins the invoice policy in force for the facility; the
    invoice exception model predicts the likely cause (:func:`exception_risk`)."""
    from careflow.policies import resolve

    facility = facilities.facility(inp.facility_id)
    if facility is None:  # intake takes only known facilities; a replay may not
        raise ValueError(f"facility {inp.facility_id} is not served")
    snapshot = resolve(r.POLICY, inp.facility_id, at=now, store=policies)
    policy = r.invoice_policy(snapshot, time_zone=facility.zone.key)
    start_instance(
        store,
        workflow_id=WORKFLOW_ID,
        instance_id=inp.instance_id,
        subject_type="invoice",
        subject_id=inp.invoice_id,
        facility_id=inp.facility_id,
        correlation_id=inp.correlation_id,
        policy=snapshot,
        started="invoice_received",
        detail=(
            f"invoice {inp.invoice_id} ({inp.vendor_id} {inp.invoice_number}) "
            f"for {inp.po_id or 'no PO'}"
        ),
        actor=ACTOR,
        now=now,
        subject_refs={"vendor": inp.vendor_id, "po": inp.po_id or ""},
    )
    return Registered(
        workflow_id=inp.workflow_id,
        instance_id=inp.instance_id,
        correlation_id=inp.correlation_id,
        facility_id=inp.facility_id,
        invoice_id=inp.invoice_id,
        vendor_id=inp.vendor_id,
        invoice_number=inp.invoice_number,
        po_id=inp.po_id,
        received_at=inp.occurred_at,
        policy=policy,
        risk=exception_risk(
            inp,
            policy,
            store=store,
            erp=erp,
            publisher=publisher,
            predictor=predictor,
            policies=policies,
            now=now,
        ),
    )


@step()
def match_invoice(
    inp: MatchInput,
    *,
    store: StateStore,
    erp: ErpPort,
    policies: PolicyReader,
    now: datetime,
) -> Matched:
    """The invoice as the ERP holds it: a duplicate, waiting for its receipt (until the
    policy's limit: NO_RECEIPT), matched, or an exception routed to its AP queue (recorded
    as HOLD in the ERP) with the task AP works."""
    from careflow.observability import kpi_metric, metrics

    policy = inp.policy
    invoice = erp.invoice(inp.invoice_id)
    if invoice is None:
        raise ValueError(f"the ERP does not know invoice {inp.invoice_id}")
    if (invoice.supplier_id, invoice.invoice_number) != (inp.vendor_id, inp.invoice_number):
        raise ValueError(f"invoice {inp.invoice_id} is another supplier's or number in the ERP")
    invoice_date = invoice.invoice_date.isoformat()
    original = r.duplicate_of(
        invoice, erp.supplier_invoices(invoice.supplier_id, invoice.invoice_number)
    )
    if original is not None:
        total = r.money(invoice.total)
        _milestone(store, inp.instance_id, "duplicate_found", now, "FAILED", detail=original)
        return Matched(
            result=r.DUPLICATE,
            causes=(r.DUPLICATE_INVOICE,),
            reasons=(f"repeats {original}: same supplier, number and total {total}",),
            variance=total,
            queue=policy.queues[r.DUPLICATE_INVOICE],
            invoice_date=invoice_date,
            duplicate_of=original,
        )
    po_id = invoice.po_id or inp.po_id
    po = erp.purchase_order(po_id) if po_id else None
    if po is None:
        match = r.Match(
            findings=(
                r.LineFinding(
                    line_number=1,
                    cause=r.MISSING_PO,
                    variance=invoice.total,
                    reason=f"no purchase order {po_id or '(none on the invoice)'} in the ERP",
                ),
            )
        )
    else:
        receipts = erp.receipts(po.po_id)
        if not receipts:
            deadline = r.receipt_deadline(invoice, policy)
            if now < deadline:
                _milestone(store, inp.instance_id, "awaiting_receipt", now, "PENDING", po.po_id)
                return Matched(result=r.AWAITING_RECEIPT, invoice_date=invoice_date)
            reason = f"no goods receipt for {po.po_id} by {deadline.isoformat()}"
            _milestone(store, inp.instance_id, "no_receipt", now, "FAILED", detail=po.po_id)
            return Matched(
                result=r.NO_RECEIPT_RESULT,
                causes=(r.NO_RECEIPT,),
                reasons=(reason,),
                variance=r.money(invoice.total),
                queue=policy.queues[r.NO_RECEIPT],
                invoice_date=invoice_date,
            )
        contracts = _contracts(erp, invoice.supplier_id, {x.item_id for x in invoice.lines})
        match = r.three_way_match(invoice, po, receipts, contracts, policy)
    if not match.findings:
        _milestone(store, inp.instance_id, "matched", now, detail=f"{r.money(invoice.total)} USD")
        return Matched(result=r.MATCHED, invoice_date=invoice_date)
    causes = match.causes
    queue = r.queue_for(causes, policy)
    variance = r.money(match.variance)
    reasons = tuple(f.reason for f in match.findings)
    days = r.age_days(invoice.invoice_date, _today(now, policy))
    metrics.add_metric(name="InvoiceExceptions", unit="Count", value=1)
    # the enterprise invoice_exception_aging: each exception's age (days) when raised
    kpi_metric(
        "InvoiceExceptionAgeDays",
        "Count",
        days,
        workflow_id=WORKFLOW_ID,
        facility_id=inp.facility_id,
    )
    matched = Matched(
        result=r.EXCEPTION,
        causes=causes,
        reasons=reasons,
        variance=variance,
        queue=queue,
        invoice_date=invoice_date,
    )
    _action(erp, inp, "HOLD", matched, actor=ACTOR, reason="; ".join(causes))
    store.record(
        Milestone(
            instance_id=inp.instance_id,
            name="exception_raised",
            at=now,
            status="PENDING",
            detail=f"{', '.join(causes)}: {variance} USD to {queue}",
        ),
        AuditEntry(
            instance_id=inp.instance_id,
            at=now,
            actor=ACTOR,
            action=RAISED,
            reason=", ".join(causes),
            policy_version=policy.policy_version,
            detail={
                "causes": list(causes),
                "queue": queue,
                "variance": variance,
                "invoice_date": invoice_date,
                "age_days": days,
                "bucket": r.bucket(days),
            },
        ),
    )
    said, suggestion = _with_risk(_risk_now(inp, policies, now), causes, policy)
    task = HumanTaskSpec(
        purpose=PURPOSE,
        title=(
            f"Invoice {inp.invoice_id} ({inp.vendor_id} {inp.invoice_number}): "
            f"{', '.join(c.replace('_', ' ') for c in causes)}, {variance} USD"
        ),
        reasons=(*reasons, *said),
        escalation_chain=(queue, *(q for q in policy.escalation_chain if q != queue)),
        allowed_decisions=policy.exception_decisions,
        subject_ref=f"invoice/{inp.invoice_id}",
        facility_id=inp.facility_id,
        policy_version=policy.policy_version,
        suggestion=suggestion,
        value_usd=float(invoice.total),  # the task priority model's money at stake
    )
    due = r.task_due_s(invoice.invoice_date, now, ZoneInfo(policy.time_zone), policy)
    return matched.model_copy(update={"task": task, "task_due_s": due})


@step()
def apply_invoice_decision(
    inp: ApplyDecision, *, store: StateStore, erp: ErpPort, now: datetime
) -> Decided:
    """AP's decision recorded on the invoice in the ERP: accepting the variance approves
    the invoice for payment (the person who accepted it its approver), unless the variance
    is above the policy's limit: then a second person approves it first (the invoice stays
    held); a credit memo request or a return keeps it from payment."""
    decision = inp.ap.decision
    outcome = DECISION_OUTCOMES.get(decision)
    if outcome is None:
        raise ValueError(f"{decision!r} is not a decision on an invoice exception")
    actor = inp.ap.actor or "unknown"
    variance = Decimal(inp.match.variance)
    if decision == "ACCEPT_VARIANCE" and r.needs_second_approval(variance, inp.policy):
        limit = inp.policy.variance_approval_usd
        _milestone(
            store,
            inp.instance_id,
            "variance_approval_requested",
            now,
            status="PENDING",
            detail=f"{variance} USD accepted by {actor}; above {limit} USD: a second approver",
        )
        task = HumanTaskSpec(
            purpose=APPROVAL_PURPOSE,
            title=(
                f"Approve the accepted variance of {variance} USD on invoice {inp.invoice_id} "
                f"(accepted by {actor})"
            ),
            reasons=(
                *inp.match.reasons,
                f"accepted by {actor}; above {limit} USD a second person approves it",
            ),
            escalation_chain=inp.policy.variance_approval_chain or inp.policy.escalation_chain,
            allowed_decisions=APPROVAL_DECISIONS,
            subject_ref=f"invoice/{inp.invoice_id}",
            facility_id=(inp.match.task.facility_id if inp.match.task else ""),
            policy_version=inp.policy.policy_version,
            excluded_actors=(actor,),
        )
        return Decided(
            decision=decision,
            outcome=AWAITING_APPROVAL,
            actor=actor,
            status="HELD",
            awaits_approval=True,
            approval_task=task,
        )
    status = _action(erp, inp, decision, inp.match, actor=actor, reason=inp.ap.note)
    if decision == "ACCEPT_VARIANCE":
        status = erp.approve_invoice(
            InvoiceApproval(
                invoice_id=inp.invoice_id,
                reference=inp.instance_id,
                approved_by=actor,
                reason=f"variance {inp.match.variance} USD accepted",
            )
        ).status
    _milestone(store, inp.instance_id, "exception_decided", now, detail=f"{decision} by {actor}")
    return Decided(decision=decision, outcome=outcome, actor=actor, status=status)


@step()
def approve_variance(
    inp: ApproveVariance, *, store: StateStore, erp: ErpPort, now: datetime
) -> Decided:
    """The second person's answer on an accepted variance above the policy's limit: APPROVE
    records the acceptance and approves the invoice for payment (the approver in the ERP);
    REJECT requests a credit memo from the supplier instead. The acceptor may not approve
    (the task refuses them; refused here too)."""
    acceptor, approver = inp.decision.actor, inp.approval.actor or "unknown"
    if approver == acceptor:
        raise ValueError("the person who accepted the variance may not approve it")
    if inp.approval.decision == "APPROVE":
        _action(erp, inp, "ACCEPT_VARIANCE", inp.match, actor=acceptor, reason=inp.approval.note)
        status = erp.approve_invoice(
            InvoiceApproval(
                invoice_id=inp.invoice_id,
                reference=inp.instance_id,
                approved_by=approver,
                reason=f"variance {inp.match.variance} USD accepted by {acceptor}",
            )
        ).status
        _milestone(
            store, inp.instance_id, "variance_approved", now, detail=f"approved by {approver}"
        )
        _milestone(
            store,
            inp.instance_id,
            "exception_decided",
            now,
            detail=f"ACCEPT_VARIANCE by {acceptor}, approved by {approver}",
        )
        return Decided(
            decision="ACCEPT_VARIANCE",
            outcome=RESOLVED_ACCEPTED,
            actor=acceptor,
            status=status,
            approved_by=approver,
        )
    if inp.approval.decision != "REJECT":
        raise ValueError(f"{inp.approval.decision!r} is not a decision on a variance approval")
    why = f"variance acceptance rejected by {approver}"
    status = _action(erp, inp, "REQUEST_CREDIT_MEMO", inp.match, actor=approver, reason=why)
    _milestone(store, inp.instance_id, "variance_rejected", now, "FAILED", f"by {approver}")
    _milestone(
        store,
        inp.instance_id,
        "exception_decided",
        now,
        detail=f"REQUEST_CREDIT_MEMO by {approver} (acceptance by {acceptor} rejected)",
    )
    return Decided(
        decision="REQUEST_CREDIT_MEMO",
        outcome=CREDIT_MEMO_REQUESTED,
        actor=approver,
        status=status,
    )


@step()
def finalize_invoice(inp: Finalize, *, store: StateStore, erp: ErpPort, now: datetime) -> Concluded:
    """The outcome: MATCHED (approved for payment now), DUPLICATE (rejected in the ERP),
    NO_RECEIPT (held), AP's resolution, or UNRESOLVED when the chain gave no decision."""
    from careflow.observability import metrics

    match, policy = inp.match, inp.policy
    reasons: tuple[str, ...] = match.reasons
    days_to_resolve: int | None = None
    if match.result == r.MATCHED:
        outcome = MATCHED
        erp.approve_invoice(
            InvoiceApproval(
                invoice_id=inp.invoice_id,
                reference=inp.instance_id,
                approved_by=ACTOR,
                reason="three-way match within tolerance",
            )
        )
        reasons = ("three-way match within tolerance: approved for payment",)
        metrics.add_metric(name="InvoicesMatchedFirstPass", unit="Count", value=1)
    elif match.result == r.DUPLICATE:
        outcome = DUPLICATE
        _action(erp, inp, "REJECT", match, actor=ACTOR, reason=f"duplicate of {match.duplicate_of}")
    elif match.result == r.NO_RECEIPT_RESULT:
        outcome = NO_RECEIPT
        _action(erp, inp, "HOLD", match, actor=ACTOR, reason="no goods receipt")
    elif inp.decision is not None and inp.decision.outcome != AWAITING_APPROVAL:
        outcome = inp.decision.outcome
        reasons = (*reasons, f"{inp.decision.decision} by {inp.decision.actor}")
        if inp.decision.approved_by:
            reasons = (*reasons, f"approved by {inp.decision.approved_by}")
    else:
        outcome = UNRESOLVED
        why = "no decision from the escalation chain before its last SLA"
        if inp.decision is not None:  # accepted, never approved
            why = f"accepted by {inp.decision.actor}, no approval before the chain's last SLA"
        reasons = (*reasons, why if inp.escalation_exhausted else "no decision")
    raised = next((a for a in store.audit_trail(inp.instance_id) if a.action == RAISED), None)
    if raised is not None and outcome in RESOLVED:
        days_to_resolve = max(0, (now - raised.at).days)
        metrics.add_metric(name="InvoiceDaysToResolve", unit="Count", value=days_to_resolve)
    today = _today(now, policy)
    age = (
        r.age_days(datetime.fromisoformat(match.invoice_date).date(), today)
        if match.invoice_date
        else None
    )
    return conclude(
        store,
        instance_id=inp.instance_id,
        facility_id=inp.facility_id,
        correlation_id=inp.correlation_id,
        now=now,
        outcome=outcome,
        reasons=reasons,
        milestone_name="invoice_concluded",
        succeeded=outcome in (MATCHED, *RESOLVED),
        detail_type="Invoice.Concluded",
        actor=ACTOR,
        policy_version=policy.policy_version,
        measured=(
            MEASURED,
            {
                "first_pass": outcome == MATCHED,
                "causes": list(match.causes),
                "queue": match.queue,
                "variance": match.variance,
                "invoice_date": match.invoice_date,
                "raised_at": raised.at.isoformat() if raised is not None else None,
                "days_to_resolve": days_to_resolve,
                "bucket": r.bucket(age) if age is not None else None,
            },
        ),
        data={
            "invoice_id": inp.invoice_id,
            "instance_id": inp.instance_id,
            "outcome": outcome,
            "causes": list(match.causes),
            "variance": match.variance,
            "queue": match.queue,
            "first_pass": outcome == MATCHED,
            "days_to_resolve": days_to_resolve,
        },
    )
