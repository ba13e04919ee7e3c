"""Procurement approval, one registered step per state-machine task.

What a step returns enters the execution's state and history: the requisition's ids, item
ids and codes, amounts (decimal strings), levels, decisions and the purchase orders' ids.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from careflow import facilities
from careflow.canonical.procurement import (
    BudgetReservationRequest,
    ItemIdentifiers,
    PurchaseOrderLine,
    PurchaseOrderRequest,
)
from careflow.domain.records import AuditEntry
from careflow.kit.human_tasks import HumanTaskSpec
from careflow.kit.instances import Concluded, conclude, start_instance
from careflow.kit.instances import milestone as _milestone
from careflow.kit.steps import StepInput, StepOutput, step
from careflow.ports import ErpPort, StateStore
from careflow.workflows.procurement_approval import rules as r
from careflow.workflows.procurement_approval.events import STATUS_CHANGED

if TYPE_CHECKING:
    from careflow.policies import PolicyReader

WORKFLOW_ID = "procurement-approval"
ACTOR = "system:procurement"
ITEM_MASTER_PURPOSE = "item-master"
APPROVAL_PURPOSE = "approval-{level}"  # one task per level (the ASL's task state's Purpose)
BUDGET_PURPOSE = "budget-exception"
# Audit actions GET /v1/kpis reads (kpis.py).
APPROVAL_DECIDED = "approval_decided"
MEASURED = "requisition_measured"


# -- inputs and outputs --------------------------------------------------------------------
class LineIn(StepInput):
    line_number: int
    quantity: int
    local_code: str | None = None
    manufacturer: str | None = None
    catalog_number: str | None = None
    gtin: str | None = None
    unspsc: str | None = None


class RegisterRequisition(StepInput):
    workflow_id: str = WORKFLOW_ID
    instance_id: str
    correlation_id: str
    facility_id: str
    occurred_at: datetime
    requisition_id: str
    cost_center_id: str
    requested_by: str | None = None
    needed_by: datetime | None = None
    lines: tuple[LineIn, ...]


class Registered(StepOutput):
    """The execution's state from here on."""

    workflow_id: str
    instance_id: str
    correlation_id: str
    facility_id: str
    requisition_id: str
    cost_center_id: str
    submitted_at: datetime
    needed_by: datetime | None
    policy: r.Policy
    lines: tuple[LineIn, ...]


class Normalize(StepInput):
    instance_id: str
    facility_id: str
    requisition_id: str
    policy: r.Policy
    lines: tuple[LineIn, ...]


class NormalizedLine(StepOutput):
    line_number: int
    item_id: str
    supplier_id: str
    item_class: str
    matched_on: str
    quantity: int
    unit_price: Decimal
    amount: Decimal


class Normalized(StepOutput):
    normalized: bool
    lines: tuple[NormalizedLine, ...]
    amount: Decimal
    reasons: tuple[str, ...]
    task: HumanTaskSpec | None = None
    due_in_seconds: int


class Answer(StepInput):
    decision: str
    note: str = ""


class ApplyItemMaster(StepInput):
    instance_id: str
    item_master: Answer


class Decided(StepOutput):
    decision: str


class Plan(StepInput):
    instance_id: str
    facility_id: str
    requisition_id: str
    cost_center_id: str
    policy: r.Policy
    normalized: Normalized


class Route(StepOutput):
    """The approvals: the levels the requisition needs, those that approved, the next (its
    task) or, once ``ended``, the outcome a decision ended it with."""

    amount: Decimal
    capital: bool
    levels: tuple[str, ...]
    approved: tuple[str, ...] = ()
    pending: str | None = None
    task: HumanTaskSpec | None = None
    due_in_seconds: int = 60
    done: bool = False
    ended: bool = False
    outcome: str | None = None
    reasons: tuple[str, ...] = ()


class ApplyApproval(StepInput):
    instance_id: str
    facility_id: str
    requisition_id: str
    cost_center_id: str
    policy: r.Policy
    route: Route
    approval: Answer


