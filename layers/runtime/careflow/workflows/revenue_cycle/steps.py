"""Post-procedure revenue cycle, one registered step per state-machine task.

What a step returns enters the execution's state and history: ids, causes, statuses,
decimal strings and dates. The case's usage, charges and record are re-read from the EHR
(the system of record) by the case id whenever a step needs them; the authorization
number is read from the prior authorization workflow's stored instance for the case (its
audit), never from that workflow's code.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from careflow import facilities
from careflow.canonical.payables import GoodsReceiptRequest, ReceiptLine
from careflow.canonical.payer import EligibilityRequest
from careflow.canonical.procurement import PurchaseOrderLine, PurchaseOrderRequest
from careflow.canonical.revenue import CaseBilling, UsedItem
from careflow.domain.records import AuditEntry, Milestone
from careflow.kit.human_tasks import HumanTaskSpec
from careflow.kit.instances import Concluded, conclude, start_instance
from careflow.kit.instances import milestone as _milestone
from careflow.kit.steps import StepInput, StepOutput, step
from careflow.ports import EhrPort, ErpPort, PayerPort, StateStore
from careflow.workflows.revenue_cycle import rules as r

if TYPE_CHECKING:
    from careflow.policies import PolicyReader

WORKFLOW_ID = "revenue-cycle"
ACTOR = "system:revenue-cycle"
PURPOSE = "dnfb"
# The prior authorization workflow's instances, as the state store keeps them.
PRIOR_AUTH_SUBJECT = "prior-auth"
PRIOR_AUTH_APPROVED = "APPROVED"
# The readiness workflow's instance for the case (its subject), which knows the case's
# service line; a case billed without one is "surgery" (what every case here is).
READINESS_SUBJECT = "case"
DEFAULT_SERVICE_LINE = "surgery"
# The audit entries the KPIs read (kpis.py).
REVIEWED = "revenue_reviewed"
RAISED = "dnfb_raised"
MEASURED = "revenue_measured"
RECEIVED = "bill_only_received"  # the bill-only POs' goods receipts posted (milestone, audit)

# Outcomes.
CLAIM_SUBMITTED = "CLAIM_SUBMITTED"
CLAIM_SUBMITTED_AFTER_REVIEW = "CLAIM_SUBMITTED_AFTER_REVIEW"
HELD = "HELD"
WRITTEN_OFF = "WRITTEN_OFF"
NOT_BILLABLE = "NOT_BILLABLE"
# A DNFB queue's decision -> the outcome it concludes (RESOLVED: review the case again).
RESOLVED = "RESOLVED"
DECISION_OUTCOMES = {"HOLD": HELD, "WRITE_OFF": WRITTEN_OFF, "NOT_BILLABLE": NOT_BILLABLE}
FINAL_BILLED = frozenset({CLAIM_SUBMITTED, CLAIM_SUBMITTED_AFTER_REVIEW})


# -- inputs and outputs --------------------------------------------------------------------
class RegisterCase(StepInput):
    workflow_id: str = WORKFLOW_ID
    instance_id: str
    correlation_id: str
    facility_id: str
    case_id: str
    encounter_id: str
    procedure_end: datetime


class Registered(StepOutput):
    """The execution's state from here on: ids and the pinned policy."""

    workflow_id: str
    instance_id: str
    correlation_id: str
    facility_id: str
    case_id: str
    encounter_id: str
    procedure_end: datetime
    policy: r.Policy


class ReviewInput(StepInput):
    instance_id: str
    facility_id: str
    case_id: str
    encounter_id: str
    procedure_end: datetime
    policy: r.Policy


class Review(StepOutput):
    result: str  # READY | WAITING | BLOCKED
    causes: tuple[str, ...] = ()
    cause: str | None = None  # the one a person works (BLOCKED)
    queue: str | None = None
    reasons: tuple[str, ...] = ()
    authorization: str | None = None
    missing_items: tuple[str, ...] = ()
    missing_amount: str = "0.00"
    charge_lag_days: int | None = None
    purchase_orders: tuple[str, ...] = ()
    task: HumanTaskSpec | None = None


