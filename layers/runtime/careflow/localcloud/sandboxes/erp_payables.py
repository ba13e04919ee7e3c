"""The ERP sandbox server's accounts payable routes (issue 11), mixed into
:class:`careflow.localcloud.sandboxes.erp_server.ErpSandboxServer`: a supplier's invoices
by its own number, contract prices, approving an invoice for payment and recording AP's
exception actions (both idempotent). Documented in ``docs/erp-openapi.yaml``.

Contract prices are the in-process sandbox's (``careflow.adapters.sandbox_payables``), so
both ERP connectors price alike.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from careflow.adapters.sandbox_payables import ACTION_STATUS, CONTRACT_PRICES

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


class PayablesRoutes:
    """State and routes; ``handle_payables`` answers None for a request that is not its."""

    if TYPE_CHECKING:
        lock: threading.RLock
        invoices: dict[str, dict[str, Any]]
        suppliers: list[str]

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
