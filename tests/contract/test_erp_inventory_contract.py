"""The ERP's inventory endpoints (issue 11: locations, par levels, usage history, expedite)
as docs/erp-openapi.yaml documents them: the REST adapter calls only what is documented
and reads its examples; the HTTP sandbox answers what the document says, and both sandbox
ERPs (in-process and HTTP) hold the same shelves."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from careflow import clock
from careflow.adapters.erp_rest import INVENTORY_OPERATIONS, ErpRestAdapter
from careflow.adapters.http import HttpClient, NotFound, RetryPolicy
from careflow.adapters.sandbox import Sandbox
from careflow.adapters.sandbox_inventory import INVENTORY_ITEMS, SHELVES
from careflow.canonical.supply import RequisitionLine, RequisitionRequest
from careflow.localcloud.sandboxes.erp_server import ErpSandboxServer
from careflow.ports import ConnectorError, ConnectorUnavailable
from tests.integration.test_erp_connector import TOKEN, CheckedTransport, StaticToken
from tests.unit.test_erp_openapi import (
    _deref,
    _strict,
    load_spec,
    operation_for,
    schema_errors,
)

NOW = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
SERVER_PATH = "/careflow/v1"


# -- the adapter against the document ---------------------------------------------------------
def test_every_inventory_operation_the_adapter_uses_is_documented():
    spec = load_spec()
    for method, template in INVENTORY_OPERATIONS:
        assert method.lower() in spec["paths"][template], f"{method} {template}"


def _documented() -> tuple[ErpRestAdapter, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    spec = load_spec()

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        _, op = operation_for(request.method, request.url.path.removeprefix(SERVER_PATH))
        params = [_deref(spec, p) for p in op.get("parameters", [])]
        assert set(request.url.params.keys()) <= {p["name"] for p in params if p["in"] == "query"}
        if request.method == "POST":
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            assert not schema_errors(_strict(schema), json.loads(request.content))
        answer = _deref(spec, op["responses"]["200"])["content"]["application/json"]
        return httpx.Response(200, json=answer["example"])

    http = HttpClient(
        "erp",
        "https://erp-facade.example-hospital.org" + SERVER_PATH,
        transport=httpx.MockTransport(handle),
        sleep=lambda _: None,
        policy=RetryPolicy(max_attempts=1),
    )
    return ErpRestAdapter(http), seen


def test_the_adapter_reads_the_documented_inventory_examples():
    erp, seen = _documented()
    [core] = erp.locations("fac-north")
    assert (core.location_id, core.supplies_cases) == ("fac-north:or-core", True)
    [level] = erp.par_levels("fac-north", "fac-north:or-core")
    assert (level.item_class, level.on_hand, level.par_level, level.reorder_point) == (
        "stock",
        4,
        6,
        3,
    )
    assert (level.supplier_id, level.lead_time_days, level.unit_price) == (
        "sup-orthoco",
        3.0,
        Decimal("2450.00"),
    )
    [used] = erp.usage_history("fac-north", ["SUP-SUT-VIC-0"], 30)
    assert used.daily_average == 2.0
    sped = erp.expedite("REQ-5003", "booked cases appt-6002")
    assert sped.expedited and sped.expected_delivery == datetime(2026, 12, 1, 14, 45, tzinfo=UTC)
    assert [(r.method, r.url.path) for r in seen] == [
        ("GET", f"{SERVER_PATH}/facilities/fac-north/locations"),
        ("GET", f"{SERVER_PATH}/facilities/fac-north/locations/fac-north:or-core/par-levels"),
        ("GET", f"{SERVER_PATH}/facilities/fac-north/usage"),
        ("POST", f"{SERVER_PATH}/requisitions/REQ-5003/expedite"),
    ]
    assert seen[2].url.params.get_list("item_id") == ["SUP-SUT-VIC-0"]
    assert seen[2].url.params["days"] == "30"


def test_par_levels_of_another_location_are_unavailable_not_trusted():
    erp, _ = _documented()
    with pytest.raises(ConnectorUnavailable, match="another location"):
        erp.par_levels("fac-north", "fac-north:central-supply")


# -- the HTTP sandbox against the document and the adapter ---------------------------------------
@pytest.fixture(scope="module")
def server():
    previous = clock.set_clock(clock.VirtualClock(NOW, speed=0))
    srv = ErpSandboxServer(token=TOKEN, page_size=2).start()
    yield srv
    srv.stop()
    clock.set_clock(previous)


@pytest.fixture
def erp(server):
    server.reset()
    http = HttpClient(
        "erp",
        server.base_url,
        auth=StaticToken(),
        transport=CheckedTransport(),
        sleep=lambda _: None,
        rng=random.Random(1),
        policy=RetryPolicy(timeout=2.0, max_attempts=2),
    )
    return ErpRestAdapter(http)


def test_locations_and_par_levels_are_the_seed_through_pages(erp):
    assert [x.location_id for x in erp.locations("fac-north")] == [
        "fac-north:central-supply",
        "fac-north:or-core",
    ]
    assert erp.locations("fac-asc") == []
    core = erp.par_levels("fac-north", "fac-north:or-core")  # 7 items over pages of 2
    assert [p.item_id for p in core] == list(SHELVES["fac-north:or-core"])
    classes = {p.item_id: p.item_class for p in core}
    assert classes["IMP-SPN-SCR-6545"] == "consignment"
    assert classes["IMP-ACL-SCR-9"] == "bill_only"
    fem = next(p for p in core if p.item_id == "IMP-TKA-FEM-5")
    assert (fem.on_hand, fem.par_level, fem.reorder_point) == (4, 6, 3)
    assert fem.unit_price == Decimal(INVENTORY_ITEMS["IMP-TKA-FEM-5"][4])


def test_usage_history_is_per_location_and_item(erp):
    rows = erp.usage_history("fac-north", ["SUP-SUT-VIC-0", "SUP-DRAPE-ORTHO"], 30)
    got = {(u.location_id, u.item_id): u.quantity for u in rows}
    assert got == {
        ("fac-north:central-supply", "SUP-SUT-VIC-0"): 60,
        ("fac-north:central-supply", "SUP-DRAPE-ORTHO"): 30,
        ("fac-north:or-core", "SUP-DRAPE-ORTHO"): 9,
    }


def test_expedite_moves_the_delivery_once(erp, server):
    req = erp.create_requisition(
        RequisitionRequest(
            facility_id="fac-north",
            supplier_id="sup-orthoco",
            lines=(RequisitionLine(item_id="IMP-TKA-FEM-5", quantity=7),),
            needed_by=NOW + timedelta(hours=30),
            reason="par replenishment",
            reference="replenish:test",
        )
    )
    assert req.expected_delivery == NOW + timedelta(days=3)
    sped = erp.expedite(req.requisition_id, "booked case appt-6002")
    assert sped.expected_delivery == NOW + timedelta(days=1)
    assert erp.expedite(req.requisition_id, "again").expected_delivery == sped.expected_delivery
    assert erp.get_requisition(req.requisition_id).expected_delivery == sped.expected_delivery


def test_unknown_facilities_locations_and_requisitions_are_not_found(erp):
    with pytest.raises(NotFound):
        erp.locations("fac-nowhere")
    with pytest.raises(NotFound):
        erp.par_levels("fac-north", "fac-south:or-core")
    with pytest.raises(NotFound):
        erp.expedite("REQ-0", "x")


def test_the_usage_endpoint_refuses_a_request_without_items(server):
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        r = c.get(f"{server.base_url}/facilities/fac-north/usage", params={"days": 30})
        assert r.status_code == 400 and r.json()["errors"][0]["path"] == "item_id"
        r = c.get(
            f"{server.base_url}/facilities/fac-north/usage",
            params={"item_id": "SUP-SUT-VIC-0", "days": 0},
        )
        assert r.status_code == 400 and r.json()["errors"][0]["path"] == "days"


def test_both_sandbox_erps_hold_the_same_shelves(erp):
    local = Sandbox.seeded(NOW, cases=())
    for facility in ("fac-north", "fac-south"):
        assert list(local.locations(facility)) == list(erp.locations(facility))
        for loc in local.locations(facility):
            assert list(local.par_levels(facility, loc.location_id)) == list(
                erp.par_levels(facility, loc.location_id)
            )
        items = sorted(INVENTORY_ITEMS)
        assert list(local.usage_history(facility, items, 30)) == list(
            erp.usage_history(facility, items, 30)
        )
    with pytest.raises(ConnectorError):
        local.expedite("REQ-0", "x")