class QueueAnswer(StepInput):
    """What completing the human task sends back."""

    decision: str
    actor: str = ""
    note: str = ""
    task_id: str | None = None


class ApplyDecision(StepInput):
    instance_id: str
    review: Review
    answer: QueueAnswer


class Decided(StepOutput):
    decision: str
    outcome: str | None  # None: RESOLVED, the case is reviewed again
    actor: str
    cause: str | None


class SubmitInput(StepInput):
    instance_id: str
    case_id: str
    policy: r.Policy
    review: Review


class ClaimSubmitted(StepOutput):
    claim_id: str
    status: str
    lines: int
    total: str


class Finalize(StepInput):
    instance_id: str
    correlation_id: str
    facility_id: str
    case_id: str
    procedure_end: datetime
    policy: r.Policy
    review: Review | None = None
    claim: ClaimSubmitted | None = None
    decision: Decided | None = None
    escalation_exhausted: bool = False
    error: dict[str, Any] | None = None


# -- helpers -------------------------------------------------------------------------------
def _case(ehr: EhrPort, case_id: str) -> CaseBilling:
    case = ehr.case_billing(case_id)
    if case is None:
        raise ValueError(f"the EHR does not know case {case_id}")
    return case


def authorization_for(store: StateStore, case_id: str) -> str | None:
    """The authorization number of the case's approved prior authorization: the prior
    authorization workflow's instance for the case (its subject is the case id), as stored,
    the number in its ``outcome`` audit entry. The latest approved one wins."""
    approved = [
        i
        for i in store.instances_for_subject(PRIOR_AUTH_SUBJECT, case_id)
        if i.outcome == PRIOR_AUTH_APPROVED
    ]
    for instance in sorted(approved, key=lambda i: i.updated_at, reverse=True):
        for entry in reversed(list(store.audit_trail(instance.instance_id))):
            ref = entry.detail.get("preauth_ref") if entry.action == "outcome" else None
            if ref:
                return str(ref)
    return None


def service_line_for(store: StateStore, case_id: str) -> str:
    """The case's service line as its readiness instance stored it (one query of the
    store, no EHR read), the latest one's; :data:`DEFAULT_SERVICE_LINE` when none has it."""
    known = [
        (i.started_at, i.service_line)
        for i in store.instances_for_subject(READINESS_SUBJECT, case_id)
        if i.service_line
    ]
    return max(known)[1] if known else DEFAULT_SERVICE_LINE


def _eligible(payer: PayerPort, case: CaseBilling) -> tuple[bool, bool]:
    """(eligible, authorization required) on the date of service."""
    answer = payer.check_eligibility(
        EligibilityRequest(
            case_id=case.case_id,
            patient_ref=case.patient_ref,
            coverage_ref=case.coverage_ref,
            payer_id=case.payer_id,
            service_date=case.procedure_end,
            procedure_codes=case.procedure_codes,
        )
    )
    return answer.active and answer.covered, answer.auth_required is not False


def _bill_only_usage(case: CaseBilling) -> dict[str, list[UsedItem]]:
    """The case's bill-only implants by supplier (in supplier order): one PO each, its
    lines the usage in the implant log's order."""
    by_supplier: dict[str, list[UsedItem]] = {}
    for u in case.used:
        if u.bill_only:
            by_supplier.setdefault(u.supplier_id or "unknown", []).append(u)
    return dict(sorted(by_supplier.items()))


