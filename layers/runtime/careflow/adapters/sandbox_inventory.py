"""The sandbox ERP's inventory (issue 11): storage locations, par levels, usage history and
expedites for supply replenishment, seeded for fac-north and fac-south.

:class:`InventoryBook` holds the state; the in-process :class:`~careflow.adapters.sandbox.
Sandbox` (through :class:`InventorySandbox`) and the HTTP ERP sandbox server each keep one,
so both ERP connectors see the same hospital. A demo or a test changes a shelf with
:meth:`InventoryBook.set_stock` and :meth:`InventoryBook.set_usage`.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from careflow.canonical.inventory import (
    Expedite,
    ItemClass,
    ParLevel,
    StorageLocation,
    UsageHistory,
)
from careflow.ports import ConnectorError

if TYPE_CHECKING:
    from collections.abc import Sequence

# An expedited requisition is delivered overnight (the supplier's next-day service).
EXPEDITE_DELIVERY = timedelta(days=1)

# item: (description, class, primary supplier, lead time in days, unit price)
INVENTORY_ITEMS: dict[str, tuple[str, ItemClass, str, float, str]] = {
    "IMP-TKA-FEM-5": ("Knee femoral component, size 5", "stock", "sup-orthoco", 3, "2450.00"),
    "IMP-TKA-TIB-4": ("Knee tibial baseplate, size 4", "stock", "sup-orthoco", 3, "2450.00"),
    "IMP-THA-STEM-12": ("Hip femoral stem, size 12", "stock", "sup-jointworks", 5, "1980.00"),
    "IMP-SPN-SCR-6545": (
        "Pedicle screw 6.5 x 45 mm",
        "consignment",
        "sup-spinetech",
        1,
        "325.00",
    ),
    "IMP-ACL-SCR-9": ("ACL interference screw 9 x 25 mm", "bill_only", "sup-arthrex", 0, "410.00"),
    "SUP-SUT-VIC-0": (
        "Braided absorbable suture 0, box of 36",
        "stock",
        "sup-medline",
        2,
        "142.00",
    ),
    "SUP-SUT-NYL-30": ("Nylon suture 3-0, box of 36", "stock", "sup-medline", 2, "88.00"),
    "SUP-DRAPE-ORTHO": ("Orthopedic drape pack", "stock", "sup-medline", 2, "38.50"),
    "SUP-CEMENT-40": ("Bone cement, 40 g", "stock", "sup-orthoco", 2, "92.00"),
}

# facility: ((location id, name, supplies scheduled cases), ...)
LOCATIONS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "fac-north": (
        ("fac-north:central-supply", "Central supply", False),
        ("fac-north:or-core", "OR sterile core", True),
    ),
    "fac-south": (
        ("fac-south:central-supply", "Central supply", False),
        ("fac-south:or-core", "OR sterile core", True),
    ),
}

# location: item: (on hand, par level, reorder point, units used a day outside cases)
SHELVES: dict[str, dict[str, tuple[int, int, int, float]]] = {
    "fac-north:central-supply": {
        "SUP-SUT-VIC-0": (14, 40, 15, 2.0),  # below its reorder point: reordered daily
        "SUP-SUT-NYL-30": (30, 40, 12, 1.5),
        "SUP-DRAPE-ORTHO": (60, 60, 20, 1.0),
    },
    "fac-north:or-core": {
        "IMP-TKA-FEM-5": (4, 6, 3, 0.0),
        "IMP-TKA-TIB-4": (4, 6, 3, 0.0),
        "IMP-THA-STEM-12": (3, 4, 2, 0.0),
        "IMP-SPN-SCR-6545": (16, 24, 8, 0.2),
        "IMP-ACL-SCR-9": (0, 0, 0, 0.0),
        "SUP-DRAPE-ORTHO": (20, 24, 8, 0.3),
        "SUP-CEMENT-40": (12, 20, 6, 0.2),
    },
    "fac-south:central-supply": {
        "SUP-SUT-VIC-0": (30, 36, 12, 1.0),
        "SUP-SUT-NYL-30": (24, 30, 10, 0.8),
        "SUP-DRAPE-ORTHO": (40, 40, 15, 0.5),
    },
    "fac-south:or-core": {
        "IMP-TKA-FEM-5": (3, 4, 2, 0.0),
        "IMP-TKA-TIB-4": (3, 4, 2, 0.0),
        "IMP-THA-STEM-12": (2, 3, 1, 0.0),
        "IMP-SPN-SCR-6545": (12, 16, 6, 0.1),
        "IMP-ACL-SCR-9": (0, 0, 0, 0.0),
        "SUP-DRAPE-ORTHO": (14, 16, 5, 0.2),
        "SUP-CEMENT-40": (10, 12, 4, 0.1),
    },
}


class InventoryBook:
    """The ERP's shelves: [on hand, on order, par, reorder point, daily use] per location
    and item; and the expedites it granted (requisition id -> new delivery)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.shelves: dict[str, dict[str, list[Any]]] = {
            loc: {item: [oh, 0, par, rop, use] for item, (oh, par, rop, use) in items.items()}
            for loc, items in SHELVES.items()
        }
        self.expedites: dict[str, datetime] = {}

    # -- reads ---------------------------------------------------------------------------------
    @staticmethod
    def location_rows(facility_id: str) -> tuple[tuple[str, str, bool], ...]:
        return LOCATIONS.get(facility_id, ())

    def locations(self, facility_id: str) -> list[StorageLocation]:
        return [
            StorageLocation(facility_id=facility_id, location_id=loc, name=name, supplies_cases=s)
            for loc, name, s in self.location_rows(facility_id)
        ]

    def _location(self, facility_id: str, location_id: str) -> dict[str, list[Any]]:
        if location_id not in {loc for loc, _, _ in self.location_rows(facility_id)}:
            raise ConnectorError(f"location {location_id} is not one of {facility_id}'s")
        return self.shelves[location_id]

    def par_levels(self, facility_id: str, location_id: str) -> list[ParLevel]:
        with self.lock:
            shelf = self._location(facility_id, location_id)
            rows = [(item, list(v)) for item, v in shelf.items()]
        out = []
        for item, (on_hand, on_order, par, rop, _) in rows:
            description, klass, supplier, lead, price = INVENTORY_ITEMS[item]
            out.append(
                ParLevel(
                    facility_id=facility_id,
                    location_id=location_id,
                    item_id=item,
                    description=description,
                    item_class=klass,
                    on_hand=on_hand,
                    on_order=on_order,
                    par_level=par,
                    reorder_point=rop,
                    supplier_id=supplier,
                    lead_time_days=lead,
                    unit_price=Decimal(price),
                )
            )
        return out

    def usage_history(
        self, facility_id: str, item_ids: Sequence[str], days: int
    ) -> list[UsageHistory]:
        if days < 1:
            raise ConnectorError("days must be 1 or more")
        wanted = set(item_ids)
        out = []
        with self.lock:
            for loc, _, _ in self.location_rows(facility_id):
                for item, row in self.shelves[loc].items():
                    if item in wanted:
                        out.append(
                            UsageHistory(
                                facility_id=facility_id,
                                location_id=loc,
                                item_id=item,
                                days=days,
                                quantity=round(row[4] * days),
                            )
                        )
        return out

    def expedite(self, requisition_id: str, expected: datetime, now: datetime) -> datetime:
        """The requisition's delivery once expedited: overnight, never later than it was."""
        with self.lock:
            if requisition_id not in self.expedites:
                self.expedites[requisition_id] = min(expected, now + EXPEDITE_DELIVERY)
            return self.expedites[requisition_id]

    # -- demo and test controls ----------------------------------------------------------------
    def set_stock(
        self,
        location_id: str,
        item_id: str,
        *,
        on_hand: int | None = None,
        on_order: int | None = None,
        par_level: int | None = None,
        reorder_point: int | None = None,
        daily_use: float | None = None,
    ) -> None:
        with self.lock:
            row = self.shelves[location_id].setdefault(item_id, [0, 0, 0, 0, 0.0])
            for i, value in enumerate((on_hand, on_order, par_level, reorder_point, daily_use)):
                if value is not None:
                    row[i] = value

    def set_usage(self, location_id: str, item_id: str, daily_use: float) -> None:
        self.set_stock(location_id, item_id, daily_use=daily_use)


