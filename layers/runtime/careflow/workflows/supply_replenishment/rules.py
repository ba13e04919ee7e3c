"""Supply replenishment: demand, the stockout risk, what to reorder and who approves it.

Pure functions over canonical models; the steps fetch through ports and call these.

**Stockout risk.** For an item at a location, looking ``d`` days ahead (day 1 is the next
24 h from the review): the shelf's on-hand ``H`` (what is on order is left out: it has not
arrived), minus the scheduled cases' preference-card quantities of days 1..d (``S_d``,
known), minus unplanned use, Poisson with the historical daily rate ``r`` per day and so
``Poisson(r x d)`` over ``d`` days. On-hand never rises before a delivery, so it "goes
below zero by day d" exactly when it is below zero at day d:

    risk(d) = P(H - S_d - Poisson(r d) < 0) = 1 - F(H - S_d; r d)   (1 when H - S_d < 0)

with ``F(k; mu)`` the Poisson CDF, summed exactly. The item's **stockout risk** is
``risk(D)`` at its delivery day ``D = max(1, ceil(lead time))``: the chance the shelf runs
out before an order placed now arrives.

**Reorder.** The expected position at the delivery day, ``P_D = H + on order - S_D - r D``;
below the reorder point, order up to par: ``ceil(par - P_D)``. Bill-only items are never
ordered (received at use).

**A booked case at risk**: its item's ``risk(k)`` at the case's day ``k`` is at least the
policy's threshold. A standard delivery (now + lead time) later than the case's start minus
the prep hours is expedited; a consignment item's vendor is told instead.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from careflow.canonical.inventory import ItemClass, ParLevel
from careflow.policies.model import DecisionTable

POLICY = "supply-replenishment"
DAY = timedelta(days=1)

Action = Literal["REQUISITION", "APPROVAL", "NOTIFY_VENDOR", "NONE"]
CaseAction = Literal["expedite", "standard", "vendor"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Policy(_Frozen):
    """What one review runs by, resolved at its start and pinned with its version."""

    policy_version: str
    horizon_days: int
    usage_days: int
    change_debounce_seconds: int
    case_risk_threshold: float
    case_prep_hours: int
    buyer_task_seconds: int
    escalation_chain: tuple[str, ...]
    approval_decisions: tuple[str, ...]
    approval: DecisionTable


def replenishment_policy(snapshot: Any) -> Policy:
    return Policy(
        policy_version=snapshot.version,
        horizon_days=int(snapshot.value("horizon_days")),
        usage_days=int(snapshot.value("usage_days")),
        change_debounce_seconds=int(snapshot.value("change_debounce_seconds")),
        case_risk_threshold=float(snapshot.value("case_risk_threshold")),
        case_prep_hours=int(snapshot.value("case_prep_hours")),
        buyer_task_seconds=int(snapshot.value("buyer_task_seconds")),
        escalation_chain=tuple(snapshot.value("escalation_chain")),
        approval_decisions=tuple(snapshot.value("approval_decisions")),
        approval=snapshot.tables["approval"],
    )


# -- demand ----------------------------------------------------------------------------------
class CaseNeed(_Frozen):
    """One preference-card line of a booked case: identifiers and a quantity, no patient."""

    case_id: str
    start: datetime
    item_id: str
    quantity: int


def day_index(now: datetime, at: datetime) -> int:
    """Day 1 is [now, now + 24 h), day 2 the next 24 h...; a time already past is day 1."""
    return max(1, math.floor((at - now) / DAY) + 1)


def scheduled_by_day(
    needs: Iterable[CaseNeed], item_id: str, now: datetime, days: int
) -> tuple[int, ...]:
    """The item's scheduled quantity on each of days 1..days (a case past them is left out)."""
    out = [0] * days
    for need in needs:
        if need.item_id == item_id and need.start >= now:
            k = day_index(now, need.start)
            if k <= days:
                out[k - 1] += need.quantity
    return tuple(out)


def demand(needs: Iterable[CaseNeed], now: datetime, horizon_days: int) -> dict[str, int]:
    """Scheduled quantity per item over the horizon (cases starting in [now, now + N days))."""
    totals: dict[str, int] = defaultdict(int)
    end = now + horizon_days * DAY
    for need in needs:
        if now <= need.start < end:
            totals[need.item_id] += need.quantity
    return dict(sorted(totals.items()))


# -- risk --------------------------------------------------------------------------------------
def poisson_cdf(k: int, mu: float) -> float:
    """P(X <= k) for X ~ Poisson(mu), summed term by term (exact up to float rounding)."""
    if k < 0:
        return 0.0
    if mu <= 0:
        return 1.0
    term = total = math.exp(-mu)
    for i in range(1, k + 1):
        term *= mu / i
        total += term
    return min(1.0, total)


