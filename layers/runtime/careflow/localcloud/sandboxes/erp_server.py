"""An ERP for the local cloud, speaking careflow's ERP REST API (``docs/erp-openapi.yaml``):
items with each EHR's local codes, on hand by facility, requisitions (idempotent on the
caller's reference), purchase orders, goods receipts, invoices, budgets and suppliers.

It is seeded from the in-process sandbox's FACILITIES, ITEMS and STOCK, so both ERP
connectors see the same hospital, plus a small generated procure-to-pay history (one
purchase order per facility: matched, price variance, no receipt). Time comes from the
clock; faults from its :class:`FaultPlan`. Errors are RFC 9457 problem details.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from careflow import clock
from careflow.adapters.sandbox import FACILITIES, ITEMS, STOCK
from careflow.adapters.sandbox_inventory import InventoryBook
from careflow.canonical.inventory import ParLevel
from careflow.localcloud.sandboxes.erp_payables import PayablesRoutes  # payables (issue 11)
from careflow.localcloud.sandboxes.faults import FaultPlan
from careflow.localcloud.sandboxes.http_base import LoopbackServer, SandboxHandler
from careflow.ports import ConnectorError

BASE_PATH = "/erp/v1"
CURRENCY = "USD"
PROBLEM_TYPE = "urn:careflow:erp-sandbox:problem:"
MAX_PAGE = 200
MAX_STOCK_ITEMS = 100
GTIN = "https://www.gs1.org/gtin"
CENT = Decimal("0.01")
BUDGET = Decimal("250000.00")  # per cost center and fiscal year
OPEN_REQUISITIONS = frozenset({"SUBMITTED", "APPROVED"})
INVOICE_STATUSES = ("RECEIVED", "MATCHED", "EXCEPTION", "APPROVED", "PAID", "REJECTED")

# Generated list prices, by item-id prefix (the first match wins).
PRICES: tuple[tuple[str, str], ...] = (
    ("IMP-TKA", "2450.00"),
    ("IMP-THA", "1980.00"),
    ("IMP-SPN-SCR", "325.00"),
    ("IMP-SPN", "410.00"),
    ("SUP-DRAPE", "38.50"),
    ("SUP-CEMENT", "92.00"),
)


class Problem(Exception):
    """An error answer: RFC 9457 problem details."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        errors: Sequence[Mapping[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.body: dict[str, Any] = {
            "type": PROBLEM_TYPE + kind,
            "title": title,
            "status": status,
            "detail": detail,
        }
        if errors:
            self.body["errors"] = [dict(e) for e in errors]
        self.headers = dict(headers or {})


def not_found(what: str) -> Problem:
    return Problem(404, "not-found", "No such resource", f"{what} is unknown")


def bad_parameter(name: str, code: str, detail: str) -> Problem:
    return Problem(
        400,
        "bad-request",
        "The request is malformed",
        detail,
        [{"in": "query", "path": name, "code": code, "detail": detail}],
    )


def invalid(errors: Sequence[Mapping[str, str]]) -> Problem:
    n = len(errors)
    return Problem(
        422,
        "validation",
        "The request is not valid",
        f"{n} field{'s are' if n > 1 else ' is'} not valid",
        errors,
    )


def money(amount: Decimal) -> dict[str, str]:
    return {"amount": str(amount.quantize(CENT, rounding=ROUND_HALF_UP)), "currency": CURRENCY}


def amount_of(value: Mapping[str, str]) -> Decimal:
    return Decimal(value["amount"])


def iso(when: datetime) -> str:
    return when.isoformat()


def unit_price(item_id: str) -> Decimal:
    return next((Decimal(p) for prefix, p in PRICES if item_id.startswith(prefix)), Decimal(100))


def gtin14(serial: int) -> str:
    """A GTIN-14 with a valid check digit (GS1 company prefix 0614141, made up)."""
    body = f"00614141{serial:05d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def ehr_code_system(facility_id: str) -> str:
    return f"urn:careflow:ehr:{facility_id}:supply-item"


