"""Inventory facts the ERP port exchanges for replenishment: storage locations, par levels
(on hand, par and reorder point per item and location, with the item's class and primary
supplier), usage history and expedites."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from careflow.canonical.datatypes import Model

# stock: the hospital owns and orders it; consignment: the vendor owns it on the shelf and
# replenishes it (careflow notifies); bill-only: brought by the vendor, received at use.
ItemClass = Literal["stock", "consignment", "bill_only"]
ITEM_CLASSES: tuple[ItemClass, ...] = ("stock", "consignment", "bill_only")


class StorageLocation(Model):
    facility_id: str
    location_id: str
    name: str
    supplies_cases: bool = False  # the OR core: scheduled cases' preference cards draw here


class ParLevel(Model):
    """One item at one location: what is there, what should be, when to reorder."""

    facility_id: str
    location_id: str
    item_id: str
    description: str = ""
    item_class: ItemClass
    on_hand: int = Field(ge=0)
    on_order: int = Field(default=0, ge=0)  # on open requisitions, not yet received
    par_level: int = Field(ge=0)
    reorder_point: int = Field(ge=0)
    supplier_id: str
    lead_time_days: float = Field(ge=0)
    unit_price: Decimal = Field(ge=0)


class UsageHistory(Model):
    """Units issued at a location over the last ``days`` days outside scheduled cases
    (floor and add-on use: a scheduled case's use is counted from its preference card)."""

    facility_id: str
    location_id: str
    item_id: str
    days: int = Field(gt=0)
    quantity: int = Field(ge=0)

    @property
    def daily_average(self) -> float:
        return self.quantity / self.days


class Expedite(Model):
    """The ERP's answer to an expedite: the requisition with its new delivery estimate."""

    requisition_id: str
    status: str
    expedited: bool
    expected_delivery: datetime
