"""The ERP sandbox server's accounts payable routes (issue 11), mixed into
:class:`careflow.localcloud.sandboxes.erp_server.ErpSandboxServer`: a supplier's invoices
by its own number, contract prices, approving an invoice for payment, recording AP's
exception actions and posting a goods receipt against a purchase order (all idempotent).
Documented in ``docs/erp-openapi.yaml``.

Contract prices are the in-process sandbox's (``careflow.adapters.sandbox_payables``), so
both ERP connectors price alike.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from careflow.adapters.sandbox_payables import ACTION_STATUS, CONTRACT_PRICES, InvoiceCase

_Id = Field(min_length=1, max_length=128)


class _ApprovalIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    reference: str = _Id
    approved_by: str = _Id
    reason: str = Field(default="", max_length=500)


class _MoneyIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    amount: str = Field(pattern=r"^-?\d{1,15}(\.\d{1,4})?$")
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class _ActionIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    reference: str = _Id
    action: str = Field(pattern=r"^(HOLD|ACCEPT_VARIANCE|REQUEST_CREDIT_MEMO|RETURN|REJECT)$")
    causes: list[str] = Field(max_length=10)
    queue: str = Field(min_length=1, max_length=64)
    actor: str = _Id
    variance: _MoneyIn | None = None
    reason: str = Field(default="", max_length=500)


class _ReceiptLineIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    po_line_number: int = Field(ge=1)
    item_id: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=100_000)
    lot_number: str | None = Field(default=None, min_length=1, max_length=64)
    serial_number: str | None = Field(default=None, min_length=1, max_length=64)


class _ReceiptIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    reference: str = _Id
    po_id: str = Field(min_length=1, max_length=64)
    facility_id: str = Field(min_length=1, max_length=64)
    received_at: AwareDatetime
    received_at_use: bool = False
    lines: list[_ReceiptLineIn] = Field(min_length=1, max_length=200)


class PayablesRoutes:
    """State and routes; ``handle_payables`` answers None for a request that is not its."""

    if TYPE_CHECKING:
        lock: threading.RLock
        invoices: dict[str, dict[str, Any]]
        suppliers: list[str]
        purchase_orders: dict[str, dict[str, Any]]
        goods_receipts: dict[str, dict[str, Any]]

        def page(self, rows: Sequence[Any], query: Mapping[str, list[str]]) -> dict[str, Any]: ...

    def reset_payables(self) -> None:
        self.contract_prices: dict[tuple[str, str], dict[str, Any]] = {}
        from careflow.localcloud.sandboxes.erp_server import money

        for supplier, items in CONTRACT_PRICES.items():
            for item, (contract, price) in items.items():
                self.contract_prices[(supplier, item)] = {
                    "supplier_id": supplier,
                    "item_id": item,
                    "contract_id": contract,
                    "unit_price": money(Decimal(price)),
                }
        self.invoice_approvals: dict[str, dict[str, Any]] = {}
        self.invoice_actions: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.receipt_refs: dict[str, str] = {}  # POST /goods-receipts: reference -> receipt

    # -- demo and test controls (the in-process sandbox has the same) ---------------------------
    def add_invoice_case(self, case: InvoiceCase, *, now: datetime) -> dict[str, Any]:
        """A purchase order, its receipt (unless ``case.receipt`` is false) and the invoice,
        as the ERP holds them."""
        from careflow.localcloud.sandboxes.erp_server import cost_center, iso, money

        today = now.date()
        invoice_date = today - timedelta(days=case.invoice_age_days)
        lines: list[dict[str, Any]] = []
        total = Decimal(0)
        for n, x in enumerate(case.lines, start=1):
            qty = x.invoiced if x.invoiced is not None else x.quantity
            price = Decimal(x.invoice_price or x.po_price)
            lines.append(
                {
                    "line_number": n,
                    "po_line_number": n,
                    "item_id": x.item_id,
                    "quantity": qty,
                    "unit_price": money(price),
                    "amount": money(price * qty),
                }
            )
            total += price * qty
        invoice = {
            "invoice_id": case.invoice_id,
            "supplier_id": case.supplier_id,
            "supplier_invoice_number": case.invoice_number,
            "po_id": case.po_id,
            "status": "RECEIVED",
            "invoice_date": invoice_date.isoformat(),
            "received_at": iso(
                (now - timedelta(days=case.received_days_ago)).replace(microsecond=0)
            ),
            "due_date": (invoice_date + timedelta(days=30)).isoformat(),
            "lines": lines,
            "total": money(total),
            "exceptions": [],
        }
        with self.lock:
            self.purchase_orders[case.po_id] = {
                "po_id": case.po_id,
                "requisition_id": None,
                "status": "OPEN",
                "supplier_id": case.supplier_id,
                "facility_id": case.facility_id,
                "cost_center_id": cost_center(case.facility_id),
                "ordered_at": iso(now - timedelta(days=case.invoice_age_days + 5)),
                "lines": [
                    {
                        "line_number": n,
                        "item_id": x.item_id,
                        "quantity": x.quantity,
                        "unit_price": money(Decimal(x.po_price)),
                        "received_quantity": 0,
                    }
                    for n, x in enumerate(case.lines, start=1)
                ],
                "total": money(
                    sum((Decimal(x.po_price) * x.quantity for x in case.lines), Decimal(0))
                ),
            }
            if case.receipt:
                self.post_receipt(
                    case.po_id,
                    now - timedelta(days=case.invoice_age_days + 1),
                    {
                        n: x.received if x.received is not None else x.quantity
                        for n, x in enumerate(case.lines, start=1)
                    },
                )
            self.invoices[case.invoice_id] = invoice
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
    ) -> dict[str, Any]:
        """Only the supplier's invoice, for a purchase order the ERP already holds (its
        receipt is whoever posted it): one line per PO line, its quantity at its price."""
        from careflow.localcloud.sandboxes.erp_server import amount_of, iso, money

        invoice_date = now.date() - timedelta(days=invoice_age_days)
        with self.lock:
            po = self.purchase_orders[po_id]
            lines = [
                {
                    "line_number": n,
                    "po_line_number": x["line_number"],
                    "item_id": x["item_id"],
                    "quantity": x["quantity"],
                    "unit_price": dict(x["unit_price"]),
                    "amount": money(amount_of(x["unit_price"]) * x["quantity"]),
                }
                for n, x in enumerate(po["lines"], start=1)
            ]
            invoice = {
                "invoice_id": invoice_id,
                "supplier_id": po["supplier_id"],
                "supplier_invoice_number": invoice_number,
                "po_id": po_id,
                "status": "RECEIVED",
                "invoice_date": invoice_date.isoformat(),
                "received_at": iso(
                    (now - timedelta(days=received_days_ago)).replace(microsecond=0)
                ),
                "due_date": (invoice_date + timedelta(days=30)).isoformat(),
                "lines": lines,
                "total": money(sum((amount_of(x["amount"]) for x in lines), Decimal(0))),
                "exceptions": [],
            }
            self.invoices[invoice_id] = invoice
        return invoice

    def add_duplicate_invoice(self, invoice_id: str, original_id: str, *, now: datetime) -> None:
        """The supplier sends ``original_id`` again: a new invoice with its number and total."""
        from careflow.localcloud.sandboxes.erp_server import iso

        with self.lock:
            copy = json.loads(json.dumps(self.invoices[original_id]))
            copy |= {"invoice_id": invoice_id, "status": "RECEIVED", "exceptions": []}
            copy["received_at"] = iso(now.replace(microsecond=0))
            self.invoices[invoice_id] = copy

    def post_receipt(
        self, po_id: str, at: datetime, quantities: dict[int, int] | None = None
    ) -> dict[str, Any]:
        """Receiving posts a goods receipt (every line's full quantity by default)."""
        from careflow.localcloud.sandboxes.erp_server import iso

        with self.lock:
            po = self.purchase_orders[po_id]
            wanted = quantities or {x["line_number"]: x["quantity"] for x in po["lines"]}
            n = sum(1 for g in self.goods_receipts.values() if g["po_id"] == po_id) + 1
            receipt = {
                "receipt_id": f"GR-{po_id}-{n}",
                "po_id": po_id,
                "facility_id": po["facility_id"],
                "received_at": iso(at.replace(microsecond=0)),
                "received_at_use": False,
                "lines": [
                    {"po_line_number": x["line_number"], "item_id": x["item_id"], "quantity": q}
                    for x in po["lines"]
                    if (q := wanted.get(x["line_number"], 0)) > 0
                ],
            }
            self._receive_into(po, wanted)
            self.goods_receipts[receipt["receipt_id"]] = receipt
            return receipt

    def handle_payables(
        self,
        method: str,
        parts: Sequence[str],
        query: Mapping[str, list[str]],
        body: bytes,
        now: datetime,
    ) -> tuple[int, Any, dict[str, str]] | None:
        from careflow.localcloud.sandboxes.erp_server import first, not_found

        match method, tuple(parts):
            case "GET", ("suppliers", supplier_id, "invoices"):
                if supplier_id not in self.suppliers:
                    raise not_found(f"supplier {supplier_id}")
                number = first(query, "supplier_invoice_number")
                with self.lock:
                    rows = [
                        json.loads(json.dumps(i))
                        for _, i in sorted(self.invoices.items())
                        if i["supplier_id"] == supplier_id
                        and number in (None, i["supplier_invoice_number"])
                    ]
                return 200, self.page(rows, query), {}
            case "GET", ("suppliers", supplier_id, "contract-prices", item_id):
                found = self.contract_prices.get((supplier_id, item_id))
                if found is None:
                    raise not_found(f"a contract price of {supplier_id} for {item_id}")
                return 200, dict(found), {}
            case "POST", ("invoices", invoice_id, "approval"):
                return self._approve(invoice_id, body)
            case "POST", ("invoices", invoice_id, "exception-actions"):
                return self._record_action(invoice_id, body)
            case "POST", ("goods-receipts",):
                return self._receive(body)
        return None

    def _parse(self, shape: type[BaseModel], body: bytes) -> Any:
        from careflow.localcloud.sandboxes.erp_server import Problem, invalid, json_pointer

        try:
            return shape.model_validate_json(body or b"null")
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                raise Problem(
                    400, "bad-request", "The request is malformed", "the body is not JSON"
                ) from None
            raise invalid(
                [
                    {"in": "body", "path": json_pointer(e["loc"]), "code": e["type"]}
                    | {"detail": e["msg"]}
                    for e in exc.errors()
                ]
            ) from None

    def _invoice_or_404(self, invoice_id: str) -> dict[str, Any]:
        from careflow.localcloud.sandboxes.erp_server import not_found

        found = self.invoices.get(invoice_id)
        if found is None:
            raise not_found(f"invoice {invoice_id}")
        return found

    def _approve(self, invoice_id: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
        from careflow.localcloud.sandboxes.erp_server import invalid

        req = self._parse(_ApprovalIn, body)
        with self.lock:
            invoice = self._invoice_or_404(invoice_id)
            done = self.invoice_approvals.get(invoice_id)
            if done is not None:
                return 200, dict(done), {}
            if invoice["status"] == "REJECTED":
                raise invalid(
                    [
                        {
                            "in": "path",
                            "path": "invoice_id",
                            "code": "rejected_invoice",
                            "detail": "a rejected invoice cannot be approved",
                        }
                    ]
                )
            invoice["status"] = "APPROVED"
            out = {
                "invoice_id": invoice_id,
                "reference": req.reference,
                "action_id": f"APR-{len(self.invoice_approvals) + 1:05d}",
                "status": "APPROVED",
            }
            self.invoice_approvals[invoice_id] = out
            return 201, dict(out), {}

    def _record_action(self, invoice_id: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
        req = self._parse(_ActionIn, body)
        key = (invoice_id, req.reference, req.action)
        with self.lock:
            invoice = self._invoice_or_404(invoice_id)
            done = self.invoice_actions.get(key)
            if done is not None:
                return 200, dict(done), {}
            status = ACTION_STATUS[req.action]
            invoice["status"] = status
            if req.causes:
                known = {"price_variance", "quantity_variance", "no_receipt"}
                known |= {"duplicate_invoice", "missing_po"}
                invoice["exceptions"] = sorted(
                    set(invoice["exceptions"]) | (set(req.causes) & known)
                )
            out = {
                "invoice_id": invoice_id,
                "reference": req.reference,
                "action_id": f"APX-{len(self.invoice_actions) + 1:05d}",
                "status": status,
            }
            self.invoice_actions[key] = out
            return 201, dict(out), {}

    def _receive(self, body: bytes) -> tuple[int, Any, dict[str, str]]:
        """POST /goods-receipts: idempotent on the reference; 404 an unknown PO, 409 more
        than a line's open quantity, a line the PO lacks or another item, 422 the rest."""
        from careflow.localcloud.sandboxes.erp_server import (
            BASE_PATH,
            Problem,
            invalid,
            iso,
            not_found,
        )

        req = self._parse(_ReceiptIn, body)
        with self.lock:
            done = self.receipt_refs.get(req.reference)
            if done is not None:
                return 200, json.loads(json.dumps(self.goods_receipts[done])), {}
            po = self.purchase_orders.get(req.po_id)
            if po is None:
                raise not_found(f"purchase order {req.po_id}")
            if po["facility_id"] != req.facility_id:
                raise invalid(
                    [{"in": "body", "path": "/facility_id", "code": "other_facility",
                      "detail": "not the purchase order's facility"}]
                )  # fmt: skip
            lines = {x["line_number"]: x for x in po["lines"]}
            conflicts: list[tuple[str, str, str]] = []
            if po["status"] in ("CLOSED", "CANCELLED"):
                conflicts.append(("/po_id", "not_receivable", f"the order is {po['status']}"))
            wanted: dict[int, int] = {}
            for i, x in enumerate(req.lines):
                line = lines.get(x.po_line_number)
                if line is None:
                    conflicts.append(
                        (f"/lines/{i}/po_line_number", "unknown_po_line", "no such PO line")
                    )
                    continue
                if x.item_id != line["item_id"]:
                    conflicts.append((f"/lines/{i}/item_id", "other_item", "not the line's"))
                wanted[x.po_line_number] = wanted.get(x.po_line_number, 0) + x.quantity
                if wanted[x.po_line_number] > line["quantity"] - line["received_quantity"]:
                    conflicts.append(
                        (f"/lines/{i}/quantity", "over_receipt", "beyond the open quantity")
                    )
            if conflicts:
                n = len(conflicts)
                raise Problem(
                    409,
                    "conflict",
                    "The request conflicts with the resource's state",
                    f"{n} line{'s conflict' if n > 1 else ' conflicts'} with the purchase order",
                    [{"in": "body", "path": p, "code": c, "detail": d} for p, c, d in conflicts],
                )
            n = sum(1 for g in self.goods_receipts.values() if g["po_id"] == req.po_id) + 1
            receipt = {
                "receipt_id": f"GR-{req.po_id}-{n}",
                "reference": req.reference,
                "po_id": req.po_id,
                "facility_id": po["facility_id"],
                "received_at": iso(req.received_at.replace(microsecond=0)),
                "received_at_use": req.received_at_use,
                "lines": [
                    {"po_line_number": x.po_line_number, "item_id": x.item_id,
                     "quantity": x.quantity}
                    | ({"lot_number": x.lot_number} if x.lot_number else {})
                    | ({"serial_number": x.serial_number} if x.serial_number else {})
                    for x in req.lines
                ],
            }  # fmt: skip
            self._receive_into(po, wanted)
            self.goods_receipts[receipt["receipt_id"]] = receipt
            self.receipt_refs[req.reference] = receipt["receipt_id"]
            out = json.loads(json.dumps(receipt))
        return 201, out, {"Location": f"{BASE_PATH}/goods-receipts?po_id={req.po_id}"}

    @staticmethod
    def _receive_into(po: dict[str, Any], quantities: Mapping[int, int]) -> None:
        """Adds the quantities to the PO's lines; RECEIVED once every line is in full."""
        for x in po["lines"]:
            x["received_quantity"] += quantities.get(x["line_number"], 0)
        po["status"] = (
            "RECEIVED"
            if all(x["received_quantity"] >= x["quantity"] for x in po["lines"])
            else "PARTIALLY_RECEIVED"
        )
