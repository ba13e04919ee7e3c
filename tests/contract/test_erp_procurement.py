"""The ERP's procurement operations (issue 11) against docs/erp-openapi.yaml: the REST
adapter reads the document's examples and sends only what it documents; over real HTTP the
sandbox server answers only documented shapes, and agrees with the in-process sandbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from careflow import clock
from careflow.adapters.erp_rest import PROCUREMENT_OPERATIONS, ErpRestAdapter
from careflow.adapters.http import HttpClient, RetryPolicy
from careflow.adapters.sandbox import Sandbox
from careflow.canonical.procurement import (
    BudgetReservationRequest,
    ItemIdentifiers,
    PurchaseOrderLine,
    PurchaseOrderRequest,
)
from careflow.localcloud.sandboxes.erp_server import BASE_PATH, ErpSandboxServer
from tests.unit.test_erp_openapi import (
    _deref,
    _strict,
    assert_documented_response,
    load_spec,
    operation_for,
    schema_errors,
)

NOW = datetime(2026, 3, 2, 14, 5, tzinfo=UTC)


def _example(template: str, method: str, status: str) -> object:
    spec = load_spec()
    answer = _deref(spec, spec["paths"][template][method]["responses"][status])
    return answer["content"]["application/json"]["example"]


def documented() -> tuple[ErpRestAdapter, list[httpx.Request]]:
    """The adapter against a fake answering the document's examples, checking each request's
    query parameters and body against the document."""
    seen: list[httpx.Request] = []
    prefix = "/careflow/v1"

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        template, op = operation_for(request.method, request.url.path.removeprefix(prefix))
        spec = load_spec()
        params = [_deref(spec, p) for p in op.get("parameters", [])]
        assert set(request.url.params.keys()) <= {p["name"] for p in params if p["in"] == "query"}
        if "requestBody" in op:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            errors = schema_errors(_strict(schema), json.loads(request.content))
            assert not errors, (template, errors)
            return httpx.Response(201, json=_example(template, "post", "201"))
        method = request.method.lower()
        if template == "/purchase-orders/{po_id}":
            body = _example("/purchase-orders", "post", "201")
        elif template == "/cost-centers/{cost_center_id}/budget":
            body = {
                "cost_center_id": "cc-fac-north-ortho",
                "facility_id": "fac-north",
                "fiscal_year": 2026,
                "period_start": "2026-01-01",
                "period_end": "2026-12-31",
                **{
                    k: {"amount": v, "currency": "USD"}
                    for k, v in (
                        ("budget", "480000.00"),
                        ("committed", "0.00"),
                        ("spent", "391200.00"),
                        ("available", "88800.00"),
                    )
                },
                "as_of": "2026-03-02T14:05:00+00:00",
            }
            errors = schema_errors(_strict({"$ref": "#/components/schemas/Budget"}), body)
            assert not errors, errors
        else:
            body = _example(template, method, "200")
        return httpx.Response(200, json=body)

    http = HttpClient(
        "erp",
        "https://erp-facade.example-hospital.org" + prefix,
        transport=httpx.MockTransport(handle),
        sleep=lambda _: None,
        policy=RetryPolicy(max_attempts=1),
    )
    return ErpRestAdapter(http), seen


def test_every_procurement_operation_is_documented():
    spec = load_spec()
    for method, template in PROCUREMENT_OPERATIONS:
        assert method.lower() in spec["paths"][template], f"{method} {template}"


def test_the_adapter_reads_the_documented_procurement_examples():
    erp, seen = documented()
    [match] = erp.crosswalk(ItemIdentifiers(facility_id="fac-north", local_code="NV-10442"))
    assert (match.matched_on, match.item.item_id) == ("local_code", "IMP-TKA-FEM-5")
    assert match.item.contract_price == Decimal("2450.00")
    assert erp.budget("cc-fac-north-ortho").available == Decimal("88800.00")
    held = erp.reserve_budget(
        BudgetReservationRequest(
            reference="pa-0a1b2c3d:budget",
            cost_center_id="cc-fac-north-ortho",
            facility_id="fac-north",
            amount=Decimal("4900.00"),
            requisition_id="RQ-7101",
        )
    )
    assert (held.reservation_id, held.status) == ("BR-3001", "RESERVED")
    assert erp.release_budget("BR-3001").status == "RELEASED"
    po = erp.create_purchase_order(
        PurchaseOrderRequest(
            reference="pa-0a1b2c3d:sup-orthoco",
            facility_id="fac-north",
            supplier_id="sup-orthoco",
            cost_center_id="cc-fac-north-ortho",
            reservation_id="BR-3001",
            lines=(
                PurchaseOrderLine(item_id="IMP-TKA-FEM-5", quantity=2, unit_price=Decimal("2450")),
            ),
        )
    )
    assert (po.po_id, po.status, po.total) == ("PO-6001", "OPEN", Decimal("4900.00"))
    assert erp.purchase_order_status("PO-6001").status == "OPEN"
    assert [(r.method, r.url.path.removeprefix("/careflow/v1")) for r in seen] == [
        ("GET", "/item-crosswalk"),
        ("GET", "/cost-centers/cc-fac-north-ortho/budget"),
        ("POST", "/budget-reservations"),
        ("POST", "/budget-reservations/BR-3001/release"),
        ("POST", "/purchase-orders"),
        ("GET", "/purchase-orders/PO-6001"),
    ]
    assert json.loads(seen[4].content)["lines"][0]["unit_price"] == {
        "amount": "2450.00",
        "currency": "USD",
    }


# -- over real HTTP ---------------------------------------------------------------------------
class Checked(httpx.BaseTransport):
    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        content = response.read()
        response.close()
        path = request.url.path.removeprefix(BASE_PATH)
        assert_documented_response(request.method, path, response.status_code, json.loads(content))
        return httpx.Response(response.status_code, headers=response.headers, content=content)


@pytest.fixture(scope="module")
def server():
    previous = clock.set_clock(clock.VirtualClock(NOW, speed=0))
    srv = ErpSandboxServer().start()
    yield srv
    srv.stop()
    clock.set_clock(previous)


@pytest.fixture
def erp(server):
    server.reset()
    http = HttpClient(
        "erp", server.base_url, transport=Checked(), policy=RetryPolicy(max_attempts=1)
    )
    return ErpRestAdapter(http)


def test_both_facilities_codes_crosswalk_alike_over_http_and_in_process(erp):
    in_process = Sandbox.seeded(NOW)
    for ids in (
        ItemIdentifiers(facility_id="fac-north", local_code="NV-10442"),
        ItemIdentifiers(facility_id="fac-south", local_code="SB-7781"),
        ItemIdentifiers(
            facility_id="fac-south", manufacturer="Stryker", catalog_number="5510-F-501"
        ),
        ItemIdentifiers(facility_id="fac-north", unspsc="42295464"),
        ItemIdentifiers(facility_id="fac-north", local_code="NV-00000"),
    ):
        assert list(erp.crosswalk(ids)) == list(in_process.crosswalk(ids))
    [north] = erp.crosswalk(ItemIdentifiers(facility_id="fac-north", local_code="NV-10442"))
    [south] = erp.crosswalk(ItemIdentifiers(facility_id="fac-south", local_code="SB-7781"))
    assert north.item == south.item and north.item.manufacturer == "Stryker"


def test_reserve_order_and_release_over_http(erp):
    before = erp.budget("cc-fac-north-ortho")
    assert before is not None and before.available == Decimal("88800.00")
    request = BudgetReservationRequest(
        reference="pa-1:budget",
        cost_center_id="cc-fac-north-ortho",
        facility_id="fac-north",
        amount=Decimal("4900.00"),
        requisition_id="RQ-1",
    )
    held = erp.reserve_budget(request)
    assert erp.reserve_budget(request) == held  # idempotent on the reference
    assert held.status == "RESERVED" and held.available == Decimal("83900.00")
    order = PurchaseOrderRequest(
        reference="pa-1:sup-orthoco",
        facility_id="fac-north",
        supplier_id="sup-orthoco",
        cost_center_id="cc-fac-north-ortho",
        reservation_id=held.reservation_id,
        lines=(PurchaseOrderLine(item_id="IMP-TKA-FEM-5", quantity=2, unit_price=Decimal("2450")),),
        needed_by=NOW,
    )
    po = erp.create_purchase_order(order)
    assert erp.create_purchase_order(order) == po
    assert erp.purchase_order_status(po.po_id).status == "OPEN"
    assert erp.budget("cc-fac-north-ortho").committed == Decimal("4900.00")
    short = erp.reserve_budget(
        request.model_copy(
            update={"reference": "pa-2:budget", "cost_center_id": "cc-fac-north-endo"}
        )
    )
    assert short.status == "INSUFFICIENT_FUNDS" and short.available == Decimal("2750.00")
    assert erp.release_budget(short.reservation_id).status == "INSUFFICIENT_FUNDS"
    assert erp.budget("cc-nowhere") is None
