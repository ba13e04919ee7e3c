"""Accounts payable facts the ERP port exchanges (issue 11): supplier invoices, the purchase
orders and goods receipts they are matched against, contract prices, and what AP decides.

Amounts are :class:`~decimal.Decimal` in the invoice's currency, never floats. Identifiers
and amounts only: an invoice carries no PHI.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from careflow.canonical.datatypes import Model

# What AP may decide on an invoice exception, as the ERP records it.
ExceptionAction = Literal["ACCEPT_VARIANCE", "REQUEST_CREDIT_MEMO", "RETURN", "HOLD", "REJECT"]


class PurchaseOrderLine(Model):
    line_number: int = Field(ge=1)
    item_id: str
    quantity: int = Field(ge=1)
    unit_price: Decimal
    category: str = "supply"  # implant | supply (the item master's category)


class PurchaseOrder(Model):
    po_id: str
    supplier_id: str
    facility_id: str
    status: str
    lines: tuple[PurchaseOrderLine, ...]


class ReceiptLine(Model):
    po_line_number: int = Field(ge=1)
    item_id: str
    quantity: int = Field(ge=1)
    lot_number: str | None = None  # a device's lot (an implant received at use)
    serial_number: str | None = None


class GoodsReceipt(Model):
    receipt_id: str
    po_id: str
    received_at: datetime
    lines: tuple[ReceiptLine, ...]
    received_at_use: bool = False  # consignment / bill-only: received when it was used
    reference: str | None = None  # the poster's idempotency key, when careflow posted it


class GoodsReceiptRequest(Model):
    """Receive against a purchase order; ``reference`` makes it idempotent (a repeat
    returns the first receipt). ``received_at_use``: a bill-only or consignment item,
    received when it was used (the lines carry its lot and serial)."""

    reference: str = Field(min_length=1, max_length=128)
    po_id: str
    facility_id: str
    received_at: datetime
    received_at_use: bool = False
    lines: tuple[ReceiptLine, ...] = Field(min_length=1)


class InvoiceLine(Model):
    line_number: int = Field(ge=1)
    po_line_number: int | None
    item_id: str
    quantity: int = Field(ge=1)
    unit_price: Decimal
    amount: Decimal


class Invoice(Model):
    invoice_id: str
    supplier_id: str
    invoice_number: str  # the supplier's own number
    po_id: str | None
    status: str
    invoice_date: date
    received_at: datetime
    total: Decimal
    lines: tuple[InvoiceLine, ...]


class ContractPrice(Model):
    supplier_id: str
    item_id: str
    contract_id: str
    unit_price: Decimal


class InvoiceApproval(Model):
    """Approve for payment; ``reference`` (the careflow instance) makes it idempotent."""

    invoice_id: str
    reference: str
    approved_by: str
    reason: str = ""


class InvoiceExceptionAction(Model):
    """An exception's cause and the action AP took, recorded on the invoice in the ERP."""

    invoice_id: str
    reference: str
    action: ExceptionAction
    causes: tuple[str, ...]
    queue: str
    actor: str
    variance: Decimal = Decimal(0)
    reason: str = ""


class InvoiceStatusChange(Model):
    invoice_id: str
    status: str  # the invoice's status in the ERP afterwards
    action_id: str
