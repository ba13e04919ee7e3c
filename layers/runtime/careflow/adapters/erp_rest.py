"""The ERP port over careflow's ERP REST API (``docs/erp-openapi.yaml``): stock positions
by facility and requisitions, idempotent on the caller's reference.

Errors: 404 is :class:`NotFound`; another 4xx is :class:`Rejected` carrying the problem's
``type``, status and field paths (``errors[].in/path/code``), never its ``detail`` (servers
echo submitted values there); 429, 5xx, timeouts and bodies that are not the documented
shape are :class:`ConnectorUnavailable`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date  # payables (issue 11)
from decimal import Decimal  # payables, procurement (issue 11)
from typing import Any, Generic, Literal, TypeVar  # Literal: procurement, Generic: inventory
from urllib.parse import quote

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from careflow.adapters.http import HttpClient, NotFound, call_model
from careflow.canonical.inventory import (  # -- inventory (issue 11) --
    Expedite,
    ItemClass,
    ParLevel,
    StorageLocation,
    UsageHistory,
)
from careflow.canonical.payables import (  # payables (issue 11)
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
from careflow.canonical.procurement import (  # -- procurement (issue 11) --
    Budget,
    BudgetReservation,
    BudgetReservationRequest,
    CanonicalItem,
    ItemIdentifiers,
    ItemMatch,
    PurchaseOrderRequest,
    PurchaseOrderStatus,
)
from careflow.canonical.supply import Requisition, RequisitionRequest, StockPosition
from careflow.ports import ConnectorUnavailable

# The operations this adapter calls: (method, path template) as in docs/erp-openapi.yaml.
STOCK = ("GET", "/facilities/{facility_id}/stock")
CREATE_REQUISITION = ("POST", "/requisitions")
GET_REQUISITION = ("GET", "/requisitions/{requisition_id}")
OPERATIONS: tuple[tuple[str, str], ...] = (STOCK, CREATE_REQUISITION, GET_REQUISITION)

# 4xx answers read here (for their problem details) instead of by the HttpClient; 401 (token
# refresh) and 429 (retry) stay with it.
CLIENT_ERRORS = frozenset({400, 403, 404, 405, 409, 410, 412, 415, 422})
STOCK_BATCH = 100  # item_id values a request (the API's maximum)

W = TypeVar("W", bound=BaseModel)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _SupplierLeadTime(_Wire):
    supplier_id: str
    lead_time_days: float = Field(ge=0)


class _StockPosition(_Wire):
    facility_id: str
    item_id: str
    on_hand: int
    reserved: int
    par_level: int
    consignment: bool
    primary_supplier: _SupplierLeadTime


class _StockPage(_Wire):
    data: list[_StockPosition]
    next: str | None = None


class _Requisition(_Wire):
    requisition_id: str
    reference: str
    status: str
    expected_delivery: AwareDatetime


def _path(template: tuple[str, str], **params: str) -> str:
    return template[1].format(**{k: quote(v, safe="") for k, v in params.items()})


class ErpRestAdapter:
    """Implements :class:`careflow.ports.ErpPort` (plus ``get_requisition``)."""

    def __init__(self, http: HttpClient, *, max_pages: int = 50) -> None:
        self.http = http
        self.max_pages = max_pages

    # -- ErpPort -----------------------------------------------------------------------------
    def stock_positions(self, facility_id: str, item_ids: Sequence[str]) -> Sequence[StockPosition]:
        """One position per item the ERP knows, in the order asked (duplicates once);
        items the ERP does not know are left out."""
        wanted = list(dict.fromkeys(item_ids))
        found: dict[str, StockPosition] = {}
        for start in range(0, len(wanted), STOCK_BATCH):
            batch = wanted[start : start + STOCK_BATCH]
            path = _path(STOCK, facility_id=facility_id)
            for p in self._pages(path, {"item_id": batch}):
                if p.facility_id != facility_id:
                    raise ConnectorUnavailable(
                        f"{self.http.system}: stock answered for another facility"
                    )
                found[p.item_id] = StockPosition(
                    facility_id=p.facility_id,
                    item_id=p.item_id,
                    on_hand=p.on_hand,
                    reserved=p.reserved,
                    par_level=p.par_level,
                    supplier_id=p.primary_supplier.supplier_id,
                    lead_time_days=p.primary_supplier.lead_time_days,
                    consignment=p.consignment,
                )
        return [found[i] for i in wanted if i in found]

    def create_requisition(self, request: RequisitionRequest) -> Requisition:
        """POSTs with the caller's reference: a retried POST (or a re-run step) returns the
        requisition the first one created, never a second one."""
        body = {
            "reference": request.reference,
            "facility_id": request.facility_id,
            "supplier_id": request.supplier_id,
            "lines": [{"item_id": x.item_id, "quantity": x.quantity} for x in request.lines],
            "needed_by": request.needed_by.isoformat(),
            "reason": request.reason,
        }
        wire = self._call(CREATE_REQUISITION, _path(CREATE_REQUISITION), _Requisition, body=body)
        if wire.reference != request.reference:
            raise ConnectorUnavailable(
                f"{self.http.system}: requisition answered for another reference"
            )
        return self._requisition(wire)

    # -- beyond the port ---------------------------------------------------------------------
    def get_requisition(self, requisition_id: str) -> Requisition:
        path = _path(GET_REQUISITION, requisition_id=requisition_id)
        return self._requisition(self._call(GET_REQUISITION, path, _Requisition))

    # -- plumbing ----------------------------------------------------------------------------
    @staticmethod
    def _requisition(wire: _Requisition) -> Requisition:
        return Requisition(
            requisition_id=wire.requisition_id,
            status=wire.status,
            expected_delivery=wire.expected_delivery,
        )

    def _pages(self, path: str, params: Mapping[str, Any]) -> Iterator[_StockPosition]:
        cursor: str | None = None
        for _ in range(self.max_pages):
            query = {**params, **({"cursor": cursor} if cursor else {})}
            page = self._call(STOCK, path, _StockPage, params=query)
            yield from page.data
            if not page.next:
                return
            cursor = page.next
        raise ConnectorUnavailable(f"{self.http.system}: more than {self.max_pages} pages")

    def _call(
        self,
        op: tuple[str, str],
        path: str,
        shape: type[W],
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> W:
        return call_model(self.http, op, path, shape, CLIENT_ERRORS, params=params, body=body)

    # -- inventory (issue 11) --
    def locations(self, facility_id: str) -> Sequence[StorageLocation]:
        path = _path(LOCATIONS, facility_id=facility_id)
        return [
            StorageLocation(
                facility_id=w.facility_id,
                location_id=w.location_id,
                name=w.name,
                supplies_cases=w.supplies_cases,
            )
            for w in self._list(LOCATIONS, path, _LocationPage, {})
        ]

    def par_levels(self, facility_id: str, location_id: str) -> Sequence[ParLevel]:
        path = _path(PAR_LEVELS, facility_id=facility_id, location_id=location_id)
        out = []
        for w in self._list(PAR_LEVELS, path, _ParLevelPage, {}):
            if (w.facility_id, w.location_id) != (facility_id, location_id):
                raise ConnectorUnavailable(
                    f"{self.http.system}: par levels answered for another location"
                )
            out.append(
                ParLevel(
                    facility_id=w.facility_id,
                    location_id=w.location_id,
                    item_id=w.item_id,
                    description=w.description,
                    item_class=w.item_class,
                    on_hand=w.on_hand,
                    on_order=w.on_order,
                    par_level=w.par_level,
                    reorder_point=w.reorder_point,
                    supplier_id=w.primary_supplier.supplier_id,
                    lead_time_days=w.primary_supplier.lead_time_days,
                    unit_price=Decimal(w.unit_price.amount),
                )
            )
        return out

    def usage_history(
        self, facility_id: str, item_ids: Sequence[str], days: int
    ) -> Sequence[UsageHistory]:
        wanted = list(dict.fromkeys(item_ids))
        path = _path(USAGE, facility_id=facility_id)
        out: list[UsageHistory] = []
        for start in range(0, len(wanted), STOCK_BATCH):
            params = {"item_id": wanted[start : start + STOCK_BATCH], "days": str(days)}
            for w in self._list(USAGE, path, _UsagePage, params):
                if w.facility_id != facility_id:
                    raise ConnectorUnavailable(
                        f"{self.http.system}: usage answered for another facility"
                    )
                out.append(
                    UsageHistory(
                        facility_id=w.facility_id,
                        location_id=w.location_id,
                        item_id=w.item_id,
                        days=w.days,
                        quantity=w.quantity,
                    )
                )
        return out

    def expedite(self, requisition_id: str, reason: str) -> Expedite:
        """POST .../expedite: idempotent at the ERP (a repeat keeps the first new date)."""
        path = _path(EXPEDITE, requisition_id=requisition_id)
        wire = self._call(EXPEDITE, path, _Expedite, body={"reason": reason[:200]})
        if wire.requisition_id != requisition_id:
            raise ConnectorUnavailable(f"{self.http.system}: expedite answered for another")
        return Expedite(
            requisition_id=wire.requisition_id,
            status=wire.status,
            expedited=wire.expedited,
            expected_delivery=wire.expected_delivery,
        )

    def _list(
        self, op: tuple[str, str], path: str, shape: type[_Page[P]], params: Mapping[str, Any]
    ) -> Iterator[P]:
        cursor: str | None = None
        for _ in range(self.max_pages):
            query = {**params, **({"cursor": cursor} if cursor else {})}
            page = self._call(op, path, shape, params=query)
            yield from page.data
            if not page.next:
                return
            cursor = page.next
        raise ConnectorUnavailable(f"{self.http.system}: more than {self.max_pages} pages")

    # -- payables (issue 11) --
    def invoice(self, invoice_id: str) -> Invoice | None:
        path = _path(GET_INVOICE, invoice_id=invoice_id)
        try:
            return _invoice(self._call(GET_INVOICE, path, _InvoiceW))
        except NotFound:
            return None

    def supplier_invoices(self, supplier_id: str, invoice_number: str) -> Sequence[Invoice]:
        path = _path(SUPPLIER_INVOICES, supplier_id=supplier_id)
        params = {"supplier_invoice_number": invoice_number}
        try:
            pages = list(self._list(SUPPLIER_INVOICES, path, _InvoicePage, params))
        except NotFound:
            return []
        return [_invoice(w) for w in pages]

    def purchase_order(self, po_id: str) -> PurchaseOrder | None:
        try:
            wire = self._call(GET_PURCHASE_ORDER, _path(GET_PURCHASE_ORDER, po_id=po_id), _PoW)
        except NotFound:
            return None
        categories = {i: self._category(i) for i in dict.fromkeys(x.item_id for x in wire.lines)}
        return PurchaseOrder(
            po_id=wire.po_id,
            supplier_id=wire.supplier_id,
            facility_id=wire.facility_id,
            status=wire.status,
            lines=tuple(
                PurchaseOrderLine(
                    line_number=x.line_number,
                    item_id=x.item_id,
                    quantity=x.quantity,
                    unit_price=x.unit_price.decimal,
                    category=categories[x.item_id],
                )
                for x in wire.lines
            ),
        )

    def receipts(self, po_id: str) -> Sequence[GoodsReceipt]:
        path = _path(GOODS_RECEIPTS)
        found = []
        for w in self._list(GOODS_RECEIPTS, path, _ReceiptPage, {"po_id": po_id}):
            if w.po_id != po_id:
                raise ConnectorUnavailable(f"{self.http.system}: receipts of another PO")
            found.append(_receipt(w))
        return found

    def post_goods_receipt(self, request: GoodsReceiptRequest) -> GoodsReceipt:
        """POSTs with the caller's reference: a retry returns the receipt the first posted."""
        body: dict[str, Any] = {
            "reference": request.reference,
            "po_id": request.po_id,
            "facility_id": request.facility_id,
            "received_at": request.received_at.isoformat(),
            "received_at_use": request.received_at_use,
            "lines": [
                {"po_line_number": x.po_line_number, "item_id": x.item_id, "quantity": x.quantity}
                | ({"lot_number": x.lot_number} if x.lot_number else {})
                | ({"serial_number": x.serial_number} if x.serial_number else {})
                for x in request.lines
            ],
        }
        path = _path(CREATE_GOODS_RECEIPT)
        wire = self._call(CREATE_GOODS_RECEIPT, path, _ReceiptW, body=body)
        if (wire.po_id, wire.reference) != (request.po_id, request.reference):
            raise ConnectorUnavailable(f"{self.http.system}: received for another reference")
        return _receipt(wire)

    def contract_price(self, supplier_id: str, item_id: str) -> ContractPrice | None:
        path = _path(CONTRACT_PRICE, supplier_id=supplier_id, item_id=item_id)
        try:
            w = self._call(CONTRACT_PRICE, path, _ContractW)
        except NotFound:
            return None
        return ContractPrice(
            supplier_id=w.supplier_id,
            item_id=w.item_id,
            contract_id=w.contract_id,
            unit_price=w.unit_price.decimal,
        )

    def approve_invoice(self, approval: InvoiceApproval) -> InvoiceStatusChange:
        body = {
            "reference": approval.reference,
            "approved_by": approval.approved_by,
            "reason": approval.reason,
        }
        path = _path(APPROVE_INVOICE, invoice_id=approval.invoice_id)
        return self._change(self._call(APPROVE_INVOICE, path, _ChangeW, body=body), approval)

    def record_invoice_exception_action(
        self, action: InvoiceExceptionAction
    ) -> InvoiceStatusChange:
        body = {
            "reference": action.reference,
            "action": action.action,
            "causes": list(action.causes),
            "queue": action.queue,
            "actor": action.actor,
            "variance": {"amount": str(action.variance.quantize(CENT)), "currency": "USD"},
            "reason": action.reason,
        }
        path = _path(EXCEPTION_ACTIONS, invoice_id=action.invoice_id)
        return self._change(self._call(EXCEPTION_ACTIONS, path, _ChangeW, body=body), action)

    def _change(
        self, wire: _ChangeW, asked: InvoiceApproval | InvoiceExceptionAction
    ) -> InvoiceStatusChange:
        if (wire.invoice_id, wire.reference) != (asked.invoice_id, asked.reference):
            raise ConnectorUnavailable(f"{self.http.system}: answered for another invoice")
        return InvoiceStatusChange(
            invoice_id=wire.invoice_id, status=wire.status, action_id=wire.action_id
        )

    def _category(self, item_id: str) -> str:
        try:
            item = self._call(GET_ITEM, _path(GET_ITEM, item_id=item_id), _ItemW)
        except NotFound:
            return "supply"
        return item.category

    # -- procurement (issue 11) --
    def crosswalk(self, identifiers: ItemIdentifiers) -> Sequence[ItemMatch]:
        params = identifiers.model_dump(exclude_none=True)
        system = self.http.system
        out: list[ItemMatch] = []
        cursor: str | None = None
        for _ in range(20):
            query = {**params, **({"cursor": cursor} if cursor else {})}
            page = self._call(CROSSWALK, _path(CROSSWALK), _MatchPage, params=query)
            for m in page.data:
                item = m.item
                out.append(
                    ItemMatch(
                        matched_on=m.matched_on,
                        item=CanonicalItem(
                            **item.model_dump(exclude={"contract_price"}),
                            contract_price=item.contract_price.usd(system),
                        ),
                    )
                )
            if not page.next:
                return out
            cursor = page.next
        raise ConnectorUnavailable(f"{system}: more than 20 pages of crosswalk matches")

    def budget(self, cost_center_id: str) -> Budget | None:
        path = _path(GET_BUDGET, cost_center_id=cost_center_id)
        try:
            wire = self._call(GET_BUDGET, path, _Budget)
        except NotFound:
            return None
        system = self.http.system
        return Budget(
            cost_center_id=wire.cost_center_id,
            facility_id=wire.facility_id,
            fiscal_year=wire.fiscal_year,
            budget=wire.budget.usd(system),
            committed=wire.committed.usd(system),
            spent=wire.spent.usd(system),
            available=wire.available.usd(system),
        )

    def reserve_budget(self, request: BudgetReservationRequest) -> BudgetReservation:
        """POSTs with the caller's reference: a retry returns the first answer."""
        body = {
            "reference": request.reference,
            "cost_center_id": request.cost_center_id,
            "facility_id": request.facility_id,
            "requisition_id": request.requisition_id,
            "amount": _money(request.amount),
        }
        wire = self._call(RESERVE_BUDGET, _path(RESERVE_BUDGET), _Reservation, body=body)
        if wire.reference != request.reference:
            raise ConnectorUnavailable(f"{self.http.system}: reserved for another reference")
        return self._reservation(wire)

    def release_budget(self, reservation_id: str) -> BudgetReservation:
        path = _path(RELEASE_BUDGET, reservation_id=reservation_id)
        return self._reservation(self._call(RELEASE_BUDGET, path, _Reservation, body={}))

    def create_purchase_order(self, request: PurchaseOrderRequest) -> PurchaseOrderStatus:
        """POSTs with the caller's reference: a retry returns the order the first created."""
        body: dict[str, Any] = {
            "reference": request.reference,
            "facility_id": request.facility_id,
            "supplier_id": request.supplier_id,
            "cost_center_id": request.cost_center_id,
            "reservation_id": request.reservation_id,
            "lines": [
                {"item_id": x.item_id, "quantity": x.quantity, "unit_price": _money(x.unit_price)}
                for x in request.lines
            ],
        }
        if request.needed_by is not None:
            body["needed_by"] = request.needed_by.isoformat()
        path = _path(CREATE_PURCHASE_ORDER)
        return self._po(self._call(CREATE_PURCHASE_ORDER, path, _PurchaseOrder, body=body))

    def purchase_order_status(self, po_id: str) -> PurchaseOrderStatus:
        path = _path(GET_PURCHASE_ORDER, po_id=po_id)
        return self._po(self._call(GET_PURCHASE_ORDER, path, _PurchaseOrder))

    def _reservation(self, wire: _Reservation) -> BudgetReservation:
        return BudgetReservation(
            reservation_id=wire.reservation_id,
            cost_center_id=wire.cost_center_id,
            amount=wire.amount.usd(self.http.system),
            status=wire.status,
            available=wire.available.usd(self.http.system),
        )

    def _po(self, wire: _PurchaseOrder) -> PurchaseOrderStatus:
        return PurchaseOrderStatus(
            po_id=wire.po_id,
            status=wire.status,
            supplier_id=wire.supplier_id,
            facility_id=wire.facility_id,
            total=wire.total.usd(self.http.system),
            ordered_at=wire.ordered_at,
            expected_delivery=wire.expected_delivery,
        )


