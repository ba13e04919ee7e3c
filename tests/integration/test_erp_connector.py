"""The ERP side over real HTTP: the ERP sandbox server and the ERP REST adapter. Every answer
the adapter gets is checked against docs/erp-openapi.yaml on the way in."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlparse

import httpx
import pytest

from careflow import clock
from careflow.adapters.erp_rest import ErpRestAdapter
from careflow.adapters.http import HttpClient, NotFound, Rejected, RetryPolicy
from careflow.adapters.sandbox import FACILITIES, ITEMS, STOCK, Sandbox
from careflow.canonical.supply import RequisitionLine, RequisitionRequest
from careflow.localcloud.sandboxes.erp_server import BASE_PATH, ErpSandboxServer
from careflow.ports import ConnectorError, ConnectorUnavailable
from careflow.workflows.surgical_case_readiness.rules import find_shortages
from tests.unit.test_erp_openapi import assert_documented_response

NOW = datetime(2026, 3, 2, 14, 5, tzinfo=UTC)
TOKEN = "erp-test-token"  # a made-up static service token for the sandbox


class StaticToken:
    def token(self) -> str:
        return TOKEN

    def invalidate(self) -> None:
        pass


class CheckedTransport(httpx.BaseTransport):
    """Real HTTP, with each JSON answer validated against the OpenAPI document."""

    checked = 0  # answers validated, all instances

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        content = response.read()
        response.close()
        body = json.loads(content)  # a fault's malformed body fails here: use checked=False
        path = request.url.path.removeprefix(BASE_PATH)
        assert_documented_response(request.method, path, response.status_code, body)
        CheckedTransport.checked += 1
        return httpx.Response(response.status_code, headers=response.headers, content=content)

    def close(self) -> None:
        self._inner.close()


@pytest.fixture(scope="module")
def frozen_clock():
    previous = clock.set_clock(clock.VirtualClock(NOW, speed=0))
    yield
    clock.set_clock(previous)


@pytest.fixture(scope="module")
def running(frozen_clock):
    srv = ErpSandboxServer(token=TOKEN, page_size=2).start()
    yield srv
    srv.stop()


@pytest.fixture
def server(running):
    running.reset()  # seeded stock, no requisitions of other tests, no faults
    yield running
    running.reset()


def erp(server, *, checked=True, **policy):
    sleeps: list[float] = []
    http = HttpClient(
        "erp",
        server.base_url,
        auth=StaticToken(),
        transport=CheckedTransport() if checked else None,
        sleep=sleeps.append,
        rng=random.Random(1),
        policy=RetryPolicy(**{"timeout": 2.0, **policy}),
    )
    return ErpRestAdapter(http), sleeps


def hip_request(quantity: int = 1, reference: str = "appt-1003:sup-jointworks"):
    return RequisitionRequest(
        facility_id="fac-south",
        supplier_id="sup-jointworks",
        lines=(RequisitionLine(item_id="IMP-THA-STEM-12", quantity=quantity),),
        needed_by=NOW + timedelta(days=4),
        reason="shortage for case appt-1003",
        reference=reference,
    )


def requisitions_with(server, reference):
    return [r for r in server.requisitions.values() if r["reference"] == reference]


# -- stock ----------------------------------------------------------------------------------------
def test_positions_match_the_seeded_data(server):
    adapter, _ = erp(server)
    validated = CheckedTransport.checked
    in_process = Sandbox.seeded(NOW)
    asked = [*ITEMS, "IMP-NOT-IN-THE-ERP"]
    pages = -(-len(ITEMS) // 2)  # pages of 2 positions, cursors followed
    for facility in FACILITIES:
        before = server.requests
        positions = adapter.stock_positions(facility, asked)
        assert positions == list(in_process.stock_positions(facility, asked)[: len(ITEMS)])
        assert [p.item_id for p in positions] == list(ITEMS)  # the unknown item is left out
        assert server.requests - before == pages
        for p in positions:
            on_hand, reserved, par = STOCK[facility].get(p.item_id, (0, 0, 0))
            _, supplier, lead, consignment = ITEMS[p.item_id]
            assert (p.on_hand, p.reserved, p.par_level) == (on_hand, reserved, par)
            assert (p.supplier_id, p.lead_time_days, p.consignment) == (supplier, lead, consignment)
    [screw] = adapter.stock_positions("fac-north", ["IMP-SPN-SCR-6545"])
    assert screw.consignment and screw.lead_time_days == 1
    assert CheckedTransport.checked - validated == pages * len(FACILITIES) + 1


def test_an_unknown_facility_is_not_found(server):
    adapter, _ = erp(server)
    with pytest.raises(NotFound, match="404"):
        adapter.stock_positions("fac-nowhere", ["IMP-THA-STEM-12"])


def test_the_demo_hip_stem_shortage_at_fac_south_behaves_like_the_in_process_sandbox(server):
    adapter, _ = erp(server)
    in_process = Sandbox.seeded(NOW)
    case = in_process.cases["appt-1003"]
    for port, transfer in (
        (in_process, in_process.transfer_stock),
        (adapter, server.transfer_stock),
    ):
        [stem] = port.stock_positions("fac-south", ["IMP-THA-STEM-12"])
        assert stem.available == 0
        shortages = find_shortages(
            case, port.stock_positions(case.facility_id, [n.item_id for n in case.supplies])
        )
        assert [(s.item_id, s.needed, s.available, s.supplier_id) for s in shortages] == [
            ("IMP-THA-STEM-12", 1, 0, "sup-jointworks")
        ]
        transfer("IMP-THA-STEM-12", 1, "fac-north", "fac-south")
        [stem] = port.stock_positions("fac-south", ["IMP-THA-STEM-12"])
        assert stem.available == 1
        assert (
            find_shortages(
                case, port.stock_positions("fac-south", [n.item_id for n in case.supplies])
            )
            == []
        )
    with pytest.raises(ConnectorError, match="cannot spare"):
        server.transfer_stock("IMP-THA-STEM-12", 9, "fac-north", "fac-south")


# -- requisitions ---------------------------------------------------------------------------------
def test_a_requisition_is_created_once_when_the_post_is_retried_after_a_503(server):
    adapter, sleeps = erp(server)
    server.faults.server_errors = 1
    created = adapter.create_requisition(hip_request())
    assert len(sleeps) == 1  # one retry
    assert len(requisitions_with(server, "appt-1003:sup-jointworks")) == 1
    assert created.status == "SUBMITTED"
    assert created.expected_delivery == NOW + timedelta(days=5)  # sup-jointworks lead time
    again = adapter.create_requisition(hip_request())
    assert again == created
    assert len(requisitions_with(server, "appt-1003:sup-jointworks")) == 1
    assert adapter.get_requisition(created.requisition_id) == created


def test_an_answer_lost_after_the_erp_committed_does_not_duplicate(server):
    adapter, sleeps = erp(server)
    server.lost_responses = 1  # created, then the 503: the retry must get the same one
    created = adapter.create_requisition(hip_request(reference="appt-7:sup-jointworks"))
    assert len(sleeps) == 1
    assert [r["requisition_id"] for r in requisitions_with(server, "appt-7:sup-jointworks")] == [
        created.requisition_id
    ]


def test_a_bad_requisition_is_rejected_with_field_paths_and_no_values(server):
    adapter, sleeps = erp(server)
    zero = RequisitionRequest.model_construct(
        **(
            dict(hip_request())
            | {"lines": (RequisitionLine.model_construct(item_id="IMP-THA-STEM-12", quantity=0),)}
        )
    )
    with pytest.raises(Rejected) as caught:
        adapter.create_requisition(zero)
    message = str(caught.value)
    assert "422" in message and "body /lines/0/quantity (greater_than_equal)" in message
    assert "got" not in message and "greater than or equal" not in message
    assert sleeps == [] and requisitions_with(server, zero.reference) == []

    unknown = hip_request().model_copy(
        update={"lines": (RequisitionLine(item_id="IMP-MADE-UP", quantity=1),)}
    )
    with pytest.raises(Rejected, match=r"body /lines/0/item_id \(unknown_item\)"):
        adapter.create_requisition(unknown)


def test_an_unknown_requisition_is_not_found(server):
    adapter, _ = erp(server)
    with pytest.raises(NotFound, match=r"GET /requisitions/\{requisition_id\} returned 404"):
        adapter.get_requisition("REQ-0000")


# -- faults ---------------------------------------------------------------------------------------
def test_429_with_retry_after_is_honoured(server):
    adapter, sleeps = erp(server)
    server.faults.rate_limits = 1
    server.faults.retry_after_s = 3
    assert adapter.stock_positions("fac-south", ["IMP-THA-STEM-12"])
    assert sleeps == [3.0]


def test_a_server_that_stays_down_makes_the_connector_unavailable(server):
    adapter, sleeps = erp(server, max_attempts=3)
    server.faults.always_down = True
    with pytest.raises(ConnectorUnavailable, match=r"after 3 attempts \(HTTP 503\)"):
        adapter.create_requisition(hip_request())
    assert len(sleeps) == 2
    assert requisitions_with(server, "appt-1003:sup-jointworks") == []


def test_a_malformed_body_is_unavailable_not_a_crash(server):
    adapter, _ = erp(server, checked=False, max_attempts=1)
    server.faults.malformed = 1
    with pytest.raises(ConnectorUnavailable, match="malformed response body"):
        adapter.stock_positions("fac-south", ["IMP-THA-STEM-12"])


def test_a_bearer_token_is_required(server):
    anonymous = ErpRestAdapter(HttpClient("erp", server.base_url, sleep=lambda _: None))
    with pytest.raises(Rejected, match="401"):
        anonymous.stock_positions("fac-south", ["IMP-THA-STEM-12"])


# -- the rest of the API, as documented ----------------------------------------------------------
def test_every_endpoint_answers_what_the_document_says(server):
    base = urlparse(server.base_url).path
    with httpx.Client(
        base_url=server.base_url + "/", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as c:

        def get(path, expect=200, **params):
            r = c.get(path.lstrip("/"), params=params)
            assert r.status_code == expect, r.text
            assert_documented_response(
                "GET", urlparse(str(r.url)).path.removeprefix(base), expect, r.json()
            )
            return r.json()

        items, cursor = [], None
        while True:
            page = get("/items", limit=3, **({"cursor": cursor} if cursor else {}))
            items += page["data"]
            if not (cursor := page["next"]):
                break
        assert [i["item_id"] for i in items] == list(ITEMS)
        stem = get("/items/IMP-THA-STEM-12")
        local = next(code for code in stem["codes"] if code.get("facility_id") == "fac-south")
        mapped = get("/items", code_system=local["system"], code=local["code"])["data"]
        assert [i["item_id"] for i in mapped] == ["IMP-THA-STEM-12"]
        get("/items", 400, code="X")
        get("/items/NOPE", 404)

        get("/facilities/fac-south/stock", 400, cursor="not-a-cursor")
        everything = get("/facilities/fac-asc/stock", limit=200)["data"]
        assert [p["item_id"] for p in everything] == list(STOCK["fac-asc"])

        assert get("/suppliers/sup-jointworks")["default_lead_time_days"] == 5
        get("/suppliers/sup-nobody", 404)

        orders = get("/purchase-orders", limit=200)["data"]
        assert len(orders) == len(FACILITIES)
        po = get(f"/purchase-orders/{orders[0]['po_id']}")
        by_req = get("/purchase-orders", requisition_id=po["requisition_id"])["data"]
        assert [o["po_id"] for o in by_req] == [po["po_id"]]
        get("/purchase-orders/PO-0", 404)

        receipts = {o["po_id"]: get("/goods-receipts", po_id=o["po_id"])["data"] for o in orders}
        exceptions = get("/invoices", status="EXCEPTION", limit=200)["data"]
        assert sorted(e for i in exceptions for e in i["exceptions"]) == [
            "no_receipt",
            "price_variance",
        ]
        for invoice in exceptions:
            assert get(f"/invoices/{invoice['invoice_id']}") == invoice
            if invoice["exceptions"] == ["no_receipt"]:
                assert receipts[invoice["po_id"]] == []
        get("/invoices/INV-0", 404)
        get("/invoices", 400, status="LOST")

        budget = get("/cost-centers/cc-fac-south-periop/budget")
        assert Decimal(budget["budget"]["amount"]) - Decimal(
            budget["committed"]["amount"]
        ) - Decimal(budget["spent"]["amount"]) == Decimal(budget["available"]["amount"])
        get("/cost-centers/cc-fac-south-periop/budget", 404, fiscal_year=NOW.year - 1)
        get("/cost-centers/cc-nowhere/budget", 404)

        post = c.post("requisitions", content=b"{not json")
        assert post.status_code == 400
        assert_documented_response("POST", "/requisitions", 400, post.json())
        invalid = c.post("requisitions", json={"reference": "x", "lines": []})
        assert invalid.status_code == 422
        assert_documented_response("POST", "/requisitions", 422, invalid.json())
        paths = {e["path"] for e in invalid.json()["errors"]}
        assert {"/facility_id", "/supplier_id", "/lines", "/needed_by"} <= paths

        # a new requisition is committed against its cost center's budget
        body = {
            "reference": "budget-check",
            "facility_id": "fac-south",
            "supplier_id": "sup-jointworks",
            "lines": [{"item_id": "IMP-THA-CUP-52", "quantity": 2}],
            "needed_by": (NOW + timedelta(days=9)).isoformat(),
        }
        first = c.post("requisitions", json=body)
        assert first.status_code == 201 and first.headers["Location"].endswith(
            "/requisitions/" + first.json()["requisition_id"]
        )
        assert_documented_response("POST", "/requisitions", 201, first.json())
        repeat = c.post("requisitions", json=body)
        assert (repeat.status_code, repeat.json()) == (200, first.json())
        after = get("/cost-centers/cc-fac-south-periop/budget")
        assert Decimal(after["committed"]["amount"]) - Decimal(
            budget["committed"]["amount"]
        ) == Decimal(first.json()["total"]["amount"])


def test_the_servers_enumerations_are_the_documents():
    from careflow.localcloud.sandboxes.erp_server import INVOICE_STATUSES, OPEN_REQUISITIONS
    from tests.unit.test_erp_openapi import load_spec

    schemas = load_spec()["components"]["schemas"]
    assert list(INVOICE_STATUSES) == schemas["InvoiceStatus"]["enum"]
    assert set(schemas["RequisitionStatus"]["enum"]) >= OPEN_REQUISITIONS
