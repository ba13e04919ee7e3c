"""Invoice exception handling: the three-way match (PO, goods receipt, invoice) with the
policy's tolerances, duplicates, the wait for a receipt, and exception aging.

Pure functions over canonical records; nothing here does I/O. Money is Decimal throughout.

The price tolerance: DOMAIN.md's "price ±2 % or $50" is read as *the larger allowance*: a
line is within tolerance when its overcharge (invoiced unit price minus the expected unit
price, times the invoiced quantity) is at most ``max(2 % of the expected line amount,
$50)``. A small line may drift by up to $50, a large one by up to 2 %. Paying less than
expected is never an exception. The expected unit price is the supplier's contract price
when it has one for the item, else the PO's price.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from careflow.canonical.payables import ContractPrice, GoodsReceipt, Invoice, PurchaseOrder

POLICY = "invoice-exceptions"
CENT = Decimal("0.01")

# Exception causes (the ERP's MatchException values, plus the contract price check).
PRICE_VARIANCE = "price_variance"
CONTRACT_PRICE_VARIANCE = "contract_price_variance"
QUANTITY_VARIANCE = "quantity_variance"
NO_RECEIPT = "no_receipt"
MISSING_PO = "missing_po"
DUPLICATE_INVOICE = "duplicate_invoice"
CAUSES = (
    PRICE_VARIANCE,
    CONTRACT_PRICE_VARIANCE,
    QUANTITY_VARIANCE,
    NO_RECEIPT,
    MISSING_PO,
    DUPLICATE_INVOICE,
)

# What a match finds.
MATCHED = "MATCHED"
EXCEPTION = "EXCEPTION"
DUPLICATE = "DUPLICATE"
AWAITING_RECEIPT = "AWAITING_RECEIPT"
NO_RECEIPT_RESULT = "NO_RECEIPT"

# DOMAIN.md's aging buckets, in whole days from the invoice date: (label, first, last).
BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-7", 0, 7),
    ("8-30", 8, 30),
    ("31-60", 31, 60),
    ("60+", 61, None),
)
# Invoices the ERP no longer counts (a duplicate of one of them is not a duplicate).
VOID_STATUSES = frozenset({"REJECTED", "RETURNED"})


class Policy(BaseModel):
    """What one invoice is matched by, resolved when it is received and pinned."""

    model_config = ConfigDict(frozen=True)

    policy_version: str
    price_tolerance_percent: Decimal
    price_tolerance_usd: Decimal
    exact_quantity: dict[str, bool]  # item category -> invoiced must equal received
    queues: dict[str, str]  # cause -> AP queue
    receipt_poll_s: int
    receipt_wait_s: int  # after AP received the invoice (the ERP's received_at): NO_RECEIPT
    exception_task_s: int
    escalation_chain: tuple[str, ...]
    exception_decisions: tuple[str, ...]
    time_zone: str
    # An accepted variance above this amount (absolute, USD) is approved by a second person
    # from this chain before the invoice is paid; None: the acceptor's word suffices.
    variance_approval_usd: Decimal | None = None
    variance_approval_chain: tuple[str, ...] = ()


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def invoice_policy(snapshot: Any, *, time_zone: str) -> Policy:
    exact = {
        category: bool(
            snapshot.table("quantity_match").decide({"category": category}).outputs["exact"]
        )
        for category in ("implant", "supply")
    }
    queues = {
        cause: str(snapshot.table("exception_queue").decide({"cause": cause}).outputs["queue"])
        for cause in CAUSES
    }
    return Policy(
        policy_version=snapshot.version,
        price_tolerance_percent=_decimal(snapshot.value("price_tolerance_percent")),
        price_tolerance_usd=_decimal(snapshot.value("price_tolerance_usd")),
        exact_quantity=exact,
        queues=queues,
        receipt_poll_s=int(snapshot.value("receipt_poll_seconds")),
        receipt_wait_s=int(snapshot.value("receipt_wait_days")) * 86400,
        exception_task_s=int(snapshot.value("exception_task_seconds")),
        escalation_chain=tuple(snapshot.value("escalation_chain")),
        exception_decisions=tuple(snapshot.value("exception_decisions")),
        time_zone=time_zone,
        variance_approval_usd=_decimal(snapshot.value("variance_approval_usd")),
        variance_approval_chain=tuple(snapshot.value("variance_approval_chain")),
    )


def needs_second_approval(variance: Decimal, policy: Policy) -> bool:
    """Whether accepting ``variance`` needs a second person: its absolute amount is above
    the policy's threshold (at the threshold the acceptor's approval suffices)."""
    limit = policy.variance_approval_usd
    return limit is not None and abs(variance) > limit


def allowance(expected_amount: Decimal, percent: Decimal, usd: Decimal) -> Decimal:
    """The larger of ``percent`` of the expected line amount and ``usd`` (to the cent)."""
    share = (expected_amount * percent / Decimal(100)).quantize(CENT, rounding=ROUND_HALF_UP)
    return max(share, usd)


class LineFinding(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_number: int
    cause: str
    variance: Decimal  # dollars at issue on the line
    reason: str


class Match(BaseModel):
    model_config = ConfigDict(frozen=True)

    findings: tuple[LineFinding, ...]

    @property
    def causes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.cause for f in self.findings))

    @property
    def variance(self) -> Decimal:
        return sum((f.variance for f in self.findings), Decimal(0))


def received_by_line(receipts: Iterable[GoodsReceipt]) -> dict[int, int]:
    found: dict[int, int] = {}
    for receipt in receipts:
        for line in receipt.lines:
            found[line.po_line_number] = found.get(line.po_line_number, 0) + line.quantity
    return found


def three_way_match(
    invoice: Invoice,
    po: PurchaseOrder,
    receipts: Sequence[GoodsReceipt],
    contracts: Mapping[str, ContractPrice],
    policy: Policy,
) -> Match:
    """Each invoice line against its PO line (price: the contract's when there is one) and
    the quantity received on it (implants exactly, others at most what was received)."""
    po_lines = {line.line_number: line for line in po.lines}
    received = received_by_line(receipts)
    findings: list[LineFinding] = []
    for line in invoice.lines:
        po_line = po_lines.get(line.po_line_number or 0)
        if po_line is None:
            findings.append(
                LineFinding(
                    line_number=line.line_number,
                    cause=QUANTITY_VARIANCE,
                    variance=line.amount,
                    reason=f"line {line.line_number} ({line.item_id}) is not on {po.po_id}",
                )
            )
            continue
        contract = contracts.get(line.item_id)
        expected_unit = contract.unit_price if contract is not None else po_line.unit_price
        over = (line.unit_price - expected_unit) * line.quantity
        limit = allowance(
            expected_unit * line.quantity,
            policy.price_tolerance_percent,
            policy.price_tolerance_usd,
        )
        if over > limit:
            cause = CONTRACT_PRICE_VARIANCE if contract is not None else PRICE_VARIANCE
            against = f"contract {contract.contract_id}" if contract is not None else "the PO"
            findings.append(
                LineFinding(
                    line_number=line.line_number,
                    cause=cause,
                    variance=over,
                    reason=(
                        f"line {line.line_number} ({line.item_id}): {line.unit_price} a unit vs "
                        f"{expected_unit} ({against}), {over} over, tolerance {limit}"
                    ),
                )
            )
        got = received.get(po_line.line_number, 0)
        exact = policy.exact_quantity.get(po_line.category, False)
        off = line.quantity != got if exact else line.quantity > got
        if off:
            findings.append(
                LineFinding(
                    line_number=line.line_number,
                    cause=QUANTITY_VARIANCE,
                    variance=abs(line.quantity - got) * expected_unit,
                    reason=(
                        f"line {line.line_number} ({line.item_id}): {line.quantity} invoiced, "
                        f"{got} received" + (" (exact for implants)" if exact else "")
                    ),
                )
            )
    return Match(findings=tuple(findings))


def duplicate_of(invoice: Invoice, same_number: Iterable[Invoice]) -> str | None:
    """The earlier invoice this one repeats: same supplier, same supplier's number, same
    total, received before it (ties by id), and not rejected or returned. The first one
    received is the original, whichever careflow hears of first."""
    key = (invoice.received_at, invoice.invoice_id)
    earlier = [
        other
        for other in same_number
        if other.invoice_id != invoice.invoice_id
        and other.supplier_id == invoice.supplier_id
        and other.invoice_number == invoice.invoice_number
        and other.total == invoice.total
        and other.status not in VOID_STATUSES
        and (other.received_at, other.invoice_id) < key
    ]
    return min(earlier, key=lambda o: (o.received_at, o.invoice_id)).invoice_id if earlier else None


def age_days(invoice_date: date, today: date) -> int:
    return max(0, (today - invoice_date).days)


def bucket(days: int) -> str:
    for label, first, last in BUCKETS:
        if days >= first and (last is None or days <= last):
            return label
    return BUCKETS[0][0]


def receipt_deadline(invoice: Invoice, policy: Policy) -> datetime:
    """No goods receipt by then (from when AP received the invoice): NO_RECEIPT."""
    return invoice.received_at + timedelta(seconds=policy.receipt_wait_s)


def task_due_s(invoice_date: date, now: datetime, zone: ZoneInfo, policy: Policy) -> int:
    """An exception's task is due when the invoice enters its next aging bucket, at most
    the policy's ``exception_task_seconds`` and at least an hour from now (the kit's
    human-task loop gives every escalation level the same time)."""
    days = age_days(invoice_date, now.astimezone(zone).date())
    nxt = next((first for _, first, _ in BUCKETS if first > days), None)
    if nxt is None:
        return policy.exception_task_s
    boundary = datetime.combine(invoice_date + timedelta(days=nxt), time(0), tzinfo=zone)
    seconds = int((boundary - now).total_seconds())
    return max(3600, min(policy.exception_task_s, seconds))


def queue_for(causes: Sequence[str], policy: Policy) -> str:
    """The AP queue of the first cause (quantity and price on one invoice: the first found)."""
    return policy.queues.get(causes[0], "ap_general") if causes else "ap_general"


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))