# -- inventory (issue 11) --
LOCATIONS = ("GET", "/facilities/{facility_id}/locations")
PAR_LEVELS = ("GET", "/facilities/{facility_id}/locations/{location_id}/par-levels")
USAGE = ("GET", "/facilities/{facility_id}/usage")
EXPEDITE = ("POST", "/requisitions/{requisition_id}/expedite")
INVENTORY_OPERATIONS = (LOCATIONS, PAR_LEVELS, USAGE, EXPEDITE)

P = TypeVar("P", bound=BaseModel)


class _Page(_Wire, Generic[P]):
    data: list[P]
    next: str | None = None


class _Location(_Wire):
    facility_id: str
    location_id: str
    name: str
    supplies_cases: bool = False


class _PriceW(_Wire):  # inventory's money: the amount as the wire's string
    amount: str = Field(pattern=r"^-?\d+(\.\d+)?$")
    currency: str


class _ParLevel(_Wire):
    facility_id: str
    location_id: str
    item_id: str
    description: str = ""
    item_class: ItemClass
    on_hand: int = Field(ge=0)
    on_order: int = Field(default=0, ge=0)
    par_level: int = Field(ge=0)
    reorder_point: int = Field(ge=0)
    primary_supplier: _SupplierLeadTime
    unit_price: _PriceW