def _raise_bill_only_pos(
    store: StateStore, erp: ErpPort, case: CaseBilling, inp: ReviewInput, now: datetime
) -> tuple[str, ...]:
    """One purchase order per supplier for the bill-only implants the case used (once:
    the reference is the instance and the supplier, so a retry or a later review finds
    the same order); the lines are the usage, so the supplier's invoice matches it. Then
    each order's goods receipt of the usage (:func:`_receive_bill_only`)."""
    by_supplier = _bill_only_usage(case)
    done = next(
        (m for m in store.milestones(inp.instance_id) if m.name == "bill_only_po_raised"), None
    )
    if done is not None:
        known = tuple(done.detail.split(", ")) if done.detail else ()
        _receive_bill_only(store, erp, case, inp, known, by_supplier, now)
        return known
    po_ids: list[str] = []
    for supplier, used in by_supplier.items():
        po = erp.create_purchase_order(
            PurchaseOrderRequest(
                reference=f"{inp.instance_id}:bill-only:{supplier}",
                facility_id=inp.facility_id,
                supplier_id=supplier,
                cost_center_id=inp.policy.bill_only_cost_center,
                lines=tuple(
                    PurchaseOrderLine(
                        item_id=u.item_id, quantity=u.quantity, unit_price=u.unit_price
                    )
                    for u in used
                ),
            )
        )
        po_ids.append(po.po_id)
    if po_ids:
        from careflow.observability import metrics

        lots = [
            f"{u.item_id} lot {u.lot or '-'} serial {u.serial or '-'}"
            for u in case.used
            if u.bill_only
        ]
        _milestone(store, inp.instance_id, "bill_only_po_raised", now, detail=", ".join(po_ids))
        store.record_audit(
            AuditEntry(
                instance_id=inp.instance_id,
                at=now,
                actor=ACTOR,
                action="bill_only_po_raised",
                reason="bill-only implants used",
                policy_version=inp.policy.policy_version,
                detail={"purchase_orders": po_ids, "usage": lots},
            )
        )
        metrics.add_metric(name="BillOnlyPurchaseOrders", unit="Count", value=len(po_ids))
    _receive_bill_only(store, erp, case, inp, tuple(po_ids), by_supplier, now)
    return tuple(po_ids)


def _receive_bill_only(
    store: StateStore,
    erp: ErpPort,
    case: CaseBilling,
    inp: ReviewInput,
    po_ids: tuple[str, ...],
    by_supplier: dict[str, list[UsedItem]],
    now: datetime,
) -> None:
    """Bill-only implants are received at use: per purchase order raised, the goods
    receipt of the usage (each line the PO line's, with the device's lot and serial,
    ``received_at_use``, received at the procedure's end), so the supplier's invoice is
    three-way matched against it. Once: milestone ``bill_only_received``; a retry before
    it repeats the reference ``<instance>:bill-only-receipt:<po>``, which the ERP answers
    with the receipt it first posted. The orders are the suppliers' in order (as raised)."""
    if not po_ids or any(m.name == RECEIVED for m in store.milestones(inp.instance_id)):
        return
    if len(po_ids) != len(by_supplier):
        raise ValueError(f"case {inp.case_id}: bill-only usage no longer matches its POs")
    orders = dict(zip(po_ids, by_supplier.values(), strict=True))
    from careflow.observability import metrics

    receipts = []
    for po_id, used in orders.items():
        receipt = erp.post_goods_receipt(
            GoodsReceiptRequest(
                reference=f"{inp.instance_id}:bill-only-receipt:{po_id}",
                po_id=po_id,
                facility_id=inp.facility_id,
                received_at=case.procedure_end,
                received_at_use=True,
                lines=tuple(
                    ReceiptLine(
                        po_line_number=n,
                        item_id=u.item_id,
                        quantity=u.quantity,
                        lot_number=u.lot,
                        serial_number=u.serial,
                    )
                    for n, u in enumerate(used, start=1)
                ),
            )
        )
        receipts.append(receipt.receipt_id)
    _milestone(store, inp.instance_id, RECEIVED, now, detail=", ".join(receipts))
    store.record_audit(
        AuditEntry(
            instance_id=inp.instance_id,
            at=now,
            actor=ACTOR,
            action=RECEIVED,
            reason="bill-only implants received at use",
            policy_version=inp.policy.policy_version,
            detail={"purchase_orders": list(orders), "receipts": receipts},
        )
    )
    metrics.add_metric(name="BillOnlyReceipts", unit="Count", value=len(receipts))


