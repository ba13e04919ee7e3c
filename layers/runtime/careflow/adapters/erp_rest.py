"""The ERP port over careflow's ERP REST API (``docs/erp-openapi.yaml``): stock positions
by facility and requisitions, idempotent on the caller's reference.

Errors: 404 is :class:`NotFound`; another 4xx is :class:`Rejected` carrying the problem's
``type``, status and field paths (``errors[].in/path/code``), never its ``detail`` (servers
echo submitted values there); 429, 5xx, timeouts and bodies that are not the documented
shape are :class:`ConnectorUnavailable`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from careflow.adapters.http import HttpClient, call_model
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