class _Usage(_Wire):
    facility_id: str
    location_id: str
    item_id: str
    days: int = Field(gt=0)
    quantity: int = Field(ge=0)


class _Expedite(_Wire):
    requisition_id: str
    status: str
    expedited: bool
    expected_delivery: AwareDatetime


class _LocationPage(_Page[_Location]):
    pass


class _ParLevelPage(_Page[_ParLevel]):
    pass


class _UsagePage(_Page[_Usage]):
    pass


# -- payables (issue 11) --------------------------------------------------------------------
GET_INVOICE = ("GET", "/invoices/{invoice_id}")
SUPPLIER_INVOICES = ("GET", "/suppliers/{supplier_id}/invoices")
GET_PURCHASE_ORDER = ("GET", "/purchase-orders/{po_id}")
GOODS_RECEIPTS = ("GET", "/goods-receipts")
GET_ITEM = ("GET", "/items/{item_id}")
CONTRACT_PRICE = ("GET", "/suppliers/{supplier_id}/contract-prices/{item_id}")
APPROVE_INVOICE = ("POST", "/invoices/{invoice_id}/approval")
EXCEPTION_ACTIONS = ("POST", "/invoices/{invoice_id}/exception-actions")
CREATE_GOODS_RECEIPT = ("POST", "/goods-receipts")
PAYABLES_OPERATIONS = (
    GET_INVOICE,
    SUPPLIER_INVOICES,
    GET_PURCHASE_ORDER,
    GOODS_RECEIPTS,
    GET_ITEM,
    CONTRACT_PRICE,
    APPROVE_INVOICE,
    EXCEPTION_ACTIONS,
    CREATE_GOODS_RECEIPT,
)
CENT = Decimal("0.01")


