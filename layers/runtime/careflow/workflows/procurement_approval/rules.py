"""Procurement approval: which canonical item a facility's line names, which approval
levels a requisition needs, and how each approver's decision moves it.

Pure functions over small models; nothing here does I/O.

Normalization, in the crosswalk's order of trust:

1. **manufacturer + catalog number**: the manufacturer's own identity of the product, the
   same in every facility's system;
2. **GTIN**: unique too, but per packaging level (an each and a box of ten are two GTINs),
   and facility systems often hold a stale one;
3. **the facility's local code**, through the ERP's crosswalk of that facility's item
   master (kept by the item-master team, the likeliest to be out of date);
4. **UNSPSC**: a category, not an item: it normalizes a line only when exactly one item of
   the catalog is in that commodity class.

The most trusted identifier that names exactly one item decides. Two item-identifying
identifiers (1 to 3) naming different items is a conflict, and a line no identifier
resolves (or that several items fit) is not normalized: both go to the item-master team.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from careflow.canonical.procurement import CanonicalItem, ItemMatch

POLICY = "procurement-approval"
TRUST_ORDER = ("manufacturer_catalog", "gtin", "local_code", "unspsc")
IDENTIFYING = frozenset(TRUST_ORDER[:3])
CENT = Decimal("0.01")
# The approval levels the state machine has a task state for (each its own task, purpose
# ``approval-<level>``); a policy naming another is refused when the requisition arrives.
LEVELS = ("department_manager", "department_director", "cfo", "capital_committee")

# Approver decisions (the policy lists which a level offers).
APPROVE, REJECT, RETURN = "APPROVE", "REJECT", "RETURN"
# Item-master decisions: the crosswalk was fixed in the ERP (normalize again), or refused.
RESOLVED, REFUSE = "RESOLVED", "REFUSE"

# Outcomes
PO_CREATED = "PO_CREATED"
REJECTED = "REJECTED"
RETURNED_FOR_CHANGES = "RETURNED_FOR_CHANGES"
BUDGET_EXCEPTION = "BUDGET_EXCEPTION"
NOT_NORMALIZED = "NOT_NORMALIZED"
APPROVAL_EXPIRED = "APPROVAL_EXPIRED"
PO_FAILED = "PO_FAILED"
OUTCOMES = (
    PO_CREATED,
    REJECTED,
    RETURNED_FOR_CHANGES,
    BUDGET_EXCEPTION,
    NOT_NORMALIZED,
    APPROVAL_EXPIRED,
    PO_FAILED,
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Level(_Frozen):
    """One approval level as the policy defines it."""

    level: str
    chain: tuple[str, ...]  # the task's queue, then whom it escalates to
    due_seconds: int


class Policy(_Frozen):
    """What one requisition runs by, resolved when it arrives and pinned for its life."""

    policy_version: str
    capital_threshold: Decimal  # USD: a requisition above it is capital
    capital_item_classes: tuple[str, ...]
    capital_level: str
    bands: tuple[tuple[int | None, tuple[str, ...]], ...]  # (up to cents or None, levels)
    levels: dict[str, Level]
    approval_decisions: tuple[str, ...]
    item_master: Level
    item_master_decisions: tuple[str, ...]
    # A cost center short of funds: the budget office's task (None: the requisition ends
    # BUDGET_EXCEPTION at once, as under policies before 2026.12.2).
    budget_office: Level | None = None
    budget_decisions: tuple[str, ...] = ()


def procurement_policy(snapshot: Any) -> Policy:
    """The policy's values and tables, read once (bands: the approval_levels rows, in order,
    with the default above the last)."""
    table = snapshot.table("approval_levels").definition
    bands: list[tuple[int | None, tuple[str, ...]]] = []
    for row in table.rows:
        cond = row.when.get("amount_cents")
        upper = cond.get("lte") if isinstance(cond, dict) else None
        if not isinstance(upper, int):
            raise ValueError(f"policy approval_levels row {row.id}: amount_cents needs an lte")
        bands.append((upper, tuple(row.then["levels"])))
    if table.default is None:
        raise ValueError("policy approval_levels needs a default (above every band)")
    bands.append((None, tuple(table.default["levels"])))
    capital_level = str(snapshot.value("capital_review_level"))
    names = {lv for _, lvs in bands for lv in lvs} | {capital_level}
    unknown = names - set(LEVELS)
    if unknown:
        raise ValueError(f"policy names approval levels with no task state: {sorted(unknown)}")
    levels = {}
    for name in sorted(names):
        out = snapshot.table("approval_level").decide({"level": name}).outputs
        levels[name] = Level(
            level=name, chain=tuple(out["chain"]), due_seconds=int(out["due_seconds"])
        )
    return Policy(
        policy_version=snapshot.version,
        capital_threshold=Decimal(str(snapshot.value("capital_threshold"))),
        capital_item_classes=tuple(snapshot.value("capital_item_classes")),
        capital_level=capital_level,
        bands=tuple(bands),
        levels=levels,
        approval_decisions=tuple(snapshot.value("approval_decisions")),
        item_master=Level(
            level="item_master",
            chain=tuple(snapshot.value("item_master_chain")),
            due_seconds=int(snapshot.value("item_master_task_seconds")),
        ),
        item_master_decisions=tuple(snapshot.value("item_master_decisions")),
        budget_office=Level(
            level="budget_office",
            chain=tuple(snapshot.value("budget_exception_chain")),
            due_seconds=int(snapshot.value("budget_task_seconds")),
        ),
        budget_decisions=tuple(snapshot.value("budget_exception_decisions")),
    )


# -- normalization --------------------------------------------------------------------------
class Normalization(_Frozen):
    """One line: its canonical item and the identifier that decided, or why not."""

    item: CanonicalItem | None = None
    matched_on: str | None = None
    reason: str = ""


def normalize(matches: Iterable[ItemMatch]) -> Normalization:
    """The canonical item of one line from what the ERP's crosswalk found (module doc)."""
    by_kind: dict[str, dict[str, CanonicalItem]] = {k: {} for k in TRUST_ORDER}
    for m in matches:
        by_kind[m.matched_on][m.item.item_id] = m.item
    single = {k: next(iter(v.values())) for k, v in by_kind.items() if len(v) == 1}
    named = {single[k].item_id for k in IDENTIFYING if k in single}
    if len(named) > 1:
        found = ", ".join(f"{k} → {single[k].item_id}" for k in TRUST_ORDER[:3] if k in single)
        return Normalization(reason=f"identifiers name different items ({found})")
    for kind in TRUST_ORDER:
        if kind in single:
            return Normalization(item=single[kind], matched_on=kind)
    ambiguous = [k for k in TRUST_ORDER if len(by_kind[k]) > 1]
    if ambiguous:
        items = sorted(by_kind[ambiguous[0]])
        return Normalization(reason=f"{ambiguous[0]} fits {len(items)} items ({', '.join(items)})")
    return Normalization(reason="no identifier matches an item of the catalog")


