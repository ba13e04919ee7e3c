"""Procurement facts the ERP port exchanges for procurement approval: the canonical item a
facility's local code (or the manufacturer's catalog number, GTIN, UNSPSC) crosswalks to,
cost-center budgets and their reservations, purchase orders and their status.

Money is :class:`~decimal.Decimal` in the cost center's currency (USD), never a float.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from careflow.canonical.datatypes import Model

# How an identifier matched an item, in the crosswalk's order of trust (see
# careflow.workflows.procurement_approval.rules.normalize).
MatchedOn = Literal["manufacturer_catalog", "gtin", "local_code", "unspsc"]
ItemClass = Literal["implant", "supply", "equipment", "capital_equipment"]


class ItemIdentifiers(Model):
    """What a facility's requisition line says about its item: the facility's own item
    master code and whichever of the manufacturer's catalog number, GTIN and UNSPSC its
    system holds."""

    facility_id: str
    local_code: str | None = None
    manufacturer: str | None = None
    catalog_number: str | None = None
    gtin: str | None = None
    unspsc: str | None = None


class CanonicalItem(Model):
    """The hospital group's item: one id whatever each facility calls it."""

    item_id: str
    description: str
    manufacturer: str
    catalog_number: str
    gtin: str
    unspsc: str
    item_class: ItemClass
    unit_of_measure: str = "EA"
    supplier_id: str
    contract_price: Decimal = Field(ge=0)  # per unit of measure


class ItemMatch(Model):
    """One item the ERP's crosswalk found for one of the identifiers."""

    matched_on: MatchedOn
    item: CanonicalItem


class Budget(Model):
    cost_center_id: str
    facility_id: str
    fiscal_year: int
    budget: Decimal
    committed: Decimal  # reservations and open purchase orders
    spent: Decimal
    available: Decimal


class BudgetReservationRequest(Model):
    reference: str  # idempotency: the same reference reserves once
    cost_center_id: str
    facility_id: str
    amount: Decimal = Field(gt=0)
    requisition_id: str


class BudgetReservation(Model):
    reservation_id: str
    cost_center_id: str
    amount: Decimal
    status: Literal["RESERVED", "INSUFFICIENT_FUNDS", "RELEASED", "CONSUMED"]
    available: Decimal  # what the cost center has left after this answer


class PurchaseOrderLine(Model):
    item_id: str
    quantity: int = Field(gt=0)
    unit_price: Decimal = Field(ge=0)


class PurchaseOrderRequest(Model):
    reference: str  # idempotency: the same reference creates one purchase order
    facility_id: str
    supplier_id: str
    cost_center_id: str
    reservation_id: str | None = None
    lines: tuple[PurchaseOrderLine, ...] = Field(min_length=1)
    needed_by: datetime | None = None


class PurchaseOrderStatus(Model):
    po_id: str
    status: str  # OPEN | PARTIALLY_RECEIVED | RECEIVED | CLOSED | CANCELLED
    supplier_id: str
    facility_id: str
    total: Decimal
    ordered_at: datetime
    expected_delivery: datetime | None = None