REASON = {
    r.MISSING_CHARGES: "used items without a charge",
    r.OP_NOTE_UNSIGNED: "operative note not signed",
    r.IMPLANT_LOG_MISSING: "implant log missing",
    r.CODING_INCOMPLETE: "coding not released",
    r.NO_AUTHORIZATION: "no authorization number for the claim",
    r.NOT_ELIGIBLE: "coverage not eligible on the date of service",
    r.ACCOUNT_HOLD: "account on hold",
}


# -- steps ---------------------------------------------------------------------------------
@step()
def register_completed_case(
    inp: RegisterCase, *, store: StateStore, policies: PolicyReader, ehr: EhrPort, now: datetime
) -> Registered:
    """Records the instance and pins the revenue-cycle policy in force for the facility."""
    from careflow.policies import resolve

    facility = facilities.facility(inp.facility_id)
    if facility is None:  # intake takes only known facilities; a replay may not
        raise ValueError(f"facility {inp.facility_id} is not served")
    if inp.procedure_end.tzinfo is None:
        raise ValueError("procedure_end needs a UTC offset")
    case = _case(ehr, inp.case_id)
    if case.encounter_id != inp.encounter_id:
        raise ValueError(f"case {inp.case_id} belongs to another encounter in the EHR")
    snapshot = resolve(r.POLICY, inp.facility_id, at=now, store=policies)
    policy = r.revenue_policy(snapshot, facility_id=inp.facility_id, time_zone=facility.zone.key)
    start_instance(
        store,
        workflow_id=WORKFLOW_ID,
        instance_id=inp.instance_id,
        subject_type="surgical_case",
        subject_id=inp.case_id,
        facility_id=inp.facility_id,
        correlation_id=inp.correlation_id,
        policy=snapshot,
        started="case_completed",
        detail=f"case {inp.case_id}, encounter {inp.encounter_id}",
        actor=ACTOR,
        now=now,
        subject_refs={"encounter": inp.encounter_id, "patient": case.patient_ref},
        scheduled_start=inp.procedure_end,
        service_line=service_line_for(store, inp.case_id),
    )
    return Registered(
        workflow_id=inp.workflow_id,
        instance_id=inp.instance_id,
        correlation_id=inp.correlation_id,
        facility_id=inp.facility_id,
        case_id=inp.case_id,
        encounter_id=inp.encounter_id,
        procedure_end=inp.procedure_end,
        policy=policy,
    )