# -- amounts and routing --------------------------------------------------------------------
def line_amount(unit_price: Decimal, quantity: int) -> Decimal:
    return (unit_price * quantity).quantize(CENT)


def cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def is_capital(amount: Decimal, item_classes: Iterable[str], policy: Policy) -> bool:
    """Above the capital threshold, or any line of a capital item class."""
    return amount > policy.capital_threshold or any(
        c in policy.capital_item_classes for c in item_classes
    )


def approval_levels(amount: Decimal, capital: bool, policy: Policy) -> tuple[str, ...]:
    """Each level whose band covers the amount signs, in order ("up to" is inclusive);
    capital adds the capital review last."""
    amount_cents = cents(amount)
    levels: tuple[str, ...] = ()
    for upper, names in policy.bands:
        if upper is None or amount_cents <= upper:
            levels = names
            break
    if capital and policy.capital_level not in levels:
        levels = (*levels, policy.capital_level)
    return levels


def next_level(levels: Sequence[str], approved: Sequence[str]) -> str | None:
    for level in levels:
        if level not in approved:
            return level
    return None


def after_decision(decision: str) -> str | None:
    """The outcome an approver's decision ends the requisition with (None: it goes on)."""
    if decision == APPROVE:
        return None
    if decision == REJECT:
        return REJECTED
    if decision == RETURN:
        return RETURNED_FOR_CHANGES
    raise ValueError(f"{decision!r} is not an approval decision")


def money(amount: Decimal) -> str:
    return f"${amount.quantize(CENT):,}"