class Reserve(StepInput):
    instance_id: str
    facility_id: str
    requisition_id: str
    cost_center_id: str
    route: Route
    policy: r.Policy | None = None
    attempt: int = 1  # 2: again, after the budget office moved funds


class BudgetAnswer(StepOutput):
    reserved: bool
    reservation_id: str | None = None
    available: Decimal | None = None
    reasons: tuple[str, ...] = ()
    attempt: int = 1
    # Short of funds on the first attempt, under a policy with a budget office: its task.
    escalate: bool = False
    task: HumanTaskSpec | None = None
    due_in_seconds: int | None = None


class Order(StepInput):
    instance_id: str
    facility_id: str
    requisition_id: str
    cost_center_id: str
    needed_by: datetime | None = None
    normalized: Normalized
    budget: BudgetAnswer


class Purchased(StepOutput):
    po_ids: tuple[str, ...]
    reasons: tuple[str, ...]


class Release(StepInput):
    instance_id: str
    budget: BudgetAnswer
    error: dict[str, Any] = {}


class Released(StepOutput):
    released: bool


class Verdict(StepInput):
    outcome: str
    reasons: tuple[str, ...] = ()


class Finalize(StepInput):
    instance_id: str
    correlation_id: str
    facility_id: str
    requisition_id: str
    submitted_at: datetime
    policy: r.Policy
    verdict: Verdict
    route: Route | None = None
    purchase: Purchased | None = None
    escalation_exhausted: bool = False


# -- helpers -------------------------------------------------------------------------------
def _task(
    *, purpose: str, title: str, reasons: tuple[str, ...], level: r.Level, decisions: Any,
    requisition_id: str, facility_id: str, policy: r.Policy,
) -> HumanTaskSpec:  # fmt: skip
    return HumanTaskSpec(
        purpose=purpose,
        title=title,
        reasons=reasons,
        escalation_chain=level.chain,
        allowed_decisions=tuple(decisions),
        subject_ref=f"requisition/{requisition_id}",
        facility_id=facility_id,
        policy_version=policy.policy_version,
    )


def _route_to(route: Route, inp: Plan | ApplyApproval) -> Route:
    """The route with its next level's task, or done."""
    level = r.next_level(route.levels, route.approved)
    if level is None:
        return route.model_copy(update={"pending": None, "task": None, "done": True})
    spec = inp.policy.levels[level]
    label = level.replace("_", " ")
    task = _task(
        purpose=APPROVAL_PURPOSE.format(level=level),
        title=f"Approve requisition {inp.requisition_id} ({r.money(route.amount)}) as {label}",
        reasons=(
            f"{r.money(route.amount)} charged to {inp.cost_center_id}"
            + (" (capital)" if route.capital else ""),
            "levels: "
            + " → ".join(f"{lv} ✓" if lv in route.approved else lv for lv in route.levels),
        ),
        level=spec,
        decisions=inp.policy.approval_decisions,
        requisition_id=inp.requisition_id,
        facility_id=inp.facility_id,
        policy=inp.policy,
    )
    return route.model_copy(
        update={"pending": level, "task": task, "due_in_seconds": spec.due_seconds}
    )


# -- steps ---------------------------------------------------------------------------------
@step()
def register_requisition(
    inp: RegisterRequisition, *, store: StateStore, policies: PolicyReader, now: datetime
) -> Registered:
    """Records the instance and pins the procurement policy in force for the facility."""
    from careflow.policies import resolve

    if facilities.facility(inp.facility_id) is None:  # a replay may carry one no longer served
        raise ValueError(f"facility {inp.facility_id} is not served")
    snapshot = resolve(r.POLICY, inp.facility_id, at=now, store=policies)
    policy = r.procurement_policy(snapshot)
    start_instance(
        store,
        workflow_id=WORKFLOW_ID,
        instance_id=inp.instance_id,
        subject_type="requisition",
        subject_id=inp.requisition_id,
        facility_id=inp.facility_id,
        correlation_id=inp.correlation_id,
        policy=snapshot,
        started="requisition_submitted",
        detail=(
            f"requisition {inp.requisition_id}: {len(inp.lines)} line(s), "
            f"cost center {inp.cost_center_id}"
        ),
        actor=ACTOR,
        now=now,
    )
    return Registered(
        workflow_id=inp.workflow_id,
        instance_id=inp.instance_id,
        correlation_id=inp.correlation_id,
        facility_id=inp.facility_id,
        requisition_id=inp.requisition_id,
        cost_center_id=inp.cost_center_id,
        submitted_at=inp.occurred_at,
        needed_by=inp.needed_by,
        policy=policy,
        lines=inp.lines,
    )