@step()
def review_case_billing(
    inp: ReviewInput,
    *,
    store: StateStore,
    ehr: EhrPort,
    payer: PayerPort,
    erp: ErpPort,
    now: datetime,
) -> Review:
    """Charge capture against usage, documentation, coding and the claim's dependencies:
    READY for the claim, WAITING for a note or codes still within their limit, or BLOCKED
    with the DNFB cause a person works (the first in the policy's precedence). Bill-only
    implants used get their purchase order per supplier and, received at use, its goods
    receipt of the usage (lot and serial), each once (milestones ``bill_only_po_raised``
    and ``bill_only_received``), so the supplier's invoice three-way matches."""
    from careflow.observability import metrics

    policy = inp.policy
    zone = ZoneInfo(policy.time_zone)
    case = _case(ehr, inp.case_id)
    missing = r.missing_charges(case.used, case.charges)
    lag = r.charge_lag_days(case.procedure_end, case.charges, zone)
    authorization = authorization_for(store, inp.case_id)
    eligible, auth_required = _eligible(payer, case)
    pos = _raise_bill_only_pos(store, erp, case, inp, now)
    causes = r.findings(
        case,
        missing=missing,
        authorization=authorization,
        auth_required=auth_required,
        eligible=eligible,
        policy=policy,
    )
    result = r.assess(causes, case.procedure_end, now, policy)
    missing_amount = r.money(sum((m.amount for m in missing), Decimal(0)))
    first_review = not any(e.action == REVIEWED for e in store.audit_trail(inp.instance_id))
    store.record_audit(
        AuditEntry(
            instance_id=inp.instance_id,
            at=now,
            actor=ACTOR,
            action=REVIEWED,
            reason=", ".join(causes) or "ready",
            policy_version=policy.policy_version,
            detail={
                "result": result,
                "causes": list(causes),
                "first": first_review,
                "missing_items": [m.item_id for m in missing],
                "missing_count": sum(m.quantity for m in missing),
                "missing_amount": missing_amount,
                "charge_lag_days": lag,
                "procedure_end": case.procedure_end.isoformat(),
                "implants": [
                    f"{u.item_id} lot {u.lot or '-'} serial {u.serial or '-'}"
                    for u in case.used
                    if u.implant
                ],
            },
        )
    )
    if first_review:
        metrics.add_metric(name="MissingCharges", unit="Count", value=len(missing))
        if lag is not None:
            metrics.add_metric(name="ChargeLagDays", unit="Count", value=lag)
    base = Review(
        result=result,
        causes=causes,
        authorization=authorization,
        missing_items=tuple(m.item_id for m in missing),
        missing_amount=missing_amount,
        charge_lag_days=lag,
        purchase_orders=pos,
        reasons=tuple(REASON[c] for c in causes),
    )
    if result == r.READY:
        detail = f"authorization {authorization}" if authorization else "no authorization required"
        _milestone(store, inp.instance_id, "ready_to_bill", now, detail=detail)
        return base
    if result == r.WAITING:
        seen = [m for m in store.milestones(inp.instance_id) if m.name.startswith("awaiting_")]
        name = (
            "awaiting_documentation"
            if causes[0] in (r.OP_NOTE_UNSIGNED, r.IMPLANT_LOG_MISSING)
            else "awaiting_coding"
        )
        if not seen or seen[-1].name != name:
            _milestone(store, inp.instance_id, name, now, "PENDING", ", ".join(causes))
        return base
    cause = r.first_blocking(causes, case.procedure_end, now, policy)
    queue = r.queue_for(cause, policy)
    metrics.add_metric(name="DnfbCases", unit="Count", value=1)
    detail = f"{cause} to {queue}"
    if cause == r.MISSING_CHARGES:
        detail += f": {len(missing)} item(s), {missing_amount} USD"
    store.record(
        Milestone(
            instance_id=inp.instance_id, name="dnfb_raised", at=now, status="PENDING", detail=detail
        ),
        AuditEntry(
            instance_id=inp.instance_id,
            at=now,
            actor=ACTOR,
            action=RAISED,
            reason=cause,
            policy_version=policy.policy_version,
            detail={
                "cause": cause,
                "causes": list(causes),
                "queue": queue,
                "missing_amount": missing_amount,
                "procedure_end": case.procedure_end.isoformat(),
            },
        ),
    )
    task = HumanTaskSpec(
        purpose=PURPOSE,
        title=f"Case {inp.case_id} not final billed: {REASON[cause]}",
        reasons=tuple(REASON[c] for c in causes),
        escalation_chain=(queue, *(q for q in policy.escalation_chain if q != queue)),
        allowed_decisions=policy.decisions,
        subject_ref=f"surgical-case/{inp.case_id}",
        facility_id=inp.facility_id,
        policy_version=policy.policy_version,
    )
    return base.model_copy(update={"cause": cause, "queue": queue, "task": task})


@step()
def apply_dnfb_decision(inp: ApplyDecision, *, store: StateStore, now: datetime) -> Decided:
    """The queue's decision: RESOLVED (the case is reviewed again), HOLD (it stays DNFB),
    WRITE_OFF or NOT_BILLABLE (no claim)."""
    decision = inp.answer.decision
    if decision != RESOLVED and decision not in DECISION_OUTCOMES:
        raise ValueError(f"{decision!r} is not a decision on a DNFB case")
    actor = inp.answer.actor or "unknown"
    _milestone(store, inp.instance_id, "dnfb_decided", now, detail=f"{decision} by {actor}")
    return Decided(
        decision=decision,
        outcome=DECISION_OUTCOMES.get(decision),
        actor=actor,
        cause=inp.review.cause,
    )


