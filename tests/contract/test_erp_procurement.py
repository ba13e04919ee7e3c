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
from careflow.canonical.payables import GoodsReceiptRequest, ReceiptLine
from careflow.canonical.procurement import (
    BudgetReservationRequest,
    ItemIdentifiers,
    PurchaseOrderLine,
    PurchaseOrderRequest,
)
from careflow.localcloud.sandboxes.erp_server import BASE_PATH, ErpSandboxServer
from careflow.ports import ConnectorError, ConnectorUnavailable
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


# -- goods receipts at use (a bill-only PO) ---------------------------------------------------
BILL_ONLY = PurchaseOrderRequest(
    reference="rc-1:bill-only:sup-arthrex",
    facility_id="fac-south",
    supplier_id="sup-arthrex",
    cost_center_id="cc-fac-south-ortho",
    lines=(PurchaseOrderLine(item_id="IMP-ACL-SCR-9", quantity=2, unit_price=Decimal("410")),),
)


def _receipt_request(po_id: str, quantity: int = 2, reference: str = "") -> GoodsReceiptRequest:
    return GoodsReceiptRequest(
        reference=reference or f"rc-1:bill-only-receipt:{po_id}",
        po_id=po_id,
        facility_id="fac-south",
        received_at=NOW,
        received_at_use=True,
        lines=(
            ReceiptLine(
                po_line_number=1,
                item_id="IMP-ACL-SCR-9",
                quantity=quantity,
                lot_number="LOT-AS9-0466",
                serial_number="SN-AS-90211",
            ),
        ),
    )


def test_the_adapter_posts_the_documented_goods_receipt():
    erp, seen = documented()
    request = _receipt_request("PO-6001").model_copy(
        update={"reference": "rc-0a1b2c3d:bill-only-receipt:PO-6001"}
    )
    receipt = erp.post_goods_receipt(request)
    assert (receipt.receipt_id, receipt.po_id, receipt.received_at_use) == (
        "GR-PO-6001-1",
        "PO-6001",
        True,
    )
    assert receipt.lines == request.lines
    assert [(q.method, q.url.path) for q in seen] == [("POST", "/careflow/v1/goods-receipts")]
    with pytest.raises(ConnectorUnavailable, match="another reference"):
        erp.post_goods_receipt(request.model_copy(update={"reference": "other"}))


def test_a_bill_only_po_is_received_at_use_alike_over_http_and_in_process(erp):
    in_process = Sandbox.seeded(NOW)
    answers = []
    for port in (erp, in_process):
        po = port.create_purchase_order(BILL_ONLY)
        request = _receipt_request(po.po_id)
        receipt = port.post_goods_receipt(request)
        assert port.post_goods_receipt(request) == receipt  # idempotent on the reference
        assert port.purchase_order_status(po.po_id).status == "RECEIVED"
        payables_po = port.purchase_order(po.po_id)
        assert payables_po is not None and payables_po.lines[0].quantity == 2
        assert list(port.receipts(po.po_id)) == [receipt]
        answers.append(receipt)
    http_receipt, local_receipt = answers
    assert http_receipt == local_receipt
    assert http_receipt.received_at_use and http_receipt.received_at == NOW
    [line] = http_receipt.lines
    assert (line.lot_number, line.serial_number) == ("LOT-AS9-0466", "SN-AS-90211")
    for port in (erp, in_process):  # nothing is left open on the line now
        with pytest.raises(ConnectorError):
            port.post_goods_receipt(_receipt_request(http_receipt.po_id, 1, "rc-1:again"))
        with pytest.raises(ConnectorError):
            port.post_goods_receipt(_receipt_request("PO-0"))


def test_goods_receipt_answers_over_http(server):
    server.reset()
    with httpx.Client(base_url=server.base_url + "/", transport=Checked()) as c:
        order = c.post(
            "purchase-orders",
            json={
                "reference": "rc-2:bill-only:sup-arthrex",
                "facility_id": "fac-south",
                "supplier_id": "sup-arthrex",
                "cost_center_id": "cc-fac-south-ortho",
                "lines": [
                    {
                        "item_id": "IMP-ACL-SCR-9",
                        "quantity": 2,
                        "unit_price": {"amount": "410.00", "currency": "USD"},
                    }
                ],
            },
        )
        po_id = order.json()["po_id"]
        body = json.loads(_receipt_request(po_id, 1).model_dump_json())
        created = c.post("goods-receipts", json=body)
        assert created.status_code == 201
        assert created.json()["lines"][0]["lot_number"] == "LOT-AS9-0466"
        repeat = c.post("goods-receipts", json=body)
        assert (repeat.status_code, repeat.json()) == (200, created.json())
        po = c.get(f"purchase-orders/{po_id}").json()
        assert (po["status"], po["lines"][0]["received_quantity"]) == ("PARTIALLY_RECEIVED", 1)
        unknown = c.post("goods-receipts", json=body | {"reference": "x", "po_id": "PO-0"})
        assert unknown.status_code == 404
        over = c.post(
            "goods-receipts",
            json=body | {"reference": "y", "lines": [body["lines"][0] | {"quantity": 2}]},
        )
        assert over.status_code == 409
        assert [(e["path"], e["code"]) for e in over.json()["errors"]] == [
            ("/lines/0/quantity", "over_receipt")
        ]
        other = c.post(
            "goods-receipts",
            json=body | {"reference": "z", "lines": [body["lines"][0] | {"item_id": "X"}]},
        )
        assert other.status_code == 409
        assert other.json()["errors"][0]["code"] == "other_item"
        bad = c.post(
            "goods-receipts", json={"reference": "", "po_id": po_id, "lines": [{"quantity": 0}]}
        )
        assert bad.status_code == 422
        paths = {e["path"] for e in bad.json()["errors"]}
        assert {"/reference", "/facility_id", "/received_at", "/lines/0/quantity"} <= paths
        assert c.post("goods-receipts", content=b"{").status_code == 400
        rest = c.post("goods-receipts", json=body | {"reference": "w"})
        assert rest.status_code == 201
        assert c.get(f"purchase-orders/{po_id}").json()["status"] == "RECEIVED"