class _MoneyW(_Wire):
    amount: str = Field(pattern=r"^-?\d{1,15}(\.\d{1,4})?$")
    currency: str

    @property
    def decimal(self) -> Decimal:
        return Decimal(self.amount)


class _InvoiceLineW(_Wire):
    line_number: int
    po_line_number: int | None = None
    item_id: str
    quantity: int
    unit_price: _MoneyW
    amount: _MoneyW


class _InvoiceW(_Wire):
    invoice_id: str
    supplier_id: str
    supplier_invoice_number: str
    po_id: str | None = None
    status: str
    invoice_date: date
    received_at: AwareDatetime
    total: _MoneyW
    lines: list[_InvoiceLineW]


class _InvoicePage(_Page[_InvoiceW]):
    pass


class _PoLineW(_Wire):
    line_number: int
    item_id: str
    quantity: int
    unit_price: _MoneyW


class _PoW(_Wire):
    po_id: str
    supplier_id: str
    facility_id: str
    status: str
    lines: list[_PoLineW]


class _ReceiptLineW(_Wire):
    po_line_number: int
    item_id: str
    quantity: int
    lot_number: str | None = None
    serial_number: str | None = None


class _ReceiptW(_Wire):
    receipt_id: str
    reference: str | None = None
    po_id: str
    received_at: AwareDatetime
    received_at_use: bool = False
    lines: list[_ReceiptLineW]


