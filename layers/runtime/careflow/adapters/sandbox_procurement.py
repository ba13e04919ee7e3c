"""The sandbox ERP's procurement side (issue 11): the hospital group's item master with each
facility's local codes, cost-center budgets with reservations, and purchase orders.

Two facilities code the same implants differently: North Valley's item master calls the
Stryker Triathlon femoral component ``NV-10442``, South Bay's ``SB-7781``; both crosswalk
to ``IMP-TKA-FEM-5`` by the manufacturer's catalog number ``5510-F-501``, its GTIN and
(as a category only) its UNSPSC. Catalog numbers, GTINs and UNSPSC codes here are
illustrative, GTIN check digits valid.

:class:`ProcurementBook` holds the state and the rules; the in-process sandbox
(:class:`ProcurementSandbox`, a base of :class:`careflow.adapters.sandbox.Sandbox`) and the
HTTP sandbox (``localcloud/sandboxes/erp_server.py``) both use it, so both ERP connectors
see the same hospital group.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from careflow.canonical.procurement import (
    Budget,
    BudgetReservation,
    BudgetReservationRequest,
    CanonicalItem,
    ItemIdentifiers,
    ItemMatch,
    PurchaseOrderRequest,
    PurchaseOrderStatus,
)
from careflow.ports import ConnectorError


def gtin14(body13: str) -> str:
    """The 13 digits with their GS1 check digit."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body13)))
    return body13 + str((10 - total % 10) % 10)


KNEE = "42295464"  # UNSPSC commodity: knee implant components (illustrative)
HIP = "42295465"  # hip implant components
DRAPES = "42131702"  # surgical drapes
TOURNIQUETS = "42295106"  # surgical tourniquets
VIDEO = "42294802"  # endoscopic video systems
LIGAMENT = "42295466"  # ligament fixation implants (illustrative)


def _item(item_id: str, desc: str, mfr: str, cat: str, gtin: str, unspsc: str, cls: Any,
          supplier: str, price: str) -> CanonicalItem:  # fmt: skip
    return CanonicalItem(
        item_id=item_id,
        description=desc,
        manufacturer=mfr,
        catalog_number=cat,
        gtin=gtin14(gtin),
        unspsc=unspsc,
        item_class=cls,
        supplier_id=supplier,
        contract_price=Decimal(price),
    )


# The hospital group's item master (contract prices per each).
CATALOG: dict[str, CanonicalItem] = {
    i.item_id: i
    for i in (
        _item("IMP-TKA-FEM-5", "Triathlon CR femoral component, size 5", "Stryker",
              "5510-F-501", "0761332701142", KNEE, "implant", "sup-orthoco", "2450.00"),
        _item("IMP-TKA-TIB-4", "Triathlon tibial baseplate, size 4", "Stryker",
              "5520-B-400", "0761332701159", KNEE, "implant", "sup-orthoco", "1640.00"),
        _item("IMP-THA-STEM-12", "Taperloc complete hip stem, size 12", "Zimmer Biomet",
              "00-7711-012-00", "0088030712345", HIP, "implant", "sup-jointworks", "1980.00"),
        _item("SUP-DRAPE-ORTHO", "Orthopedic drape pack", "Medline",
              "DYNJP2401", "1008019611223", DRAPES, "supply", "sup-medline", "38.50"),
        _item("EQP-TOURNIQUET", "A.T.S. 4000TS tourniquet system", "Zimmer Biomet",
              "60-4000-101-00", "0088030799010", TOURNIQUETS, "equipment", "sup-jointworks",
              "18900.00"),
        _item("CAP-ARTHRO-4K", "1688 AIM 4K arthroscopy video platform", "Stryker",
              "1688-010-000", "0761332709990", VIDEO, "capital_equipment", "sup-orthoco",
              "68500.00"),
        # a bill-only implant: bought after use, a purchase order raised per case
        _item("IMP-ACL-SCR-9", "BioComposite interference screw 9 x 25 mm", "Arthrex",
              "AR-1390B", "0088886700123", LIGAMENT, "implant", "sup-arthrex", "410.00"),
    )
}  # fmt: skip

# Each facility's item master: local code -> canonical item.
LOCAL_CODES: dict[str, dict[str, str]] = {
    "fac-north": {
        "NV-10442": "IMP-TKA-FEM-5",
        "NV-10443": "IMP-TKA-TIB-4",
        "NV-10518": "IMP-THA-STEM-12",
        "NV-20031": "SUP-DRAPE-ORTHO",
        "NV-30007": "EQP-TOURNIQUET",
        "NV-90012": "CAP-ARTHRO-4K",
    },
    "fac-south": {
        "SB-7781": "IMP-TKA-FEM-5",
        "SB-7782": "IMP-TKA-TIB-4",
        "SB-7790": "IMP-THA-STEM-12",
        "SB-1204": "SUP-DRAPE-ORTHO",
        "SB-9903": "CAP-ARTHRO-4K",
    },
}