def stockout_probability(on_hand: int, scheduled: int, daily_rate: float, days: int) -> float:
    """P(on_hand - scheduled - Poisson(daily_rate x days) < 0), rounded to 6 places."""
    headroom = on_hand - scheduled
    if headroom < 0:
        return 1.0
    return round(1.0 - poisson_cdf(headroom, daily_rate * days), 6)


def delivery_day(lead_time_days: float) -> int:
    return max(1, math.ceil(lead_time_days))


class Position(_Frozen):
    """An item at a location as the review sees it: the shelf, its rate, its schedule."""

    level: ParLevel
    daily_rate: float  # units a day used outside scheduled cases
    scheduled: tuple[int, ...]  # per day 1..horizon (all zero away from the OR core)

    def cumulative(self, day: int) -> int:
        return sum(self.scheduled[: max(0, day)])

    def risk(self, day: int) -> float:
        return stockout_probability(self.level.on_hand, self.cumulative(day), self.daily_rate, day)

    def expected_position(self, day: int) -> float:
        lv = self.level
        return lv.on_hand + lv.on_order - self.cumulative(day) - self.daily_rate * day


def risk_profile(position: Position) -> tuple[float, ...]:
    """risk(d) for each day of the horizon."""
    return tuple(position.risk(d) for d in range(1, len(position.scheduled) + 1))


def stockout_risk(position: Position) -> float:
    """The item's score: risk at its delivery day (before an order placed now arrives)."""
    return position.risk(delivery_day(position.level.lead_time_days))


def reorder_quantity(position: Position) -> int:
    """Order up to par when the expected position at the delivery day is below the
    reorder point; 0 otherwise, and always for bill-only items."""
    lv = position.level
    if lv.item_class == "bill_only":
        return 0
    projected = position.expected_position(delivery_day(lv.lead_time_days))
    if projected >= lv.reorder_point:
        return 0
    return max(1, math.ceil(round(lv.par_level - projected, 6)))


def days_on_hand(position: Position) -> float | None:
    """On hand over the expected daily demand (scheduled over the horizon, plus the rate);
    None when nothing is expected to be used."""
    days = len(position.scheduled) or 1
    daily = position.cumulative(days) / days + position.daily_rate
    if daily <= 0:
        return None
    return round(position.level.on_hand / daily, 1)


# -- the plan ------------------------------------------------------------------------------------
class ItemAssessment(_Frozen):
    location_id: str
    item_id: str
    item_class: ItemClass
    on_hand: int
    demand: int  # scheduled over the horizon
    daily_rate: float
    stockout_risk: float
    days_on_hand: float | None
    reorder: int


class CaseAtRisk(_Frozen):
    case_id: str
    item_id: str
    location_id: str
    case_start: datetime
    stockout_probability: float
    action: CaseAction


class Line(_Frozen):
    item_id: str
    quantity: int
    amount: Decimal


class Order(_Frozen):
    """A group of lines for one location, supplier and item class, and what the policy
    table made of it."""

    reference: str  # the ERP de-duplicates on it: one order per facility, day and group
    location_id: str
    supplier_id: str
    item_class: ItemClass
    lines: tuple[Line, ...]
    amount: Decimal
    action: Action
    approver: str
    rule: str  # the table row that decided
    needed_by: datetime
    expedite: bool
    cases: tuple[str, ...] = ()  # the booked cases at risk it covers


class Plan(_Frozen):
    items: tuple[ItemAssessment, ...]
    at_risk: tuple[CaseAtRisk, ...]
    orders: tuple[Order, ...]

    def with_action(self, *actions: Action) -> tuple[Order, ...]:
        return tuple(o for o in self.orders if o.action in actions)


def cases_at_risk(
    position: Position,
    needs: Iterable[CaseNeed],
    policy: Policy,
    now: datetime,
) -> list[CaseAtRisk]:
    """The booked cases needing the item whose shelf is likely empty by their day."""
    lv = position.level
    if lv.item_class == "bill_only":
        return []
    out = []
    standard = now + timedelta(days=lv.lead_time_days)
    for need in sorted(needs, key=lambda n: (n.start, n.case_id)):
        if need.item_id != lv.item_id or need.start < now:
            continue
        k = day_index(now, need.start)
        if k > len(position.scheduled):
            continue
        p = position.risk(k)
        if p < policy.case_risk_threshold:
            continue
        needed_by = need.start - timedelta(hours=policy.case_prep_hours)
        action: CaseAction = (
            "vendor"
            if lv.item_class == "consignment"
            else ("expedite" if standard > needed_by else "standard")
        )
        out.append(
            CaseAtRisk(
                case_id=need.case_id,
                item_id=lv.item_id,
                location_id=lv.location_id,
                case_start=need.start,
                stockout_probability=p,
                action=action,
            )
        )
    return out