def _receipt(w: _ReceiptW) -> GoodsReceipt:
    return GoodsReceipt(
        receipt_id=w.receipt_id,
        po_id=w.po_id,
        received_at=w.received_at,
        received_at_use=w.received_at_use,
        reference=w.reference,
        lines=tuple(
            ReceiptLine(
                po_line_number=x.po_line_number,
                item_id=x.item_id,
                quantity=x.quantity,
                lot_number=x.lot_number,
                serial_number=x.serial_number,
            )
            for x in w.lines
        ),
    )


class _ReceiptPage(_Page[_ReceiptW]):
    pass


class _ItemW(_Wire):
    item_id: str
    category: str


class _ContractW(_Wire):
    supplier_id: str
    item_id: str
    contract_id: str
    unit_price: _MoneyW


class _ChangeW(_Wire):
    invoice_id: str
    reference: str
    action_id: str
    status: str


def _invoice(w: _InvoiceW) -> Invoice:
    return Invoice(
        invoice_id=w.invoice_id,
        supplier_id=w.supplier_id,
        invoice_number=w.supplier_invoice_number,
        po_id=w.po_id,
        status=w.status,
        invoice_date=w.invoice_date,
        received_at=w.received_at,
        total=w.total.decimal,
        lines=tuple(
            InvoiceLine(
                line_number=x.line_number,
                po_line_number=x.po_line_number,
                item_id=x.item_id,
                quantity=x.quantity,
                unit_price=x.unit_price.decimal,
                amount=x.amount.decimal,
            )
            for x in w.lines
        ),
    )