def cost_center(facility_id: str) -> str:
    return f"cc-{facility_id}-periop"


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        offset = json.loads(raw)["o"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise bad_parameter("cursor", "invalid", "the cursor is not one this server gave") from None
    if not isinstance(offset, int) or offset < 0:
        raise bad_parameter("cursor", "invalid", "the cursor is not one this server gave")
    return offset


def first(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def json_pointer(loc: Sequence[int | str]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in loc)


class _LineIn(BaseModel):
    model_config = ConfigDict(strict=True)

    item_id: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=100_000)


class _RequisitionIn(BaseModel):
    model_config = ConfigDict(strict=True)

    reference: str = Field(min_length=1, max_length=128)
    facility_id: str = Field(min_length=1)
    supplier_id: str = Field(min_length=1)
    cost_center_id: str | None = None
    lines: list[_LineIn] = Field(min_length=1, max_length=200)
    needed_by: AwareDatetime
    reason: str = Field(default="", max_length=500)


class ErpSandboxServer(PayablesRoutes, LoopbackServer):  # payables (issue 11)
    """``start()`` listens on 127.0.0.1 (a free port unless given); ``base_url`` ends in
    /erp/v1. With ``token`` set, requests need ``Authorization: Bearer <token>``."""

    def __init__(self, *, port: int = 0, token: str | None = None, page_size: int = 50) -> None:
        super().__init__(port)
        self.faults = FaultPlan()
        self.lost_responses = 0  # next N requisition POSTs are committed, then answered 503
        self.token = token
        self.page_size = page_size
        self.requests = 0
        self.lock = threading.RLock()
        self.suppliers = sorted({sup for _, sup, _, _ in ITEMS.values()})
        self.stock: dict[str, dict[str, list[int]]] = {}
        self.requisitions: dict[str, dict[str, Any]] = {}
        self.purchase_orders: dict[str, dict[str, Any]] = {}
        self.goods_receipts: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self._by_reference: dict[str, str] = {}
        self._created = 0
        self.reset()

    def reset(self) -> None:
        """Back to the seeded data (history dated from the clock's now), without faults."""
        with self.lock:
            self.faults.clear()
            self.lost_responses = 0
            self.stock = {fac: {} for fac in FACILITIES}
            for fac, items in STOCK.items():
                self.stock[fac] = {item: list(v) for item, v in items.items()}
            for table in (
                self.requisitions,
                self.purchase_orders,
                self.goods_receipts,
                self.invoices,
                self._by_reference,
            ):
                table.clear()
            self._created = 0
            self._seed_history(clock.now())
            # -- inventory (issue 11) --
            self.inventory = InventoryBook()
            self.reset_payables()  # payables (issue 11): erp_payables.py
            self.procurement_reset()  # -- procurement (issue 11) --

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"{self.origin}{BASE_PATH}"

    def start(self) -> ErpSandboxServer:
        self._serve(_handler(self), "erp-sandbox")
        return self

    # -- demo and test controls --------------------------------------------------------------
    def transfer_stock(
        self, item_id: str, quantity: int, from_facility: str, to_facility: str
    ) -> None:
        """An inter-facility transfer, as a buyer would arrange it."""
        with self.lock:
            if from_facility not in self.stock or to_facility not in self.stock:
                raise ConnectorError("unknown facility")
            src = self.stock[from_facility].get(item_id)
            if src is None or src[0] - src[1] < quantity:
                raise ConnectorError(f"{from_facility} cannot spare {quantity} x {item_id}")
            src[0] -= quantity
            self.stock[to_facility].setdefault(item_id, [0, 0, 0])[0] += quantity

    def requisition_by_reference(self, reference: str) -> dict[str, Any] | None:
        with self.lock:
            req_id = self._by_reference.get(reference)
            return self.requisitions[req_id] if req_id else None

    # -- representations ---------------------------------------------------------------------
    @staticmethod
    def supplier_lead(item_id: str) -> dict[str, Any]:
        _, supplier, lead, _ = ITEMS[item_id]
        return {"supplier_id": supplier, "lead_time_days": lead}

    @staticmethod
    def item(item_id: str) -> dict[str, Any]:
        description, _, _, consignment = ITEMS[item_id]
        index = list(ITEMS).index(item_id)
        codes = [
            {
                "system": ehr_code_system(fac),
                "code": f"{fac.removeprefix('fac-')[:1].upper()}{100_001 + index}",
                "facility_id": fac,
            }
            for fac in FACILITIES
        ]
        codes.append({"system": GTIN, "code": gtin14(index + 1), "display": description})
        return {
            "item_id": item_id,
            "description": description,
            "unit_of_measure": "EA",
            "category": "implant" if item_id.startswith("IMP-") else "supply",
            "consignment": consignment,
            "bill_only": False,
            "primary_supplier": ErpSandboxServer.supplier_lead(item_id),
            "unit_price": money(unit_price(item_id)),
            "codes": codes,
        }

    def position(self, facility_id: str, item_id: str, now: datetime) -> dict[str, Any]:
        on_hand, reserved, par = self.stock[facility_id].get(item_id, (0, 0, 0))
        return {
            "facility_id": facility_id,
            "item_id": item_id,
            "on_hand": on_hand,
            "reserved": reserved,
            "available": on_hand - reserved,
            "par_level": par,
            "unit_of_measure": "EA",
            "consignment": ITEMS[item_id][3],
            "primary_supplier": self.supplier_lead(item_id),
            "as_of": iso(now),
            "locations": [
                {
                    "location_id": f"{facility_id}:central-supply",
                    "name": "Central supply",
                    "on_hand": on_hand,
                    "reserved": reserved,
                    "par_level": par,
                }
            ],
        }

    def supplier(self, supplier_id: str) -> dict[str, Any]:
        leads = [lead for _, sup, lead, _ in ITEMS.values() if sup == supplier_id]
        return {
            "supplier_id": supplier_id,
            "name": supplier_id.removeprefix("sup-").title() + " Inc.",
            "active": True,
            "default_lead_time_days": min(leads),
            "currency": CURRENCY,
        }

    def budget(self, cost_center_id: str, fiscal_year: int, now: datetime) -> dict[str, Any]:
        facility = next(f for f in FACILITIES if cost_center(f) == cost_center_id)
        invoiced_pos = {i["po_id"] for i in self.invoices.values() if i["po_id"]}
        committed = sum(
            (
                amount_of(r["total"])
                for r in self.requisitions.values()
                if r["cost_center_id"] == cost_center_id and r["status"] in OPEN_REQUISITIONS
            ),
            Decimal(0),
        ) + sum(
            (
                amount_of(p["total"])
                for p in self.purchase_orders.values()
                if p["cost_center_id"] == cost_center_id and p["po_id"] not in invoiced_pos
            ),
            Decimal(0),
        )
        spent = sum(
            (
                amount_of(i["total"])
                for i in self.invoices.values()
                if i["po_id"]
                and self.purchase_orders[i["po_id"]]["cost_center_id"] == cost_center_id
            ),
            Decimal(0),
        )
        return {
            "cost_center_id": cost_center_id,
            "facility_id": facility,
            "fiscal_year": fiscal_year,
            "period_start": date(fiscal_year, 1, 1).isoformat(),
            "period_end": date(fiscal_year, 12, 31).isoformat(),
            "budget": money(BUDGET),
            "committed": money(committed),
            "spent": money(spent),
            "available": money(BUDGET - committed - spent),
            "as_of": iso(now),
        }

    # -- requests ----------------------------------------------------------------------------
    def handle(
        self, method: str, parts: Sequence[str], query: Mapping[str, list[str]], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        """One request, past faults and auth: (status, JSON body, headers); raises Problem."""
        now = clock.now()
        route = tuple(parts)
        # -- inventory (issue 11) --
        answer = self.inventory_route(method, route, query, body, now)
        if answer is not None:
            return answer
        routed = self.handle_payables(method, parts, query, body, now)  # payables (issue 11)
        if routed is None:  # -- procurement (issue 11)
            routed = self.procurement_route(method, route, query, body, now)
        if routed is not None:
            return routed
        if method == "POST" and route == ("requisitions",):
            return self.create_requisition(body, now)
        if method != "GET":
            raise Problem(
                405, "method-not-allowed", "Method not allowed", f"{method} is not supported here"
            )
        match route:
            case ("items",):
                return 200, self.list_items(query), {}
            case ("items", item_id):
                if item_id not in ITEMS:
                    raise not_found(f"item {item_id}")
                return 200, self.item(item_id), {}
            case ("facilities", facility_id, "stock"):
                return 200, self.stock_page(facility_id, query, now), {}
            case ("requisitions", req_id):
                return 200, self._get(self.requisitions, req_id, "requisition"), {}
            case ("purchase-orders",):
                rows = self._filtered(self.purchase_orders, query, "requisition_id")
                return 200, self.page(rows, query), {}
            case ("purchase-orders", po_id):
                return 200, self._get(self.purchase_orders, po_id, "purchase order"), {}
            case ("goods-receipts",):
                return (
                    200,
                    self.page(self._filtered(self.goods_receipts, query, "po_id"), query),
                    {},
                )
            case ("invoices",):
                if first(query, "status") not in (None, *INVOICE_STATUSES):
                    raise bad_parameter("status", "invalid", "not an invoice status")
                return 200, self.page(self._filtered(self.invoices, query, "status"), query), {}
            case ("invoices", invoice_id):
                return 200, self._get(self.invoices, invoice_id, "invoice"), {}
            case ("cost-centers", cc_id, "budget"):
                return 200, self.get_budget(cc_id, query, now), {}
            case ("suppliers", supplier_id):
                if supplier_id not in self.suppliers:
                    raise not_found(f"supplier {supplier_id}")
                return 200, self.supplier(supplier_id), {}
        raise not_found("the endpoint")

    def page(self, rows: Sequence[Any], query: Mapping[str, list[str]]) -> dict[str, Any]:
        limit_raw = first(query, "limit") or str(self.page_size)
        if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= MAX_PAGE:
            raise bad_parameter("limit", "out_of_range", f"limit must be 1 to {MAX_PAGE}")
        limit = int(limit_raw)
        cursor = first(query, "cursor")
        offset = decode_cursor(cursor) if cursor else 0
        end = offset + limit
        return {
            "data": list(rows[offset:end]),
            "next": encode_cursor(end) if end < len(rows) else None,
        }

    def _get(self, table: Mapping[str, dict[str, Any]], key: str, what: str) -> dict[str, Any]:
        with self.lock:
            found = table.get(key)
            if found is None:
                raise not_found(f"{what} {key}")
            return json.loads(json.dumps(found))

    def _filtered(
        self, table: Mapping[str, dict[str, Any]], query: Mapping[str, list[str]], field: str
    ) -> list[dict[str, Any]]:
        wanted = first(query, field)
        with self.lock:
            return [
                json.loads(json.dumps(row))
                for _, row in sorted(table.items())
                if wanted is None or row.get(field) == wanted
            ]

    def list_items(self, query: Mapping[str, list[str]]) -> dict[str, Any]:
        system = first(query, "code_system")
        code = first(query, "code")
        if code is not None and system is None:
            raise bad_parameter("code_system", "missing", "code needs code_system")
        rows = [
            item
            for item in (self.item(i) for i in ITEMS)
            if system is None
            or any(c["system"] == system and code in (None, c["code"]) for c in item["codes"])
        ]
        return self.page(rows, query)

    def stock_page(
        self, facility_id: str, query: Mapping[str, list[str]], now: datetime
    ) -> dict[str, Any]:
        if facility_id not in FACILITIES:
            raise not_found(f"facility {facility_id}")
        asked = list(dict.fromkeys(query.get("item_id") or ()))
        if len(asked) > MAX_STOCK_ITEMS:
            raise bad_parameter("item_id", "too_many", f"at most {MAX_STOCK_ITEMS} items a request")
        with self.lock:
            wanted = asked or [i for i in ITEMS if i in self.stock[facility_id]]
            rows = [self.position(facility_id, i, now) for i in wanted if i in ITEMS]
        return self.page(rows, query)

    def get_budget(
        self, cc_id: str, query: Mapping[str, list[str]], now: datetime
    ) -> dict[str, Any]:
        if cc_id not in {cost_center(f) for f in FACILITIES}:
            raise not_found(f"cost center {cc_id}")
        year_raw = first(query, "fiscal_year") or str(now.year)
        if not year_raw.isdigit() or not 2000 <= int(year_raw) <= 2100:
            raise bad_parameter("fiscal_year", "out_of_range", "fiscal_year must be 2000 to 2100")
        if int(year_raw) != now.year:
            raise not_found(f"the {year_raw} budget of {cc_id}")
        with self.lock:
            return self.budget(cc_id, int(year_raw), now)

    def create_requisition(self, body: bytes, now: datetime) -> tuple[int, Any, dict[str, str]]:
        try:
            req = _RequisitionIn.model_validate_json(body or b"null")
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                raise Problem(
                    400, "bad-request", "The request is malformed", "the body is not JSON"
                ) from None
            # Like many real servers, the detail echoes the value: careflow must not log it.
            raise invalid(
                [
                    {
                        "in": "body",
                        "path": json_pointer(e["loc"]),
                        "code": e["type"],
                        "detail": e["msg"]
                        + (f" (got {e['input']!r})" if e["type"] != "missing" else ""),
                    }
                    for e in exc.errors()
                ]
            ) from None
        errors = []
        if req.facility_id not in FACILITIES:
            errors.append(("/facility_id", "unknown_facility", "no such facility"))
        if req.supplier_id not in self.suppliers:
            errors.append(("/supplier_id", "unknown_supplier", "no such supplier"))
        if req.cost_center_id is not None and req.cost_center_id != cost_center(req.facility_id):
            errors.append(("/cost_center_id", "unknown_cost_center", "not the facility's"))
        errors += [
            (f"/lines/{i}/item_id", "unknown_item", "no such item")
            for i, line in enumerate(req.lines)
            if line.item_id not in ITEMS
        ]
        if errors:
            raise invalid([{"in": "body", "path": p, "code": c, "detail": d} for p, c, d in errors])
        with self.lock:
            existing = self._by_reference.get(req.reference)
            if existing is not None:  # a repeat: the first one, as it now is
                status, out = 200, self.requisitions[existing]
            else:
                status, out = 201, self._new_requisition(req, now)
            lost = self.lost_responses > 0
            if lost:
                self.lost_responses -= 1
        if lost:
            raise Problem(503, "unavailable", "Unavailable", "the answer was lost (fault injected)")
        headers = {"Location": f"{BASE_PATH}/requisitions/{out['requisition_id']}"}
        return status, json.loads(json.dumps(out)), headers if status == 201 else {}

    def _new_requisition(self, req: _RequisitionIn, now: datetime) -> dict[str, Any]:
        self._created += 1
        lead = max(ITEMS[line.item_id][2] for line in req.lines)
        lines = [
            {
                "line_number": n,
                "item_id": line.item_id,
                "quantity": line.quantity,
                "unit_price": money(unit_price(line.item_id)),
            }
            for n, line in enumerate(req.lines, start=1)
        ]
        record: dict[str, Any] = {
            "requisition_id": f"REQ-{5000 + self._created}",
            "reference": req.reference,
            "status": "SUBMITTED",
            "facility_id": req.facility_id,
            "supplier_id": req.supplier_id,
            "cost_center_id": req.cost_center_id or cost_center(req.facility_id),
            "lines": lines,
            "needed_by": iso(req.needed_by),
            "expected_delivery": iso(now + timedelta(days=lead)),
            "reason": req.reason,
            "total": money(
                sum((unit_price(x.item_id) * x.quantity for x in req.lines), Decimal(0))
            ),
            "created_at": iso(now),
        }
        self.requisitions[record["requisition_id"]] = record
        self._by_reference[req.reference] = record["requisition_id"]
        return record

    # -- generated procure-to-pay history ----------------------------------------------------
    def _seed_history(self, now: datetime) -> None:
        """Per facility, one purchase order from a requisition: 0 matched and approved, 1 a
        price variance on the invoice, 2 invoiced but never received (scenario = index % 3)."""
        for i, fac in enumerate(FACILITIES):
            stocked = [it for it in self.stock[fac] if it in ITEMS and not ITEMS[it][3]]
            if not stocked:
                continue
            supplier = min(ITEMS[it][1] for it in stocked)
            items = [it for it in stocked if ITEMS[it][1] == supplier][:2]
            scenario = i % 3
            lead = max(ITEMS[it][2] for it in items)
            ordered = (now - timedelta(days=21 - i)).replace(microsecond=0)
            delivered = ordered + timedelta(days=lead)
            req_id, po_id = f"REQ-{4001 + i}", f"PO-{7001 + i}"
            qty = {it: max(self.stock[fac][it][2], 1) for it in items}
            po_lines = [
                {
                    "line_number": n,
                    "item_id": it,
                    "quantity": qty[it],
                    "unit_price": money(unit_price(it)),
                    "received_quantity": qty[it] if scenario != 2 else 0,
                }
                for n, it in enumerate(items, start=1)
            ]
            total = sum((unit_price(it) * qty[it] for it in items), Decimal(0))
            self.requisitions[req_id] = {
                "requisition_id": req_id,
                "reference": f"history:{fac}:{i + 1}",
                "status": "RECEIVED" if scenario != 2 else "ORDERED",
                "facility_id": fac,
                "supplier_id": supplier,
                "cost_center_id": cost_center(fac),
                "lines": [
                    {k: v for k, v in line.items() if k != "received_quantity"} for line in po_lines
                ],
                "needed_by": iso(delivered + timedelta(days=1)),
                "expected_delivery": iso(delivered),
                "reason": "par replenishment",
                "total": money(total),
                "created_at": iso(ordered - timedelta(hours=2)),
            }
            self._by_reference[f"history:{fac}:{i + 1}"] = req_id
            self.purchase_orders[po_id] = {
                "po_id": po_id,
                "requisition_id": req_id,
                "status": "RECEIVED" if scenario != 2 else "OPEN",
                "supplier_id": supplier,
                "facility_id": fac,
                "cost_center_id": cost_center(fac),
                "ordered_at": iso(ordered),
                "expected_delivery": iso(delivered),
                "lines": po_lines,
                "total": money(total),
            }
            if scenario != 2:
                receipt_id = f"GR-{8001 + i}"
                self.goods_receipts[receipt_id] = {
                    "receipt_id": receipt_id,
                    "po_id": po_id,
                    "facility_id": fac,
                    "received_at": iso(delivered),
                    "received_at_use": False,
                    "lines": [
                        {
                            "po_line_number": line["line_number"],
                            "item_id": line["item_id"],
                            "quantity": line["quantity"],
                            "lot_number": f"L{ordered:%y%m}{n:03d}",
                            "expires_on": (delivered + timedelta(days=730)).date().isoformat(),
                        }
                        for n, line in enumerate(po_lines, start=1)
                    ],
                }
            markup = Decimal("1.05") if scenario == 1 else Decimal(1)
            inv_lines: list[dict[str, Any]] = [
                {
                    "line_number": n,
                    "po_line_number": n,
                    "item_id": it,
                    "quantity": qty[it],
                    "unit_price": money(unit_price(it) * (markup if n == 1 else 1)),
                    "amount": money(unit_price(it) * (markup if n == 1 else 1) * qty[it]),
                }
                for n, it in enumerate(items, start=1)
            ]
            invoice_date = (delivered + timedelta(days=1)).date()
            invoice_id = f"INV-{9001 + i}"
            self.invoices[invoice_id] = {
                "invoice_id": invoice_id,
                "supplier_id": supplier,
                "supplier_invoice_number": f"{supplier.removeprefix('sup-').upper()}-{31_400 + i}",
                "po_id": po_id,
                "status": ("APPROVED", "EXCEPTION", "EXCEPTION")[scenario],
                "invoice_date": invoice_date.isoformat(),
                "received_at": iso(delivered + timedelta(days=2)),
                "due_date": (invoice_date + timedelta(days=30)).isoformat(),
                "lines": inv_lines,
                "total": money(sum((amount_of(x["amount"]) for x in inv_lines), Decimal(0))),
                "exceptions": ([], ["price_variance"], ["no_receipt"])[scenario],
            }

    # -- inventory (issue 11) --
    def inventory_book(self) -> InventoryBook:
        return self.inventory

    def inventory_route(
        self,
        method: str,
        route: tuple[str, ...],
        query: Mapping[str, list[str]],
        body: bytes,
        now: datetime,
    ) -> tuple[int, Any, dict[str, str]] | None:
        """Locations, par levels, usage history and expedites; None: not one of them."""
        match (method, route):
            case ("GET", ("facilities", facility_id, "locations")):
                self._known_facility(facility_id)
                rows = [
                    loc.model_dump(mode="json") for loc in self.inventory.locations(facility_id)
                ]
                return 200, self.page(rows, query), {}
            case ("GET", ("facilities", facility_id, "locations", location_id, "par-levels")):
                self._known_facility(facility_id)
                try:
                    levels = self.inventory.par_levels(facility_id, location_id)
                except ConnectorError:
                    raise not_found(f"location {location_id}") from None
                return 200, self.page([self.par_level(p) for p in levels], query), {}
            case ("GET", ("facilities", facility_id, "usage")):
                self._known_facility(facility_id)
                items = list(dict.fromkeys(query.get("item_id") or ()))
                if not items:
                    raise bad_parameter("item_id", "missing", "name at least one item_id")
                if len(items) > MAX_STOCK_ITEMS:
                    raise bad_parameter(
                        "item_id", "too_many", f"at most {MAX_STOCK_ITEMS} items a request"
                    )
                days_raw = first(query, "days") or "30"
                if not days_raw.isdigit() or not 1 <= int(days_raw) <= 365:
                    raise bad_parameter("days", "out_of_range", "days must be 1 to 365")
                used = self.inventory.usage_history(facility_id, items, int(days_raw))
                return 200, self.page([u.model_dump(mode="json") for u in used], query), {}
            case ("POST", ("requisitions", req_id, "expedite")):
                return 200, self.expedite_requisition(req_id, body, now), {}
        return None

    def _known_facility(self, facility_id: str) -> None:
        if facility_id not in FACILITIES:
            raise not_found(f"facility {facility_id}")

    @staticmethod
    def par_level(level: ParLevel) -> dict[str, Any]:
        return {
            "facility_id": level.facility_id,
            "location_id": level.location_id,
            "item_id": level.item_id,
            "description": level.description,
            "item_class": level.item_class,
            "on_hand": level.on_hand,
            "on_order": level.on_order,
            "par_level": level.par_level,
            "reorder_point": level.reorder_point,
            "primary_supplier": {
                "supplier_id": level.supplier_id,
                "lead_time_days": level.lead_time_days,
            },
            "unit_price": money(level.unit_price),
        }

    def expedite_requisition(self, req_id: str, body: bytes, now: datetime) -> dict[str, Any]:
        try:
            reason = _ExpediteIn.model_validate_json(body or b"{}").reason
        except ValidationError:
            raise invalid(
                [{"in": "body", "path": "/reason", "code": "invalid", "detail": "a string"}]
            ) from None
        with self.lock:
            record = self.requisitions.get(req_id)
            if record is None:
                raise not_found(f"requisition {req_id}")
            expected = datetime.fromisoformat(record["expected_delivery"])
            when = self.inventory.expedite(req_id, expected, now)
            record["expected_delivery"] = iso(when)
            if reason:
                record["reason"] = (record["reason"] + f"; expedite: {reason}")[:500]
            return {
                "requisition_id": req_id,
                "status": record["status"],
                "expedited": True,
                "expected_delivery": iso(when),
            }

    # -- procurement (issue 11) --
    # The item master's crosswalk, budget reservations and purchase orders, kept by the
    # in-process sandbox's ProcurementBook (the same seed); the orders placed also go to
    # ``purchase_orders``, so GET /purchase-orders/{po_id} reads them.
    def procurement_reset(self) -> None:
        from careflow.adapters.sandbox_procurement import ProcurementBook

        self.procurement = ProcurementBook()

    def procurement_route(
        self,
        method: str,
        route: tuple[str, ...],
        query: Mapping[str, list[str]],
        body: bytes,
        now: datetime,
    ) -> tuple[int, Any, dict[str, str]] | None:
        """A procurement request, or None for the routes above."""
        match method, route:
            case "GET", ("item-crosswalk",):
                return 200, self.page(self._crosswalk(query), query), {}
            case "GET", ("cost-centers", cc_id, "budget") if cc_id in self.procurement.budgets:
                year = first(query, "fiscal_year") or str(now.year)
                if year != str(now.year):
                    raise not_found(f"the {year} budget of {cc_id}")
                found = self.procurement.budget(cc_id, now)
                assert found is not None
                return 200, self._budget_json(found, now), {}
            case "POST", ("budget-reservations",):
                return self._reserve(body, now)
            case "POST", ("budget-reservations", reservation_id, "release"):
                if reservation_id not in self.procurement.reservations:
                    raise not_found(f"budget reservation {reservation_id}")
                held = self.procurement.release(reservation_id, now)
                return 200, self._reservation_json(held), {}
            case "POST", ("purchase-orders",):
                return self._place_order(body, now)
        return None

    def _crosswalk(self, query: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        from careflow.canonical.procurement import ItemIdentifiers

        facility = first(query, "facility_id")
        if facility is None:
            raise bad_parameter("facility_id", "missing", "facility_id is required")
        if facility not in FACILITIES:
            raise not_found(f"facility {facility}")
        fields = ("local_code", "manufacturer", "catalog_number", "gtin", "unspsc")
        ids = ItemIdentifiers(facility_id=facility, **{f: first(query, f) for f in fields})
        return [
            {
                "matched_on": m.matched_on,
                "item": {
                    **m.item.model_dump(mode="json", exclude={"contract_price"}),
                    "contract_price": money(m.item.contract_price),
                },
            }
            for m in self.procurement.crosswalk(ids)
        ]

    @staticmethod
    def _budget_json(found: Any, now: datetime) -> dict[str, Any]:
        return {
            "cost_center_id": found.cost_center_id,
            "facility_id": found.facility_id,
            "fiscal_year": found.fiscal_year,
            "period_start": date(found.fiscal_year, 1, 1).isoformat(),
            "period_end": date(found.fiscal_year, 12, 31).isoformat(),
            "budget": money(found.budget),
            "committed": money(found.committed),
            "spent": money(found.spent),
            "available": money(found.available),
            "as_of": iso(now),
        }

    def _reservation_json(self, held: Any) -> dict[str, Any]:
        reference = next(
            (
                ref
                for ref, rid in self.procurement.reservation_refs.items()
                if rid == held.reservation_id
            ),
            "",
        )
        return {
            "reservation_id": held.reservation_id,
            "reference": reference,
            "cost_center_id": held.cost_center_id,
            "amount": money(held.amount),
            "status": held.status,
            "available": money(held.available),
        }

    @staticmethod
    def _body(model: type[BaseModel], body: bytes) -> Any:
        try:
            return model.model_validate_json(body or b"null")
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                raise Problem(
                    400, "bad-request", "The request is malformed", "the body is not JSON"
                ) from None
            raise invalid(
                [
                    {
                        "in": "body",
                        "path": json_pointer(e["loc"]),
                        "code": e["type"],
                        "detail": e["msg"],
                    }
                    for e in exc.errors()
                ]
            ) from None

    def _reserve(self, body: bytes, now: datetime) -> tuple[int, Any, dict[str, str]]:
        from careflow.canonical.procurement import BudgetReservationRequest

        req = self._body(_ReservationIn, body)
        book = self.procurement
        budget = book.budgets.get(req.cost_center_id)
        if budget is None or budget[0] != req.facility_id:
            raise invalid(
                [{"in": "body", "path": "/cost_center_id", "code": "unknown_cost_center",
                  "detail": "not one of the facility's cost centers"}]
            )  # fmt: skip
        repeat = req.reference in book.reservation_refs
        held = book.reserve(
            BudgetReservationRequest(
                reference=req.reference,
                cost_center_id=req.cost_center_id,
                facility_id=req.facility_id,
                amount=_amount(req.amount),
                requisition_id=req.requisition_id,
            ),
            now,
        )
        return (200 if repeat else 201), self._reservation_json(held), {}

    def _place_order(self, body: bytes, now: datetime) -> tuple[int, Any, dict[str, str]]:
        from careflow.canonical.procurement import PurchaseOrderLine, PurchaseOrderRequest

        req = self._body(_OrderIn, body)
        book = self.procurement
        errors = []
        if req.facility_id not in FACILITIES:
            errors.append(("/facility_id", "unknown_facility", "no such facility"))
        if book.budgets.get(req.cost_center_id, ("",))[0] != req.facility_id:
            errors.append(("/cost_center_id", "unknown_cost_center", "not the facility's"))
        held = book.reservations.get(req.reservation_id or "")
        if (
            req.reservation_id is not None
            and req.reference not in book.po_refs
            and (held is None or held.status != "RESERVED")
        ):
            errors.append(("/reservation_id", "not_reserved", "no such reservation held"))
        errors += [
            (f"/lines/{i}/item_id", "unknown_item", "no such item")
            for i, line in enumerate(req.lines)
            if line.item_id not in book.catalog
        ]
        if errors:
            raise invalid([{"in": "body", "path": p, "code": c, "detail": d} for p, c, d in errors])
        repeat = req.reference in book.po_refs
        po = book.create_purchase_order(
            PurchaseOrderRequest(
                reference=req.reference,
                facility_id=req.facility_id,
                supplier_id=req.supplier_id,
                cost_center_id=req.cost_center_id,
                reservation_id=req.reservation_id,
                lines=tuple(
                    PurchaseOrderLine(
                        item_id=x.item_id, quantity=x.quantity, unit_price=_amount(x.unit_price)
                    )
                    for x in req.lines
                ),
                needed_by=req.needed_by,
            ),
            now,
        )
        with self.lock:
            if po.po_id not in self.purchase_orders:
                self.purchase_orders[po.po_id] = {
                    "po_id": po.po_id,
                    "requisition_id": None,
                    "status": po.status,
                    "supplier_id": po.supplier_id,
                    "facility_id": po.facility_id,
                    "cost_center_id": req.cost_center_id,
                    "ordered_at": iso(po.ordered_at),
                    "expected_delivery": iso(po.expected_delivery or po.ordered_at),
                    "lines": [
                        {
                            "line_number": n,
                            "item_id": x.item_id,
                            "quantity": x.quantity,
                            "unit_price": money(_amount(x.unit_price)),
                            "received_quantity": 0,
                        }
                        for n, x in enumerate(req.lines, start=1)
                    ],
                    "total": money(po.total),
                }
            out = json.loads(json.dumps(self.purchase_orders[po.po_id]))
        headers = {} if repeat else {"Location": f"{BASE_PATH}/purchase-orders/{po.po_id}"}
        return (200 if repeat else 201), out, headers


def _handler(server: ErpSandboxServer) -> type[BaseHTTPRequestHandler]:
    class Handler(SandboxHandler):
        error_type = "application/problem+json"
        malformed_body = b'{"data": [{"item_id": '

        def error_body(self, status: int, kind: str, message: str) -> Any:
            title = "Too many requests" if status == 429 else "Unavailable"
            code = "throttled" if status == 429 else "unavailable"
            return Problem(status, code, title, message).body

        def _problem(self, problem: Problem) -> None:
            self._send(problem.status, problem.body, problem.headers)

        def _authorized(self) -> bool:
            if server.token is None:
                return True
            if self.headers.get("Authorization", "") == f"Bearer {server.token}":
                return True
            self._problem(
                Problem(
                    401,
                    "unauthorized",
                    "Unauthorized",
                    "a valid bearer token is required",
                    headers={"WWW-Authenticate": 'Bearer realm="erp"'},
                )
            )
            return False

        def _route(self, method: str) -> None:
            with server.lock:
                server.requests += 1
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if not url.path.startswith(BASE_PATH + "/"):
                self._problem(not_found("the endpoint"))
                return
            if self.apply_fault(server.faults) or not self._authorized():
                return
            parts = [unquote(p) for p in url.path[len(BASE_PATH) :].split("/") if p]
            query = parse_qs(url.query, keep_blank_values=True)
            try:
                status, payload, headers = server.handle(method, parts, query, body)
            except Problem as problem:
                self._problem(problem)
                return
            self._send(status, payload, headers)

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PUT(self) -> None:
            self._route("PUT")

        def do_PATCH(self) -> None:
            self._route("PATCH")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return Handler


# -- procurement (issue 11) --
class _MoneyIn(BaseModel):
    model_config = ConfigDict(strict=True)

    amount: str = Field(pattern=r"^\d{1,15}(\.\d{1,4})?$")
    currency: str = Field(pattern=r"^USD$")


def _amount(value: _MoneyIn) -> Decimal:
    return Decimal(value.amount)


class _ReservationIn(BaseModel):
    model_config = ConfigDict(strict=True)

    reference: str = Field(min_length=1, max_length=128)
    cost_center_id: str = Field(min_length=1)
    facility_id: str = Field(min_length=1)
    requisition_id: str = Field(min_length=1)
    amount: _MoneyIn


class _OrderLineIn(BaseModel):
    model_config = ConfigDict(strict=True)

    item_id: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=100_000)
    unit_price: _MoneyIn


class _OrderIn(BaseModel):
    model_config = ConfigDict(strict=True)

    reference: str = Field(min_length=1, max_length=128)
    facility_id: str = Field(min_length=1)
    supplier_id: str = Field(min_length=1)
    cost_center_id: str = Field(min_length=1)
    reservation_id: str | None = None
    needed_by: AwareDatetime | None = None
    lines: list[_OrderLineIn] = Field(min_length=1, max_length=200)


# -- inventory (issue 11) --
class _ExpediteIn(BaseModel):
    model_config = ConfigDict(strict=True)

    reason: str = Field(default="", max_length=200)