@step()
def normalize_requisition(
    inp: Normalize, *, store: StateStore, erp: ErpPort, now: datetime
) -> Normalized:
    """Each line to its canonical item through the ERP's crosswalk (rules.normalize: the
    manufacturer's catalog number, then GTIN, the facility's local code, UNSPSC), priced at
    the item's contract price. A line that cannot be normalized: the item-master team's task."""
    lines, reasons = [], []
    for line in inp.lines:
        ids = ItemIdentifiers(
            facility_id=inp.facility_id,
            **line.model_dump(exclude={"line_number", "quantity"}),
        )
        found = r.normalize(erp.crosswalk(ids))
        if found.item is None or found.matched_on is None:
            reasons.append(f"line {line.line_number}: {found.reason}")
            continue
        item = found.item
        lines.append(
            NormalizedLine(
                line_number=line.line_number,
                item_id=item.item_id,
                supplier_id=item.supplier_id,
                item_class=item.item_class,
                matched_on=found.matched_on,
                quantity=line.quantity,
                unit_price=item.contract_price,
                amount=r.line_amount(item.contract_price, line.quantity),
            )
        )
    amount = sum((x.amount for x in lines), Decimal(0))
    normalized = not reasons
    _milestone(
        store,
        inp.instance_id,
        "requisition_normalized" if normalized else "normalization_failed",
        now,
        status="DONE" if normalized else "PENDING",
        detail="; ".join(
            reasons or [f"{x.line_number}: {x.item_id} by {x.matched_on}" for x in lines]
        ),
    )
    task = None
    if not normalized:
        task = _task(
            purpose=ITEM_MASTER_PURPOSE,
            title=f"Crosswalk the items of requisition {inp.requisition_id}",
            reasons=tuple(reasons),
            level=inp.policy.item_master,
            decisions=inp.policy.item_master_decisions,
            requisition_id=inp.requisition_id,
            facility_id=inp.facility_id,
            policy=inp.policy,
        )
    return Normalized(
        normalized=normalized,
        lines=tuple(lines),
        amount=amount,
        reasons=tuple(reasons),
        task=task,
        due_in_seconds=inp.policy.item_master.due_seconds,
    )


@step()
def apply_item_master_decision(
    inp: ApplyItemMaster, *, store: StateStore, now: datetime
) -> Decided:
    """RESOLVED: the crosswalk was fixed in the ERP (normalize again); REFUSE: the end."""
    _milestone(store, inp.instance_id, "item_master_decided", now, detail=inp.item_master.decision)
    return Decided(decision=inp.item_master.decision)


@step()
def plan_approvals(inp: Plan, *, store: StateStore, now: datetime) -> Route:
    """The approval levels the facility's policy routes the amount to; capital (above the
    threshold, or a capital item class) adds capital review."""
    amount = inp.normalized.amount
    capital = r.is_capital(amount, (x.item_class for x in inp.normalized.lines), inp.policy)
    levels = r.approval_levels(amount, capital, inp.policy)
    store.record_audit(
        AuditEntry(
            instance_id=inp.instance_id,
            at=now,
            actor=ACTOR,
            action="approval_routed",
            reason=" → ".join(levels),
            policy_version=inp.policy.policy_version,
            detail={"amount": str(amount), "capital": capital, "levels": list(levels)},
        )
    )
    _milestone(
        store,
        inp.instance_id,
        "approval_routed",
        now,
        detail=f"{r.money(amount)}{' capital' if capital else ''}: {' → '.join(levels)}",
    )
    return _route_to(Route(amount=amount, capital=capital, levels=levels), inp)


