"""The in-process ERP sandbox's accounts payable (issue 11): suppliers' contract prices,
purchase orders, goods receipts and supplier invoices for fac-north and fac-south, and
what AP records on them. Mixed into :class:`careflow.adapters.sandbox.Sandbox`.

The seed (dated from the sandbox's ``seeded_at``) holds one invoice per case the demo
and the tests need: matched, price variance, an implant's quantity variance, a contract
price variance, no receipt, a receipt posted late, and a duplicate. ``add_invoice_case``
builds more; ``add_invoice`` adds only the supplier's invoice for a purchase order the ERP
already holds. A purchase order placed through the port (``create_purchase_order``, the
procurement side) is a payables purchase order too, so goods receipts post against it
(``post_goods_receipt``, idempotent on the reference) and invoices match it: one ERP.
Amounts are Decimal.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from careflow.ports import ConnectorError

if TYPE_CHECKING:
    from careflow.canonical.procurement import PurchaseOrderRequest, PurchaseOrderStatus

from careflow.canonical.payables import (
    ContractPrice,
    GoodsReceipt,
    GoodsReceiptRequest,
    Invoice,
    InvoiceApproval,
    InvoiceExceptionAction,
    InvoiceLine,
    InvoiceStatusChange,
    PurchaseOrder,
    PurchaseOrderLine,
    ReceiptLine,
)

# What AP's action leaves the invoice's status at (the ERP's InvoiceStatus values).
ACTION_STATUS = {
    "HOLD": "EXCEPTION",
    "ACCEPT_VARIANCE": "EXCEPTION",  # then approved for payment
    "REQUEST_CREDIT_MEMO": "EXCEPTION",  # held until the supplier's credit memo
    "RETURN": "REJECTED",  # sent back to the supplier
    "REJECT": "REJECTED",
}

# supplier -> item -> (contract id, unit price)
CONTRACT_PRICES: dict[str, dict[str, tuple[str, str]]] = {
    "sup-orthoco": {
        "IMP-TKA-FEM-5": ("GPO-ORTHO-2026", "2450.00"),
        "IMP-TKA-TIB-4": ("GPO-ORTHO-2026", "2450.00"),
    },
    "sup-jointworks": {"IMP-THA-CUP-52": ("LOCAL-JW-114", "1420.00")},
}


class Line(NamedTuple):
    """One line of a case: ordered at ``po_price``, ``received`` posted, and invoiced
    ``invoiced`` at ``invoice_price`` (the PO's quantity and price by default)."""

    item_id: str
    quantity: int
    po_price: str
    received: int | None = None
    invoiced: int | None = None
    invoice_price: str | None = None


class InvoiceCase(NamedTuple):
    invoice_id: str
    facility_id: str
    supplier_id: str
    invoice_number: str
    po_id: str
    lines: tuple[Line, ...]
    invoice_age_days: int = 2  # the invoice date, days before the seed
    receipt: bool = True  # a goods receipt is posted
    received_days_ago: int = 1  # when AP received the invoice


SEED: tuple[InvoiceCase, ...] = (
    # matched: two knee femoral components (the contract price) and bone cement
    InvoiceCase(
        "INV-N-1001",
        "fac-north",
        "sup-orthoco",
        "ORTHO-58812",
        "PO-N-2001",
        (Line("IMP-TKA-FEM-5", 2, "2450.00"), Line("SUP-CEMENT-40", 10, "92.00")),
    ),
    # price variance: drapes invoiced at 41.25 instead of 38.50 (82.50 over, tolerance 50)
    InvoiceCase(
        "INV-S-1002",
        "fac-south",
        "sup-medline",
        "ML-440917",
        "PO-S-2002",
        (Line("SUP-DRAPE-ORTHO", 30, "38.50", invoice_price="41.25"),),
        invoice_age_days=3,
    ),
    # quantity variance on an implant: three hip stems invoiced, two received, a week old
    InvoiceCase(
        "INV-S-1003",
        "fac-south",
        "sup-jointworks",
        "JW-20931",
        "PO-S-2003",
        (Line("IMP-THA-STEM-12", 3, "1980.00", received=2),),
        invoice_age_days=7,  # enters the 8-30 day bucket at midnight: escalates then
    ),
    # contract price variance: cups at the PO's 1450.00, contract 1420.00 (120.00 over,
    # tolerance 2 % of 5680.00 = 113.60)
    InvoiceCase(
        "INV-N-1004",
        "fac-north",
        "sup-jointworks",
        "JW-20977",
        "PO-N-2004",
        (Line("IMP-THA-CUP-52", 4, "1450.00"),),
    ),
    # no receipt ever posted (AP received the invoice 4 days ago)
    InvoiceCase(
        "INV-N-1005",
        "fac-north",
        "sup-orthoco",
        "ORTHO-58840",
        "PO-N-2005",
        (Line("SUP-CEMENT-40", 20, "92.00"),),
        invoice_age_days=5,
        receipt=False,
        received_days_ago=4,  # the 5-day wait for the receipt ends tomorrow
    ),
    # the receipt is posted late (the demo posts it): matched after the wait
    InvoiceCase(
        "INV-S-1006",
        "fac-south",
        "sup-orthoco",
        "ORTHO-58851",
        "PO-S-2006",
        (Line("IMP-TKA-TIB-4", 1, "2450.00"),),
        invoice_age_days=1,
        receipt=False,
        received_days_ago=0,
    ),
)
# A duplicate of INV-N-1001: the supplier sent the same invoice again, received today.
DUPLICATES: dict[str, str] = {"INV-N-1007": "INV-N-1001"}


@dataclass
class PayablesState:
    purchase_orders: dict[str, PurchaseOrder] = field(default_factory=dict)
    receipts: dict[str, list[GoodsReceipt]] = field(default_factory=dict)
    invoices: dict[str, Invoice] = field(default_factory=dict)
    contracts: dict[tuple[str, str], ContractPrice] = field(default_factory=dict)
    approvals: dict[str, InvoiceStatusChange] = field(default_factory=dict)  # by invoice
    actions: dict[tuple[str, str], InvoiceStatusChange] = field(default_factory=dict)
    recorded: list[InvoiceExceptionAction] = field(default_factory=list)
    receipt_refs: dict[str, GoodsReceipt] = field(default_factory=dict)  # by reference


def _category(item_id: str) -> str:
    return "implant" if item_id.startswith("IMP-") else "supply"


class PayablesSandbox:
    """ERP port methods for AP, on the sandbox's own lock and faults."""

    if TYPE_CHECKING:
        seeded_at: datetime
        lock: threading.RLock

        def _fault(self, port: str, op: str) -> None: ...

    @property
    def payables(self) -> PayablesState:
        state = self.__dict__.get("_payables")
        if state is None:
            state = self.__dict__["_payables"] = PayablesState()
            for (sup, item), (contract, price) in (
                ((s, i), v) for s, items in CONTRACT_PRICES.items() for i, v in items.items()
            ):
                state.contracts[(sup, item)] = ContractPrice(
                    supplier_id=sup, item_id=item, contract_id=contract, unit_price=Decimal(price)
                )
            for case in SEED:
                self.add_invoice_case(case, now=self.seeded_at)
            for dup_id, original_id in DUPLICATES.items():
                original = state.invoices[original_id]
                state.invoices[dup_id] = original.model_copy(
                    update={
                        "invoice_id": dup_id,
                        "status": "RECEIVED",
                        "received_at": self.seeded_at.replace(microsecond=0),
                    }
                )
        return state

    # -- demo and test controls --------------------------------------------------------------
    def add_invoice_case(self, case: InvoiceCase, *, now: datetime) -> Invoice:
        """A purchase order, its receipt (unless ``case.receipt`` is false) and the invoice."""
        state = self.payables
        today = now.date()
        po_lines = tuple(
            PurchaseOrderLine(
                line_number=n,
                item_id=x.item_id,
                quantity=x.quantity,
                unit_price=Decimal(x.po_price),
                category=_category(x.item_id),
            )
            for n, x in enumerate(case.lines, start=1)
        )
        inv_lines = []
        for n, x in enumerate(case.lines, start=1):
            qty = x.invoiced if x.invoiced is not None else x.quantity
            price = Decimal(x.invoice_price or x.po_price)
            inv_lines.append(
                InvoiceLine(
                    line_number=n,
                    po_line_number=n,
                    item_id=x.item_id,
                    quantity=qty,
                    unit_price=price,
                    amount=price * qty,
                )
            )
        invoice = Invoice(
            invoice_id=case.invoice_id,
            supplier_id=case.supplier_id,
            invoice_number=case.invoice_number,
            po_id=case.po_id,
            status="RECEIVED",
            invoice_date=today - timedelta(days=case.invoice_age_days),
            received_at=(now - timedelta(days=case.received_days_ago)).replace(microsecond=0),
            total=sum((x.amount for x in inv_lines), Decimal(0)),
            lines=tuple(inv_lines),
        )
        with self.lock:
            state.purchase_orders[case.po_id] = PurchaseOrder(
                po_id=case.po_id,
                supplier_id=case.supplier_id,
                facility_id=case.facility_id,
                status="RECEIVED" if case.receipt else "OPEN",
                lines=po_lines,
            )
            state.receipts[case.po_id] = []
            if case.receipt:
                self.post_receipt(
                    case.po_id,
                    now - timedelta(days=case.invoice_age_days + 1),
                    {
                        n: x.received if x.received is not None else x.quantity
                        for n, x in enumerate(case.lines, start=1)
                    },
                )
            state.invoices[case.invoice_id] = invoice
        return invoice

    def add_invoice(
        self,
        invoice_id: str,
        po_id: str,
        invoice_number: str,
        *,
        now: datetime,
        invoice_age_days: int = 0,
        received_days_ago: int = 0,
    ) -> Invoice:
        """Only the supplier's invoice, for a purchase order the ERP already holds (its
        receipt is whoever posted it): one line per PO line, its quantity at its price."""
        state = self.payables
        with self.lock:
            po = state.purchase_orders[po_id]
            lines = tuple(
                InvoiceLine(
                    line_number=n,
                    po_line_number=x.line_number,
                    item_id=x.item_id,
                    quantity=x.quantity,
                    unit_price=x.unit_price,
                    amount=x.unit_price * x.quantity,
                )
                for n, x in enumerate(po.lines, start=1)
            )
            invoice = Invoice(
                invoice_id=invoice_id,
                supplier_id=po.supplier_id,
                invoice_number=invoice_number,
                po_id=po_id,
                status="RECEIVED",
                invoice_date=now.date() - timedelta(days=invoice_age_days),
                received_at=(now - timedelta(days=received_days_ago)).replace(microsecond=0),
                total=sum((x.amount for x in lines), Decimal(0)),
                lines=lines,
            )
            state.invoices[invoice_id] = invoice
        return invoice

    def book_purchase_order(self, request: PurchaseOrderRequest, po: PurchaseOrderStatus) -> None:
        """The payables side of a purchase order placed through the port: its lines, OPEN
        (once: a repeat of the reference is the same order)."""
        state = self.payables
        with self.lock:
            if po.po_id in state.purchase_orders:
                return
            state.purchase_orders[po.po_id] = PurchaseOrder(
                po_id=po.po_id,
                supplier_id=po.supplier_id,
                facility_id=po.facility_id,
                status="OPEN",
                lines=tuple(
                    PurchaseOrderLine(
                        line_number=n,
                        item_id=x.item_id,
                        quantity=x.quantity,
                        unit_price=x.unit_price,
                        category=_category(x.item_id),
                    )
                    for n, x in enumerate(request.lines, start=1)
                ),
            )
            state.receipts.setdefault(po.po_id, [])

    def _received_status(self, po_id: str) -> str | None:
        """RECEIVED / PARTIALLY_RECEIVED once receiving began (the procurement status)."""
        found = self.payables.purchase_orders.get(po_id)
        return found.status if found is not None and found.status != "OPEN" else None

    def add_duplicate_invoice(self, invoice_id: str, original_id: str, *, now: datetime) -> None:
        """The supplier sends ``original_id`` again: a new invoice with its number and total."""
        state = self.payables
        with self.lock:
            state.invoices[invoice_id] = state.invoices[original_id].model_copy(
                update={
                    "invoice_id": invoice_id,
                    "status": "RECEIVED",
                    "received_at": now.replace(microsecond=0),
                }
            )

    def post_receipt(
        self, po_id: str, at: datetime, quantities: dict[int, int] | None = None
    ) -> GoodsReceipt:
        """Receiving posts a goods receipt (every line's full quantity by default)."""
        state = self.payables
        with self.lock:
            po = state.purchase_orders[po_id]
            wanted = quantities or {line.line_number: line.quantity for line in po.lines}
            items = {line.line_number: line.item_id for line in po.lines}
            receipt = GoodsReceipt(
                receipt_id=f"GR-{po_id}-{len(state.receipts.get(po_id, [])) + 1}",
                po_id=po_id,
                received_at=at.replace(microsecond=0),
                lines=tuple(
                    ReceiptLine(po_line_number=n, item_id=items[n], quantity=q)
                    for n, q in sorted(wanted.items())
                    if q > 0
                ),
            )
            state.receipts.setdefault(po_id, []).append(receipt)
        return receipt

    def invoice_actions(self, invoice_id: str) -> list[InvoiceExceptionAction]:
        return [a for a in self.payables.recorded if a.invoice_id == invoice_id]

    # -- ErpPort (payables) ------------------------------------------------------------------
    def invoice(self, invoice_id: str) -> Invoice | None:
        self._fault("erp", "invoice")
        with self.lock:
            return self.payables.invoices.get(invoice_id)

    def supplier_invoices(self, supplier_id: str, invoice_number: str) -> Sequence[Invoice]:
        self._fault("erp", "supplier_invoices")
        with self.lock:
            return [
                i
                for _, i in sorted(self.payables.invoices.items())
                if i.supplier_id == supplier_id and i.invoice_number == invoice_number
            ]

    def purchase_order(self, po_id: str) -> PurchaseOrder | None:
        self._fault("erp", "purchase_order")
        with self.lock:
            return self.payables.purchase_orders.get(po_id)

    def receipts(self, po_id: str) -> Sequence[GoodsReceipt]:
        self._fault("erp", "receipts")
        with self.lock:
            return list(self.payables.receipts.get(po_id, []))

    def post_goods_receipt(self, request: GoodsReceiptRequest) -> GoodsReceipt:
        """Idempotent on the reference; refuses (ConnectorError) an unknown PO, another
        facility's, a line it lacks, another item or more than a line's open quantity."""
        self._fault("erp", "post_goods_receipt")
        state = self.payables
        with self.lock:
            done = state.receipt_refs.get(request.reference)
            if done is not None:
                return done
            po = state.purchase_orders.get(request.po_id)
            if po is None:
                raise ConnectorError(f"purchase order {request.po_id} is unknown")
            if po.facility_id != request.facility_id:
                raise ConnectorError(f"purchase order {request.po_id} is another facility's")
            if po.status in ("CLOSED", "CANCELLED"):
                raise ConnectorError(f"purchase order {request.po_id} is {po.status}")
            lines = {x.line_number: x for x in po.lines}
            received: dict[int, int] = {}
            for r in state.receipts.get(po.po_id, []):
                for x in r.lines:
                    received[x.po_line_number] = received.get(x.po_line_number, 0) + x.quantity
            before = dict(received)
            for x in request.lines:
                line = lines.get(x.po_line_number)
                if line is None or line.item_id != x.item_id:
                    raise ConnectorError(
                        f"{request.po_id} line {x.po_line_number} is not {x.item_id}"
                    )
                received[x.po_line_number] = received.get(x.po_line_number, 0) + x.quantity
                if received[x.po_line_number] > line.quantity:
                    raise ConnectorError(
                        f"{request.po_id} line {x.po_line_number}: beyond the open quantity "
                        f"({line.quantity - before.get(x.po_line_number, 0)})"
                    )
            receipt = GoodsReceipt(
                receipt_id=f"GR-{po.po_id}-{len(state.receipts.get(po.po_id, [])) + 1}",
                po_id=po.po_id,
                received_at=request.received_at.replace(microsecond=0),
                lines=request.lines,
                received_at_use=request.received_at_use,
                reference=request.reference,
            )
            state.receipts.setdefault(po.po_id, []).append(receipt)
            state.receipt_refs[request.reference] = receipt
            full = all(received.get(n, 0) >= x.quantity for n, x in lines.items())
            state.purchase_orders[po.po_id] = po.model_copy(
                update={"status": "RECEIVED" if full else "PARTIALLY_RECEIVED"}
            )
            return receipt

    def contract_price(self, supplier_id: str, item_id: str) -> ContractPrice | None:
        self._fault("erp", "contract_price")
        return self.payables.contracts.get((supplier_id, item_id))

    def approve_invoice(self, approval: InvoiceApproval) -> InvoiceStatusChange:
        self._fault("erp", "approve_invoice")
        state = self.payables
        with self.lock:
            done = state.approvals.get(approval.invoice_id)
            if done is not None:
                return done
            invoice = state.invoices[approval.invoice_id]
            state.invoices[approval.invoice_id] = invoice.model_copy(update={"status": "APPROVED"})
            change = InvoiceStatusChange(
                invoice_id=approval.invoice_id,
                status="APPROVED",
                action_id=f"APR-{len(state.approvals) + 1:05d}",
            )
            state.approvals[approval.invoice_id] = change
            return change

    def record_invoice_exception_action(
        self, action: InvoiceExceptionAction
    ) -> InvoiceStatusChange:
        self._fault("erp", "record_invoice_exception_action")
        state = self.payables
        key = (action.reference, action.action)
        with self.lock:
            done = state.actions.get(key)
            if done is not None:
                return done
            invoice = state.invoices[action.invoice_id]
            status = ACTION_STATUS[action.action]
            state.invoices[action.invoice_id] = invoice.model_copy(update={"status": status})
            change = InvoiceStatusChange(
                invoice_id=action.invoice_id,
                status=status,
                action_id=f"APX-{len(state.actions) + 1:05d}",
            )
            state.actions[key] = change
            state.recorded.append(action)
            return change