class InventorySandbox:
    """The in-process sandbox's inventory methods (a base of ``Sandbox``): its state is an
    :class:`InventoryBook` made on first use, so a new ``Sandbox`` starts from the seed."""

    requisitions: dict[str, Any]
    lock: Any

    def _fault(self, port: str, op: str) -> None:  # Sandbox's
        raise NotImplementedError

    def inventory_book(self) -> InventoryBook:
        book: InventoryBook | None = self.__dict__.get("_inventory_book")
        if book is None:
            book = self.__dict__.setdefault("_inventory_book", InventoryBook())
        return book

    def locations(self, facility_id: str) -> Sequence[StorageLocation]:
        self._fault("erp", "locations")
        return self.inventory_book().locations(facility_id)

    def par_levels(self, facility_id: str, location_id: str) -> Sequence[ParLevel]:
        self._fault("erp", "par_levels")
        return self.inventory_book().par_levels(facility_id, location_id)

    def usage_history(
        self, facility_id: str, item_ids: Sequence[str], days: int
    ) -> Sequence[UsageHistory]:
        self._fault("erp", "usage_history")
        return self.inventory_book().usage_history(facility_id, item_ids, days)

    def expedite(self, requisition_id: str, reason: str) -> Expedite:
        self._fault("erp", "expedite")
        from careflow import clock

        with self.lock:
            found = next(
                (
                    (ref, r)
                    for ref, r in self.requisitions.items()
                    if r.requisition_id == requisition_id
                ),
                None,
            )
            if found is None:
                raise ConnectorError(f"requisition {requisition_id} is unknown")
            ref, req = found
            when = self.inventory_book().expedite(
                requisition_id, req.expected_delivery, clock.now()
            )
            self.requisitions[ref] = req.model_copy(update={"expected_delivery": when})
        return Expedite(
            requisition_id=requisition_id,
            status=req.status,
            expedited=True,
            expected_delivery=when,
        )