@step()
def apply_approval_decision(inp: ApplyApproval, *, store: StateStore, now: datetime) -> Route:
    """One level's decision: APPROVE moves to the next level (or done), REJECT and RETURN
    end the requisition."""
    route, decision = inp.route, inp.approval.decision
    level = route.pending or "?"
    store.record_audit(
        AuditEntry(
            instance_id=inp.instance_id,
            at=now,
            actor=ACTOR,
            action=APPROVAL_DECIDED,
            reason=decision,
            policy_version=inp.policy.policy_version,
            detail={"level": level, "decision": decision, "amount": str(route.amount)},
        )
    )
    _milestone(store, inp.instance_id, f"{level}_decided", now, detail=decision)
    outcome = r.after_decision(decision)
    if outcome is not None:
        why = f"{level.replace('_', ' ')} decided {decision}"
        note = f": {inp.approval.note}" if inp.approval.note else ""
        return route.model_copy(
            update={"ended": True, "outcome": outcome, "reasons": (why + note,), "task": None}
        )
    return _route_to(route.model_copy(update={"approved": (*route.approved, level)}), inp)


@step()
def reserve_budget(inp: Reserve, *, store: StateStore, erp: ErpPort, now: datetime) -> BudgetAnswer:
    """The cost center's budget, reserved in the ERP for the approved amount (idempotent on
    the instance and attempt); a cost center the ERP does not know is a budget exception;
    one short of funds goes to the budget office first (policy 2026.12.2), whose transfer
    earns one more attempt."""
    amount = inp.route.amount
    budget = erp.budget(inp.cost_center_id)
    if budget is None or budget.facility_id != inp.facility_id:
        why = f"cost center {inp.cost_center_id} is not one of the facility's in the ERP"
        _milestone(store, inp.instance_id, "budget_exception", now, "FAILED", why)
        return BudgetAnswer(reserved=False, reasons=(why,), attempt=inp.attempt)
    reference = f"{inp.instance_id}:budget" + (f":{inp.attempt}" if inp.attempt > 1 else "")
    held = erp.reserve_budget(
        BudgetReservationRequest(
            reference=reference,
            cost_center_id=inp.cost_center_id,
            facility_id=inp.facility_id,
            amount=amount,
            requisition_id=inp.requisition_id,
        )
    )
    if held.status != "RESERVED":
        why = (
            f"{inp.cost_center_id} has {r.money(budget.available)} available, "
            f"{r.money(amount)} needed"
        )
        office = inp.policy.budget_office if inp.policy is not None else None
        if inp.attempt == 1 and office is not None and inp.policy is not None:
            _milestone(store, inp.instance_id, "budget_short", now, "PENDING", why)
            task = _task(
                purpose=BUDGET_PURPOSE,
                title=(
                    f"Requisition {inp.requisition_id}: {inp.cost_center_id} short of funds "
                    f"({r.money(amount)} needed)"
                ),
                reasons=(why, "transfer funds to the cost center in the ERP, or decline"),
                level=office,
                decisions=inp.policy.budget_decisions,
                requisition_id=inp.requisition_id,
                facility_id=inp.facility_id,
                policy=inp.policy,
            )
            return BudgetAnswer(
                reserved=False,
                available=budget.available,
                reasons=(why,),
                attempt=inp.attempt,
                escalate=True,
                task=task,
                due_in_seconds=office.due_seconds,
            )
        _milestone(store, inp.instance_id, "budget_exception", now, "FAILED", why)
        return BudgetAnswer(
            reserved=False, available=budget.available, reasons=(why,), attempt=inp.attempt
        )
    _milestone(
        store,
        inp.instance_id,
        "budget_reserved",
        now,
        detail=f"{held.reservation_id}: {r.money(amount)} on {inp.cost_center_id}",
    )
    return BudgetAnswer(
        reserved=True,
        reservation_id=held.reservation_id,
        available=held.available,
        attempt=inp.attempt,
    )