def decide_order(policy: Policy, item_class: ItemClass, amount: Decimal) -> tuple[str, Action, str]:
    """The approval table's row, action and approver for a group of lines."""
    row, out = policy.approval.decide({"item_class": item_class, "amount": float(amount)})
    return row, out["action"], out["approver"]


def plan(
    facility_id: str,
    positions: Sequence[Position],
    needs_by_location: Mapping[str, Sequence[CaseNeed]],
    policy: Policy,
    now: datetime,
    run_date: str,
) -> Plan:
    """What to reorder (grouped by location, supplier and class, each group decided by the
    policy table), which booked cases are at risk, and every item's numbers."""
    items, at_risk = [], []
    groups: dict[tuple[str, str, ItemClass], list[tuple[ParLevel, int, list[CaseAtRisk]]]] = (
        defaultdict(list)
    )
    for pos in positions:
        lv = pos.level
        needs = needs_by_location.get(lv.location_id, ())
        risky = cases_at_risk(pos, needs, policy, now)
        qty = reorder_quantity(pos)
        if risky and qty == 0 and lv.item_class != "bill_only":
            # short by a case's day that lies past the delivery day: order for it now
            last = max(day_index(now, c.case_start) for c in risky)
            qty = max(1, math.ceil(round(lv.par_level - pos.expected_position(last), 6)))
        at_risk += risky
        items.append(
            ItemAssessment(
                location_id=lv.location_id,
                item_id=lv.item_id,
                item_class=lv.item_class,
                on_hand=lv.on_hand,
                demand=pos.cumulative(len(pos.scheduled)),
                daily_rate=round(pos.daily_rate, 4),
                stockout_risk=stockout_risk(pos),
                days_on_hand=days_on_hand(pos),
                reorder=qty,
            )
        )
        if qty > 0:
            groups[(lv.location_id, lv.supplier_id, lv.item_class)].append((lv, qty, risky))
    orders = []
    for (location_id, supplier_id, klass), rows in sorted(groups.items()):
        lines = tuple(
            Line(item_id=lv.item_id, quantity=q, amount=lv.unit_price * q) for lv, q, _ in rows
        )
        amount = sum((line.amount for line in lines), Decimal(0))
        rule, action, approver = decide_order(policy, klass, amount)
        risky_cases = [c for _, _, rs in rows for c in rs]
        lead = max(lv.lead_time_days for lv, _, _ in rows)
        needed_by = min(
            [now + timedelta(days=lead)]
            + [c.case_start - timedelta(hours=policy.case_prep_hours) for c in risky_cases]
        )
        orders.append(
            Order(
                reference=f"replenish:{facility_id}:{run_date}:{location_id}:{supplier_id}",
                location_id=location_id,
                supplier_id=supplier_id,
                item_class=klass,
                lines=lines,
                amount=amount,
                action=action,
                approver=approver,
                rule=rule,
                needed_by=needed_by,
                expedite=any(c.action == "expedite" for c in risky_cases),
                cases=tuple(dict.fromkeys(c.case_id for c in risky_cases)),
            )
        )
    return Plan(items=tuple(items), at_risk=tuple(at_risk), orders=tuple(orders))


def order_reason(order: Order) -> str:
    lines = ", ".join(f"{x.quantity} x {x.item_id}" for x in order.lines)
    urgent = f"; expedite for {', '.join(order.cases)}" if order.expedite else ""
    return f"{order.location_id} from {order.supplier_id}: {lines} (${order.amount:,.2f}){urgent}"


# -- the outcome ---------------------------------------------------------------------------------
Approval = Literal["APPROVED", "REJECTED", "EXPIRED"]


def outcome_of(
    *, created: int, expedited: int, vendor_notices: int, approval: Approval | None
) -> str:
    """APPROVAL_REJECTED or APPROVAL_EXPIRED when an approval did not come; else
    REORDERED_WITH_EXPEDITE, REORDERED, VENDOR_NOTIFIED or NO_ACTION by what was done."""
    if approval == "REJECTED":
        return "APPROVAL_REJECTED"
    if approval == "EXPIRED":
        return "APPROVAL_EXPIRED"
    if created and expedited:
        return "REORDERED_WITH_EXPEDITE"
    if created:
        return "REORDERED"
    if vendor_notices:
        return "VENDOR_NOTIFIED"
    return "NO_ACTION"


def superseded(later_starts: Iterable[datetime], as_of: datetime) -> bool:
    """Trailing debounce: a later schedule change at the facility runs its own review."""
    return any(at > as_of for at in later_starts)