@step()
def submit_case_claim(
    inp: SubmitInput, *, store: StateStore, ehr: EhrPort, now: datetime
) -> ClaimSubmitted:
    """Builds the case's FHIR R4 Claim (the authorization number in ``preAuthRef``, the
    implants with their device, lot and serial) and hands it to billing."""
    from careflow.observability import metrics

    case = _case(ehr, inp.case_id)
    claim = r.build_claim(
        case,
        claim_id=f"clm-{inp.case_id}",
        authorization=inp.review.authorization,
        policy=inp.policy,
        created=now,
    )
    receipt = ehr.submit_claim(claim)
    total = r.money(sum((u.unit_price * u.quantity for u in case.used), Decimal(0)))
    _milestone(
        store, inp.instance_id, "claim_submitted", now, detail=f"{receipt.claim_id}, {total} USD"
    )
    metrics.add_metric(name="ClaimsSubmitted", unit="Count", value=1)
    return ClaimSubmitted(
        claim_id=receipt.claim_id, status=receipt.status, lines=len(claim["item"]), total=total
    )


@step()
def finalize_case_billing(inp: Finalize, *, store: StateStore, now: datetime) -> Concluded:
    """The outcome: the claim submitted (first pass, or after a DNFB queue's review), or
    the case not final billed (HELD), written off or not billable."""
    trail = list(store.audit_trail(inp.instance_id))
    raised = [e for e in trail if e.action == RAISED]
    review = inp.review
    causes = list(dict.fromkeys(str(e.detail["cause"]) for e in raised))
    if inp.claim is not None:
        outcome = CLAIM_SUBMITTED_AFTER_REVIEW if raised else CLAIM_SUBMITTED
        reasons: tuple[str, ...] = (f"claim {inp.claim.claim_id} handed to billing",)
    elif inp.escalation_exhausted:
        outcome = HELD
        reasons = (
            *(review.reasons if review else ()),
            "no decision from the chain before its last SLA",
        )
    elif inp.decision is not None and inp.decision.outcome is not None:
        outcome = inp.decision.outcome
        reasons = (
            *(review.reasons if review else ()),
            f"{inp.decision.decision} by {inp.decision.actor}",
        )
    else:
        outcome = HELD
        why = "the claim could not be built or handed to billing" if inp.error else "no claim"
        reasons = (*(review.reasons if review else ()), why)
        if inp.error and "claim_failed" not in causes:
            causes.append("claim_failed")
    first = next((e for e in trail if e.action == REVIEWED), None)
    lag = review.charge_lag_days if review else None
    if first is not None and first.detail.get("charge_lag_days") is not None:
        lag = int(first.detail["charge_lag_days"])
    missing_count = int(first.detail.get("missing_count", 0)) if first else 0
    missing_amount = str(first.detail.get("missing_amount", "0.00")) if first else "0.00"
    open_cause = None
    if outcome not in FINAL_BILLED:
        open_cause = (review.cause if review and review.cause else None) or (
            causes[-1] if causes else "claim_failed"
        )
    return conclude(
        store,
        instance_id=inp.instance_id,
        facility_id=inp.facility_id,
        correlation_id=inp.correlation_id,
        now=now,
        outcome=outcome,
        reasons=reasons,
        milestone_name="billing_concluded",
        succeeded=outcome in FINAL_BILLED,
        detail_type="RevenueCycle.Concluded",
        actor=ACTOR,
        policy_version=inp.policy.policy_version,
        measured=(
            MEASURED,
            {
                "outcome": outcome,
                "final_billed": outcome in FINAL_BILLED,
                "causes": causes,
                "dnfb_cause": open_cause,
                "charge_lag_days": lag,
                "missing_count": missing_count,
                "missing_amount": missing_amount,
                "procedure_end": inp.procedure_end.isoformat(),
                "claim_id": inp.claim.claim_id if inp.claim else None,
            },
        ),
        data={
            "case_id": inp.case_id,
            "instance_id": inp.instance_id,
            "outcome": outcome,
            "causes": causes,
            "claim_id": inp.claim.claim_id if inp.claim else None,
            "charge_lag_days": lag,
            "missing_charges": missing_amount,
        },
    )