@step()
def create_purchase_orders(
    inp: Order, *, store: StateStore, erp: ErpPort, now: datetime
) -> Purchased:
    """One purchase order per supplier (idempotent on the instance and supplier); the
    budget reservation becomes the first one's commitment."""
    by_supplier: dict[str, list[NormalizedLine]] = defaultdict(list)
    for line in inp.normalized.lines:
        by_supplier[line.supplier_id].append(line)
    po_ids = []
    for n, (supplier, lines) in enumerate(sorted(by_supplier.items())):
        po = erp.create_purchase_order(
            PurchaseOrderRequest(
                reference=f"{inp.instance_id}:{supplier}",
                facility_id=inp.facility_id,
                supplier_id=supplier,
                cost_center_id=inp.cost_center_id,
                reservation_id=inp.budget.reservation_id if n == 0 else None,
                lines=tuple(
                    PurchaseOrderLine(
                        item_id=x.item_id, quantity=x.quantity, unit_price=x.unit_price
                    )
                    for x in lines
                ),
                needed_by=inp.needed_by,
            )
        )
        po_ids.append(po.po_id)
        _milestone(
            store, inp.instance_id, "po_created", now, detail=f"{po.po_id} {supplier} {po.status}"
        )
    return Purchased(po_ids=tuple(po_ids), reasons=(f"purchase order {', '.join(po_ids)}",))


@step()
def release_budget(inp: Release, *, store: StateStore, erp: ErpPort, now: datetime) -> Released:
    """The purchase order failed: the reservation goes back to the cost center."""
    if inp.budget.reservation_id is None:
        return Released(released=False)
    erp.release_budget(inp.budget.reservation_id)
    name = str(inp.error.get("Error", "Error"))
    _milestone(store, inp.instance_id, "budget_released", now, "DONE", name)
    return Released(released=True)


@step()
def finalize_requisition(
    inp: Finalize, *, store: StateStore, erp: ErpPort, now: datetime
) -> Concluded:
    """The outcome, its measurements (cycle time, levels) and the status event the
    requesting facility's system consumes, the purchase order's status re-read from the ERP."""
    from careflow.observability import metrics

    verdict, route = inp.verdict, inp.route
    outcome = verdict.outcome
    reasons = verdict.reasons
    if inp.escalation_exhausted and outcome == r.APPROVAL_EXPIRED:
        reasons = (*reasons, "no decision from the escalation chain before its last SLA")
    po_ids = inp.purchase.po_ids if inp.purchase else ()
    po_status = erp.purchase_order_status(po_ids[0]).status if po_ids else None
    cycle = max(0, int((now - inp.submitted_at).total_seconds()))
    amount = route.amount if route else Decimal(0)
    approved = list(route.approved) if route else []
    metrics.add_metric(name="RequisitionsConcluded", unit="Count", value=1)
    metrics.add_metric(name="RequisitionCycleSeconds", unit="Seconds", value=cycle)
    if outcome == r.BUDGET_EXCEPTION:
        metrics.add_metric(name="BudgetExceptions", unit="Count", value=1)
    return conclude(
        store,
        instance_id=inp.instance_id,
        facility_id=inp.facility_id,
        correlation_id=inp.correlation_id,
        now=now,
        outcome=outcome,
        reasons=reasons,
        milestone_name="requisition_concluded",
        succeeded=outcome == r.PO_CREATED,
        detail_type=STATUS_CHANGED,
        actor=ACTOR,
        policy_version=inp.policy.policy_version,
        measured=(
            MEASURED,
            {
                "submitted_at": inp.submitted_at.isoformat(),
                "cycle_seconds": cycle,
                "amount": str(amount),
                "approved_levels": approved,
                "po_ids": list(po_ids),
            },
        ),
        data={
            "requisition_id": inp.requisition_id,
            "instance_id": inp.instance_id,
            "status": outcome,
            "amount": str(amount),
            "approved_levels": approved,
            "po_id": po_ids[0] if po_ids else None,
            "po_status": po_status,
            "reasons": list(reasons),
        },
    )
