"""The ERP port over careflow's ERP REST API (``docs/erp-openapi.yaml``): stock positions
by facility and requisitions, idempotent on the caller's reference.

Errors: 404 is :class:`NotFound`; another 4xx is :class:`Rejected` carrying the problem's
``type``, status and field paths (``errors[].in/path/code``), never its ``detail`` (servers
echo submitted values there); 429, 5xx, timeouts and bodies that are not the documented
shape are :class:`ConnectorUnavailable`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from careflow.adapters.http import HttpClient, call_model
from careflow.canonical.inventory import (
    Expedite,
    ItemClass,
    ParLevel,
    StorageLocation,
    UsageHistory,
)
from careflow.canonical.supply import Requisition, RequisitionRequest, StockPosition
from careflow.ports import ConnectorUnavailable

# The operations this adapter calls: (method, path template) as in docs/erp-openapi.yaml.
STOCK = ("GET", "/facilities/{facility_id}/stock")
CREATE_REQUISITION = ("POST", "/requisitions")
GET_REQUISITION = ("GET", "/requisitions/{requisition_id}")
OPERATIONS = (STOCK, CREATE_REQUISITION, GET_REQUISITION)

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


class _Money(_Wire):
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
    unit_price: _Money


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