# -- procurement (issue 11) --
# The procurement operations (docs/erp-openapi.yaml, tag procurement); the budget and the
# purchase order's status read the ERP's existing resources.
CROSSWALK = ("GET", "/item-crosswalk")
GET_BUDGET = ("GET", "/cost-centers/{cost_center_id}/budget")
RESERVE_BUDGET = ("POST", "/budget-reservations")
RELEASE_BUDGET = ("POST", "/budget-reservations/{reservation_id}/release")
CREATE_PURCHASE_ORDER = ("POST", "/purchase-orders")
PROCUREMENT_OPERATIONS = (
    CROSSWALK,
    GET_BUDGET,
    RESERVE_BUDGET,
    RELEASE_BUDGET,
    CREATE_PURCHASE_ORDER,
    GET_PURCHASE_ORDER,
)
OPERATIONS = (*OPERATIONS, *PROCUREMENT_OPERATIONS, CREATE_GOODS_RECEIPT)


class _Money(_Wire):
    amount: Decimal
    currency: str

    def usd(self, system: str) -> Decimal:
        if self.currency != "USD":
            raise ConnectorUnavailable(f"{system}: an amount in {self.currency}, not USD")
        return self.amount


class _Item(_Wire):
    item_id: str
    description: str
    manufacturer: str
    catalog_number: str
    gtin: str
    unspsc: str
    item_class: Literal["implant", "supply", "equipment", "capital_equipment"]
    unit_of_measure: str
    supplier_id: str
    contract_price: _Money


class _Match(_Wire):
    matched_on: Literal["manufacturer_catalog", "gtin", "local_code", "unspsc"]
    item: _Item


class _MatchPage(_Wire):
    data: list[_Match]
    next: str | None = None


class _Budget(_Wire):
    cost_center_id: str
    facility_id: str
    fiscal_year: int
    budget: _Money
    committed: _Money
    spent: _Money
    available: _Money


class _Reservation(_Wire):
    reservation_id: str
    reference: str
    cost_center_id: str
    amount: _Money
    status: Literal["RESERVED", "INSUFFICIENT_FUNDS", "RELEASED", "CONSUMED"]
    available: _Money


class _PurchaseOrder(_Wire):
    po_id: str
    status: str
    supplier_id: str
    facility_id: str
    ordered_at: AwareDatetime
    expected_delivery: AwareDatetime | None = None
    total: _Money


def _money(amount: Decimal) -> dict[str, str]:
    return {"amount": f"{amount.quantize(Decimal('0.01'))}", "currency": "USD"}