# How the facilities' systems spell a manufacturer -> the item master's spelling.
MANUFACTURER_ALIASES = {
    "stryker": "Stryker",
    "stryker orthopaedics": "Stryker",
    "stryker endoscopy": "Stryker",
    "zimmer": "Zimmer Biomet",
    "zimmer biomet": "Zimmer Biomet",
    "zimmer inc": "Zimmer Biomet",
    "medline": "Medline",
    "medline industries": "Medline",
}

# cost center -> (facility, annual budget, spent so far this fiscal year)
COST_CENTERS: dict[str, tuple[str, str, str]] = {
    "cc-fac-north-ortho": ("fac-north", "480000.00", "391200.00"),
    "cc-fac-north-endo": ("fac-north", "60000.00", "57250.00"),
    "cc-fac-north-capital": ("fac-north", "2000000.00", "1650000.00"),
    "cc-fac-south-ortho": ("fac-south", "360000.00", "301500.00"),
    "cc-fac-south-capital": ("fac-south", "1500000.00", "1120000.00"),
}
PO_LEAD = timedelta(days=3)  # supplier acknowledgement to delivery, sandbox default


def _catalog_key(value: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", value.upper())


def _manufacturer(value: str) -> str:
    key = re.sub(r"[^a-z ]", "", value.lower()).strip()
    return MANUFACTURER_ALIASES.get(key, value.strip())


def _gtin(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return digits.zfill(14) if 8 <= len(digits) <= 14 else digits


@dataclass
class ProcurementBook:
    """The ERP's procurement records; every method is atomic under its lock."""

    catalog: dict[str, CanonicalItem] = field(default_factory=lambda: dict(CATALOG))
    local_codes: dict[str, dict[str, str]] = field(
        default_factory=lambda: {f: dict(c) for f, c in LOCAL_CODES.items()}
    )
    budgets: dict[str, tuple[str, Decimal, Decimal]] = field(
        default_factory=lambda: {
            cc: (fac, Decimal(b), Decimal(s)) for cc, (fac, b, s) in COST_CENTERS.items()
        }
    )
    reservations: dict[str, BudgetReservation] = field(default_factory=dict)
    reservation_refs: dict[str, str] = field(default_factory=dict)
    purchase_orders: dict[str, PurchaseOrderStatus] = field(default_factory=dict)
    po_refs: dict[str, str] = field(default_factory=dict)
    po_cost_centers: dict[str, str] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def crosswalk(self, ids: ItemIdentifiers) -> list[ItemMatch]:
        found: list[ItemMatch] = []
        with self.lock:
            items = list(self.catalog.values())
            if ids.manufacturer and ids.catalog_number:
                mfr, cat = _manufacturer(ids.manufacturer), _catalog_key(ids.catalog_number)
                found += [
                    ItemMatch(matched_on="manufacturer_catalog", item=i)
                    for i in items
                    if i.manufacturer == mfr and _catalog_key(i.catalog_number) == cat
                ]
            if ids.gtin:
                found += [
                    ItemMatch(matched_on="gtin", item=i) for i in items if i.gtin == _gtin(ids.gtin)
                ]
            if ids.local_code:
                item_id = self.local_codes.get(ids.facility_id, {}).get(ids.local_code)
                if item_id in self.catalog:
                    found.append(ItemMatch(matched_on="local_code", item=self.catalog[item_id]))
            if ids.unspsc:
                found += [
                    ItemMatch(matched_on="unspsc", item=i) for i in items if i.unspsc == ids.unspsc
                ]
        return found

    def budget(self, cost_center_id: str, now: datetime) -> Budget | None:
        with self.lock:
            if cost_center_id not in self.budgets:
                return None
            facility, total, spent = self.budgets[cost_center_id]
            committed = sum(
                (
                    r.amount
                    for r in self.reservations.values()
                    if r.cost_center_id == cost_center_id and r.status == "RESERVED"
                ),
                Decimal(0),
            ) + sum(
                (
                    po.total
                    for po_id, po in self.purchase_orders.items()
                    if self.po_cost_centers[po_id] == cost_center_id and po.status == "OPEN"
                ),
                Decimal(0),
            )
            return Budget(
                cost_center_id=cost_center_id,
                facility_id=facility,
                fiscal_year=now.year,
                budget=total,
                committed=committed,
                spent=spent,
                available=total - committed - spent,
            )

    def transfer(self, from_cost_center: str, to_cost_center: str, amount: Decimal) -> None:
        """A budget transfer between two cost centers of one facility (what the budget
        office does in the ERP before answering a budget exception FUNDS_TRANSFERRED)."""
        with self.lock:
            src, dst = self.budgets[from_cost_center], self.budgets[to_cost_center]
            if src[0] != dst[0]:
                raise ValueError("a transfer stays within one facility")
            self.budgets[from_cost_center] = (src[0], src[1] - amount, src[2])
            self.budgets[to_cost_center] = (dst[0], dst[1] + amount, dst[2])

    def reserve(self, request: BudgetReservationRequest, now: datetime) -> BudgetReservation:
        with self.lock:
            existing = self.reservation_refs.get(request.reference)
            if existing is not None:
                return self.reservations[existing]
            budget = self.budget(request.cost_center_id, now)
            if budget is None or budget.facility_id != request.facility_id:
                raise ConnectorError(f"cost center {request.cost_center_id} is not the facility's")
            enough = budget.available >= request.amount
            reservation = BudgetReservation(
                reservation_id=f"BR-{len(self.reservations) + 3001}",
                cost_center_id=request.cost_center_id,
                amount=request.amount,
                status="RESERVED" if enough else "INSUFFICIENT_FUNDS",
                available=budget.available - (request.amount if enough else 0),
            )
            self.reservations[reservation.reservation_id] = reservation
            self.reservation_refs[request.reference] = reservation.reservation_id
            return reservation

    def release(self, reservation_id: str, now: datetime) -> BudgetReservation:
        with self.lock:
            found = self.reservations.get(reservation_id)
            if found is None:
                raise ConnectorError(f"budget reservation {reservation_id} is unknown")
            if found.status == "RESERVED":
                found = found.model_copy(update={"status": "RELEASED"})
                self.reservations[reservation_id] = found
            budget = self.budget(found.cost_center_id, now)
            return found.model_copy(update={"available": budget.available if budget else 0})

    def create_purchase_order(
        self, request: PurchaseOrderRequest, now: datetime
    ) -> PurchaseOrderStatus:
        with self.lock:
            existing = self.po_refs.get(request.reference)
            if existing is not None:
                return self.purchase_orders[existing]
            if request.cost_center_id not in self.budgets:
                raise ConnectorError(f"cost center {request.cost_center_id} is unknown")
            if request.reservation_id is not None:  # the reservation becomes the PO's
                held = self.reservations.get(request.reservation_id)
                if held is None or held.status != "RESERVED":
                    raise ConnectorError(f"budget reservation {request.reservation_id} not held")
                self.reservations[held.reservation_id] = held.model_copy(
                    update={"status": "CONSUMED"}
                )
            po = PurchaseOrderStatus(
                po_id=f"PO-{len(self.purchase_orders) + 6001}",
                status="OPEN",
                supplier_id=request.supplier_id,
                facility_id=request.facility_id,
                total=sum((x.unit_price * x.quantity for x in request.lines), Decimal(0)),
                ordered_at=now,
                expected_delivery=now + PO_LEAD,
            )
            self.purchase_orders[po.po_id] = po
            self.po_refs[request.reference] = po.po_id
            self.po_cost_centers[po.po_id] = request.cost_center_id
            return po

    def purchase_order(self, po_id: str) -> PurchaseOrderStatus | None:
        with self.lock:
            return self.purchase_orders.get(po_id)


class ProcurementSandbox:
    """The in-process ERP's procurement operations; a base of the sandbox (its faults
    switch as ``erp`` or ``erp.<operation>``)."""

    def _fault(self, port: str, op: str) -> None:  # the sandbox's own
        raise NotImplementedError

    def book_purchase_order(self, request: PurchaseOrderRequest, po: PurchaseOrderStatus) -> None:
        """The payables side records the order (sandbox_payables): one ERP."""

    @property
    def procurement(self) -> ProcurementBook:
        book = self.__dict__.get("_procurement_book")
        if book is None:
            book = self.__dict__.setdefault("_procurement_book", ProcurementBook())
        assert isinstance(book, ProcurementBook)
        return book

    def crosswalk(self, identifiers: ItemIdentifiers) -> Sequence[ItemMatch]:
        self._fault("erp", "crosswalk")
        return self.procurement.crosswalk(identifiers)

    def budget(self, cost_center_id: str) -> Budget | None:
        from careflow import clock

        self._fault("erp", "budget")
        return self.procurement.budget(cost_center_id, clock.now())

    def reserve_budget(self, request: BudgetReservationRequest) -> BudgetReservation:
        from careflow import clock

        self._fault("erp", "reserve_budget")
        return self.procurement.reserve(request, clock.now())

    def release_budget(self, reservation_id: str) -> BudgetReservation:
        from careflow import clock

        self._fault("erp", "release_budget")
        return self.procurement.release(reservation_id, clock.now())

    def create_purchase_order(self, request: PurchaseOrderRequest) -> PurchaseOrderStatus:
        from careflow import clock

        self._fault("erp", "create_purchase_order")
        po = self.procurement.create_purchase_order(request, clock.now())
        self.book_purchase_order(request, po)  # an AP purchase order too: receipts, invoices
        return po

    def purchase_order_status(self, po_id: str) -> PurchaseOrderStatus:
        self._fault("erp", "purchase_order_status")
        found = self.procurement.purchase_order(po_id)
        if found is None:
            raise ConnectorError(f"purchase order {po_id} is unknown")
        received = self._received_status(po_id)  # RECEIVED once goods receipts post
        return found if received is None else found.model_copy(update={"status": received})

    def _received_status(self, po_id: str) -> str | None:
        """The payables side's status once receiving began (sandbox_payables), else None."""
        return None
