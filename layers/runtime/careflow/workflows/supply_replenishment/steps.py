"""Supply replenishment, one registered step per state-machine task.

What a step returns enters the execution's state: facility, location, item, case and
requisition identifiers, quantities, amounts and probabilities; never a patient. The booked
cases are read from surgical case readiness's instances (the facility's booked procedures,
with the start a reschedule set) and each case's preference card from the EHR by its id.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from careflow.canonical.supply import RequisitionLine, RequisitionRequest
from careflow.domain.records import AuditEntry, InstanceStatus, Milestone
from careflow.events.envelope import envelope
from careflow.kit.human_tasks import TaskSpec
from careflow.kit.instances import finish_instance, start_instance
from careflow.kit.steps import StepInput, StepOutput, step
from careflow.ports import (
    ConnectorError,
    ConnectorUnavailable,
    EhrPort,
    ErpPort,
    EventPublisher,
    StateStore,
)
from careflow.workflows.supply_replenishment import rules as r
from careflow.workflows.supply_replenishment.events import (
    SUPPLY_AT_RISK,
    VENDOR_REPLENISHMENT,
    WORKFLOW_SOURCE,
    SupplyAtRisk,
    VendorReplenishment,
)
from careflow.workflows.supply_replenishment.kpis import MEASURED

if TYPE_CHECKING:
    from careflow.policies import PolicyReader

WORKFLOW_ID = "supply-replenishment"
PURPOSE = "replenishment_approval"
ACTOR = "system:replenishment"
# Surgical case readiness's instances are the facility's booked procedures.
CASES_WORKFLOW = "surgical-case-readiness"
CASE_STATUSES = ("RUNNING", "WAITING", "READY", "AT_RISK")
REVIEW_STATUSES = ("RUNNING", "WAITING")

Next = Literal["ASSESS", "DEBOUNCE"]


# -- inputs and outputs --------------------------------------------------------------------
class Change(StepInput):
    detail_type: str
    appointment_id: str


class StartReview(StepInput):
    workflow_id: str = WORKFLOW_ID
    instance_id: str
    correlation_id: str
    facility_id: str
    occurred_at: datetime
    trigger: Literal["change", "schedule"]
    change: Change | None = None
    horizon_days: int | None = None


class Started(StepOutput):
    next: Next
    policy: r.Policy
    run_date: str  # the facility's date of the review
    horizon_days: int
    as_of: datetime  # when the review started (the debounce compares)


class CheckSuperseded(StepInput):
    instance_id: str
    facility_id: str
    as_of: datetime


class SupersededOrNot(StepOutput):
    superseded: bool


class AssessInventory(StepInput):
    workflow_id: str = WORKFLOW_ID
    instance_id: str
    facility_id: str
    run_date: str
    horizon_days: int
    policy: r.Policy


class Assessment(StepOutput):
    plan: r.Plan
    cases: int  # booked cases in the horizon
    case_instances: dict[str, str]  # case id -> its readiness instance (at-risk cases only)
    needs_approval: bool
    task: TaskSpec | None = None
    task_due_s: int = 60


class ApproverAnswer(StepInput):
    task_id: str = ""
    decision: str
    actor: str = ""
    note: str = ""


class PlaceOrders(StepInput):
    instance_id: str
    facility_id: str
    correlation_id: str
    stage: Literal["initial", "approved"]
    plan: r.Plan
    case_instances: dict[str, str] = {}
    approval: ApproverAnswer | None = None


class Placed(StepOutput):
    stage: str
    created: int
    expedited: int
    vendor_notices: int
    requisitions: tuple[str, ...]
    approval: Literal["APPROVED", "REJECTED"] | None = None


class StartedSoFar(StepInput):
    run_date: str
    horizon_days: int
    policy: r.Policy


class AssessmentSoFar(StepInput):
    plan: r.Plan
    cases: int = 0


class PlacedSoFar(StepInput):
    created: int = 0
    expedited: int = 0
    vendor_notices: int = 0
    requisitions: tuple[str, ...] = ()
    approval: Literal["APPROVED", "REJECTED"] | None = None


class Finish(StepInput):
    """The whole state: the optional parts are there only on the paths that set them."""

    instance_id: str
    facility_id: str
    start: StartedSoFar
    superseded: SupersededOrNot | None = None
    assessment: AssessmentSoFar | None = None
    placed: PlacedSoFar | None = None
    approved: PlacedSoFar | None = None
    escalation_exhausted: bool = False


class Finished(StepOutput):
    outcome: str


# -- helpers -------------------------------------------------------------------------------
def _zone(facility_id: str) -> ZoneInfo:
    from careflow.facilities import zone_of

    return zone_of(facility_id)


def _metric(name: str, value: float = 1) -> None:
    from careflow.observability import metrics

    metrics.add_metric(name=name, unit="Count", value=value)


def _subject_ref(facility_id: str, run_date: str) -> str:
    return f"replenishment/{facility_id}@{run_date}"


# -- steps ---------------------------------------------------------------------------------
@step()
def start_review(
    inp: StartReview, *, store: StateStore, policies: PolicyReader, now: datetime
) -> Started:
    """Pins the policy and registers the facility's review; a schedule change waits out the
    debounce first."""
    from careflow.policies import resolve

    snapshot = resolve(r.POLICY, inp.facility_id, at=now, store=policies)
    policy = r.replenishment_policy(snapshot)
    run_date = now.astimezone(_zone(inp.facility_id)).date().isoformat()
    what = (
        f"{inp.change.detail_type} {inp.change.appointment_id}"
        if inp.trigger == "change" and inp.change is not None
        else "daily review"
    )
    start_instance(
        store,
        workflow_id=inp.workflow_id,
        instance_id=inp.instance_id,
        subject_type="facility_day",
        subject_id=f"{inp.facility_id}@{run_date}",
        facility_id=inp.facility_id,
        correlation_id=inp.correlation_id,
        policy=snapshot,
        started="review_started",
        detail=what,
        actor=ACTOR,
        now=now,
    )
    instance = store.get_instance(inp.instance_id)
    return Started(
        next="DEBOUNCE" if inp.trigger == "change" else "ASSESS",
        policy=policy,
        run_date=run_date,
        horizon_days=inp.horizon_days or policy.horizon_days,
        as_of=instance.started_at if instance else now,
    )


@step()
def check_superseded(inp: CheckSuperseded, *, store: StateStore) -> SupersededOrNot:
    """Trailing debounce: a review of the facility started later (a later change, or the
    daily schedule) covers this one, whether it still runs or has already ended: when two
    debounces end together the later review may conclude first (only one that failed or
    was cancelled covers nothing)."""
    going = [
        i for status in REVIEW_STATUSES for i in store.instances_by_status(WORKFLOW_ID, status)
    ]
    ended = store.instances_updated_since(WORKFLOW_ID, InstanceStatus.COMPLETED.value, inp.as_of)
    later = [
        i.started_at
        for i in (*going, *ended)
        if i.facility_id == inp.facility_id and i.instance_id != inp.instance_id
    ]
    return SupersededOrNot(superseded=r.superseded(later, inp.as_of))


def _booked_needs(
    store: StateStore,
    ehr: EhrPort,
    facility_id: str,
    now: datetime,
    horizon_days: int,
    unreadable: list[str] | None = None,
) -> tuple[list[r.CaseNeed], dict[str, str]]:
    """The preference-card lines of the facility's booked cases starting in the horizon,
    and each case's readiness instance. A case the EHR no longer has (or answers
    unusably) is left out and named in ``unreadable``, so one bad case does not stop the
    facility's review; an EHR that cannot be reached (ConnectorUnavailable) still fails
    the step, for its retries."""
    needs: list[r.CaseNeed] = []
    instances: dict[str, str] = {}
    end = now + r.DAY * horizon_days
    for status in CASE_STATUSES:
        for inst in store.instances_by_status(CASES_WORKFLOW, status):
            if inst.facility_id != facility_id or inst.subject_id in instances:
                continue
            if inst.scheduled_start is not None and not now <= inst.scheduled_start < end:
                continue
            try:
                case = ehr.get_surgical_case(inst.subject_id)
            except ConnectorUnavailable:
                raise
            except ConnectorError:
                if unreadable is not None:
                    unreadable.append(inst.subject_id)
                continue
            start = inst.scheduled_start or case.scheduled_start
            if not now <= start < end:
                continue
            instances[inst.subject_id] = inst.instance_id
            needs += [
                r.CaseNeed(
                    case_id=inst.subject_id, start=start, item_id=s.item_id, quantity=s.quantity
                )
                for s in case.supplies
            ]
    return needs, instances


@step()
def assess_inventory(
    inp: AssessInventory, *, store: StateStore, ehr: EhrPort, erp: ErpPort, now: datetime
) -> Assessment:
    """Demand (booked cases' preference cards) and usage history against each location's
    shelf: the stockout risk per item, what to reorder, the booked cases at risk."""
    policy, horizon = inp.policy, inp.horizon_days
    unreadable: list[str] = []
    needs, case_instances = _booked_needs(store, ehr, inp.facility_id, now, horizon, unreadable)
    locations = list(erp.locations(inp.facility_id))
    levels = [lv for loc in locations for lv in erp.par_levels(inp.facility_id, loc.location_id)]
    item_ids = sorted({lv.item_id for lv in levels})
    usage = erp.usage_history(inp.facility_id, item_ids, policy.usage_days) if item_ids else []
    rates = {(u.location_id, u.item_id): u.daily_average for u in usage}
    or_core = next((loc.location_id for loc in locations if loc.supplies_cases), None)
    needs_by_location = {or_core: needs} if or_core else {}
    positions = [
        r.Position(
            level=lv,
            daily_rate=rates.get((lv.location_id, lv.item_id), 0.0),
            scheduled=r.scheduled_by_day(
                needs if lv.location_id == or_core else (), lv.item_id, now, horizon
            ),
        )
        for lv in levels
    ]
    plan = r.plan(inp.facility_id, positions, needs_by_location, policy, now, inp.run_date)
    at_risk_cases = {c.case_id for c in plan.at_risk}
    below = sum(1 for i in plan.items if i.reorder > 0)
    entries: list[Milestone] = [
        Milestone(
            instance_id=inp.instance_id,
            name="inventory_assessed",
            at=now,
            detail=(
                f"{len(levels)} items at {len(locations)} locations, "
                f"{len(case_instances)} booked cases in {horizon} days: "
                f"{below} to reorder, {len(at_risk_cases)} cases at risk"
            ),
        )
    ]
    if unreadable:  # left out of the demand: a person checks them in the EHR
        entries.append(
            Milestone(
                instance_id=inp.instance_id,
                name="cases_unreadable",
                at=now,
                status="FAILED",
                detail=", ".join(sorted(unreadable)[:20]),
            )
        )
    entries += [
        Milestone(
            instance_id=inp.instance_id,
            name="case_supply_at_risk",
            at=now,
            status="PENDING",
            detail=(
                f"{c.case_id}: {c.item_id} {c.stockout_probability:.0%} likely short "
                f"by the case ({c.action})"
            ),
        )
        for c in plan.at_risk
    ]
    store.record(*entries)
    if plan.at_risk:
        _metric("CasesAtSupplyRisk", len(at_risk_cases))
    waiting = plan.with_action("APPROVAL")
    task = None
    if waiting:
        top = (
            "department_director"
            if any(o.approver == "department_director" for o in waiting)
            else waiting[0].approver
        )
        chain = tuple(dict.fromkeys((top, *policy.escalation_chain)))
        total = sum(o.amount for o in waiting)
        task = TaskSpec(
            facility_id=inp.facility_id,
            purpose=PURPOSE,
            title=(
                f"Approve {len(waiting)} replenishment requisition"
                f"{'s' if len(waiting) > 1 else ''} for {inp.facility_id} (${total:,.2f})"
            ),
            subject_ref=_subject_ref(inp.facility_id, inp.run_date),
            reasons=tuple(f"{o.rule}: {r.order_reason(o)}" for o in waiting),
            escalation_chain=chain,
            allowed_decisions=policy.approval_decisions,
            policy_version=policy.policy_version,
        )
    return Assessment(
        plan=plan,
        cases=len(case_instances),
        case_instances={k: v for k, v in case_instances.items() if k in at_risk_cases},
        needs_approval=bool(waiting),
        task=task,
        task_due_s=policy.buyer_task_seconds,
    )


def _announce_at_risk(
    inp: PlaceOrders,
    orders: tuple[r.Order, ...],
    placed: dict[str, tuple[str, datetime]],
    store: StateStore,
    publisher: EventPublisher,
    now: datetime,
    tag: str,
) -> None:
    """``Supply.AtRisk`` for each booked case the orders cover, and a milestone on its
    readiness instance."""
    covering = {(c, ln.item_id): o for o in orders for c in o.cases for ln in o.lines}
    for risk in inp.plan.at_risk:
        order = covering.get((risk.case_id, risk.item_id))
        if order is None:
            continue
        req_id, delivery = placed.get(order.reference, (None, None))
        detail = envelope(
            event_id=f"{inp.instance_id}:at-risk:{risk.case_id}:{risk.item_id}:{tag}",
            idempotency_key=f"{inp.instance_id}:at-risk:{risk.case_id}:{risk.item_id}:{tag}",
            facility_id=inp.facility_id,
            occurred_at=now,
            correlation_id=inp.correlation_id,
            data=SupplyAtRisk(
                case_id=risk.case_id,
                item_id=risk.item_id,
                location_id=risk.location_id,
                case_start=risk.case_start,
                stockout_probability=risk.stockout_probability,
                action=risk.action,
                requisition_id=req_id,
                expected_delivery=delivery,
                replenishment_instance_id=inp.instance_id,
            ).model_dump(mode="json"),
        )
        publisher.publish(WORKFLOW_SOURCE, SUPPLY_AT_RISK, detail)
        readiness = inp.case_instances.get(risk.case_id)
        if readiness:
            store.record_milestone(
                Milestone(
                    instance_id=readiness,
                    name="supply_at_risk",
                    at=now,
                    status="PENDING",
                    detail=(
                        f"{risk.item_id}: {risk.stockout_probability:.0%} likely short by the "
                        f"case; replenishment {risk.action}"
                        + (f" ({req_id})" if req_id else "")
                        + f" [{inp.instance_id}]"
                    ),
                )
            )


@step()
def place_orders(
    inp: PlaceOrders,
    *,
    store: StateStore,
    erp: ErpPort,
    publisher: EventPublisher,
    now: datetime,
) -> Placed:
    """``initial``: the requisitions the policy places at once (expedited for a booked case
    at risk), consignment vendors notified; ``approved``: the approver's requisitions.
    Idempotent: the ERP de-duplicates on each order's reference."""
    approval: Literal["APPROVED", "REJECTED"] | None = None
    if inp.stage == "initial":
        orders = inp.plan.with_action("REQUISITION")
    else:
        approved = inp.approval is not None and inp.approval.decision == "APPROVE"
        approval = "APPROVED" if approved else "REJECTED"
        orders = inp.plan.with_action("APPROVAL") if approved else ()
        actor = inp.approval.actor if inp.approval else "unknown"
        store.record_milestone(
            Milestone(
                instance_id=inp.instance_id,
                name=f"approval_{approval.lower()}",
                at=now,
                status="DONE" if approved else "FAILED",
                detail=f"by {actor}",
            )
        )
    placed: dict[str, tuple[str, datetime]] = {}
    expedited = 0
    entries: list[Milestone] = []
    for order in orders:
        req = erp.create_requisition(
            RequisitionRequest(
                facility_id=inp.facility_id,
                supplier_id=order.supplier_id,
                lines=tuple(
                    RequisitionLine(item_id=ln.item_id, quantity=ln.quantity) for ln in order.lines
                ),
                needed_by=order.needed_by,
                reason=f"par replenishment at {order.location_id}",
                reference=order.reference,
            )
        )
        delivery = req.expected_delivery
        entries.append(
            Milestone(
                instance_id=inp.instance_id,
                name="requisition_placed",
                at=now,
                detail=f"{req.requisition_id}: {r.order_reason(order)}",
            )
        )
        if order.expedite and delivery > order.needed_by:
            sped = erp.expedite(req.requisition_id, f"booked cases {', '.join(order.cases)}")
            delivery = sped.expected_delivery
            expedited += 1
            entries.append(
                Milestone(
                    instance_id=inp.instance_id,
                    name="requisition_expedited",
                    at=now,
                    detail=f"{req.requisition_id}: delivery {delivery.isoformat()}",
                )
            )
        placed[order.reference] = (req.requisition_id, delivery)
    notices = inp.plan.with_action("NOTIFY_VENDOR") if inp.stage == "initial" else ()
    for order in notices:
        publisher.publish(
            WORKFLOW_SOURCE,
            VENDOR_REPLENISHMENT,
            envelope(
                event_id=f"{inp.instance_id}:vendor:{order.reference}",
                idempotency_key=f"vendor:{order.reference}",
                facility_id=inp.facility_id,
                occurred_at=now,
                correlation_id=inp.correlation_id,
                data=VendorReplenishment(
                    supplier_id=order.supplier_id,
                    location_id=order.location_id,
                    lines=[{"item_id": ln.item_id, "quantity": ln.quantity} for ln in order.lines],
                    urgent_for_cases=list(order.cases),
                    replenishment_instance_id=inp.instance_id,
                ).model_dump(mode="json"),
            ),
        )
        entries.append(
            Milestone(
                instance_id=inp.instance_id,
                name="vendor_notified",
                at=now,
                detail=r.order_reason(order),
            )
        )
    store.record(*entries)
    announce = (*orders, *notices) if inp.stage == "initial" else orders
    _announce_at_risk(inp, announce, placed, store, publisher, now, inp.stage)
    if inp.stage == "initial":  # the cases waiting on an approval are announced now too
        pending = inp.plan.with_action("APPROVAL")
        _announce_at_risk(inp, pending, {}, store, publisher, now, "awaiting-approval")
    if placed:
        _metric("RequisitionsPlaced", len(placed))
    if expedited:
        _metric("RequisitionsExpedited", expedited)
    if notices:
        _metric("ConsignmentVendorsNotified", len(notices))
    return Placed(
        stage=inp.stage,
        created=len(placed),
        expedited=expedited,
        vendor_notices=len(notices),
        requisitions=tuple(req_id for req_id, _ in placed.values()),
        approval=approval,
    )


def _reasons(inp: Finish, outcome: str) -> tuple[str, ...]:
    """What a person reads beside the outcome: counts and identifiers."""
    if outcome == "SUPERSEDED":
        return ("a later schedule change at the facility runs the review",)
    parts = [p for p in (inp.placed, inp.approved) if p is not None]
    placed = [req for p in parts for req in p.requisitions]
    out = []
    if placed:
        out.append(f"requisitions placed: {', '.join(placed)}")
    if expedited := sum(p.expedited for p in parts):
        out.append(f"{expedited} expedited for booked cases at risk")
    if notices := sum(p.vendor_notices for p in parts):
        out.append(f"{notices} consignment vendor(s) asked to replenish")
    if inp.assessment is not None and (cases := {c.case_id for c in inp.assessment.plan.at_risk}):
        out.append(f"booked cases at risk: {', '.join(sorted(cases))}")
    if outcome == "APPROVAL_REJECTED":
        out.append("the approver rejected the requisitions above the automatic threshold")
    if outcome == "APPROVAL_EXPIRED":
        out.append("no approval before the escalation chain ran out: not placed")
    return tuple(out) or ("every shelf above its reorder point, no booked case short",)


@step()
def finish_review(inp: Finish, *, store: StateStore, now: datetime) -> Finished:
    """How the review ended: SUPERSEDED, NO_ACTION, REORDERED, REORDERED_WITH_EXPEDITE,
    VENDOR_NOTIFIED, APPROVAL_REJECTED or APPROVAL_EXPIRED (its chain ran out)."""
    if inp.superseded is not None and inp.superseded.superseded:
        outcome = "SUPERSEDED"
    else:
        parts = [p for p in (inp.placed, inp.approved) if p is not None]
        approval: r.Approval | None = None
        if inp.approved is not None and inp.approved.approval is not None:
            approval = inp.approved.approval
        elif inp.escalation_exhausted:
            approval = "EXPIRED"
        outcome = r.outcome_of(
            created=sum(p.created for p in parts),
            expedited=sum(p.expedited for p in parts),
            vendor_notices=sum(p.vendor_notices for p in parts),
            approval=approval,
        )
    reasons = _reasons(inp, outcome)
    entries: list[Milestone | AuditEntry] = []
    if inp.assessment is not None and outcome != "SUPERSEDED":
        parts = [p for p in (inp.placed, inp.approved) if p is not None]
        plan = inp.assessment.plan
        risks = [i.stockout_risk for i in plan.items if i.item_class != "bill_only"]
        if risks:  # the enterprise stockout_risk: the review's highest, by facility
            from careflow.observability import kpi_metric

            kpi_metric(
                "StockoutRiskMax",
                "None",
                max(risks),
                workflow_id=WORKFLOW_ID,
                facility_id=inp.facility_id,
            )
        entries.append(  # what GET /v1/kpis reads: items, numbers and counts, no patient
            AuditEntry(
                instance_id=inp.instance_id,
                at=now,
                actor=ACTOR,
                action=MEASURED,
                reason=outcome,
                policy_version=inp.start.policy.policy_version,
                detail={
                    "run_date": inp.start.run_date,
                    "items": [
                        {
                            "location_id": i.location_id,
                            "item_id": i.item_id,
                            "stockout_risk": i.stockout_risk,
                            "on_hand": i.on_hand,
                            "daily_use": round(i.demand / inp.start.horizon_days + i.daily_rate, 4),
                        }
                        for i in plan.items
                        if i.item_class != "bill_only"
                    ],
                    "requisitions": sum(p.created for p in parts),
                    "expedited": sum(p.expedited for p in parts),
                    "cases_at_risk": len({c.case_id for c in plan.at_risk}),
                },
            )
        )
    finish_instance(
        store,
        inp.instance_id,
        status=InstanceStatus.COMPLETED,
        outcome=outcome,
        reasons=reasons,
        entries=[
            *entries,
            Milestone(
                instance_id=inp.instance_id,
                name=f"review_{outcome.lower()}",
                at=now,
                status="FAILED" if outcome.startswith("APPROVAL_") else "DONE",
            ),
        ],
        now=now,
    )
    return Finished(outcome=outcome)
