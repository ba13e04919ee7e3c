"""The workforce side over real HTTP: the workforce sandbox server and the REST adapter.
Every answer the adapter gets is checked against docs/workforce-openapi.yaml."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from careflow.adapters.http import HttpClient, NotFound, RetryPolicy
from careflow.adapters.workforce_rest import WorkforceRestAdapter
from careflow.canonical.workforce import StaffingDecision
from careflow.localcloud.sandboxes.workforce_server import BASE_PATH, WorkforceSandboxServer
from careflow.ports import ConnectorUnavailable
from tests.unit.test_workforce_openapi import assert_documented_response

TOKEN = "workforce-test-token"  # a made-up static token for the sandbox
NIGHT = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 19:00 in Chicago: the night shift


class StaticToken:
    def token(self) -> str:
        return TOKEN

    def invalidate(self) -> None:
        pass


class CheckedTransport(httpx.BaseTransport):
    """Real HTTP, each JSON answer validated against the OpenAPI document."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.checked = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        content = response.read()
        response.close()
        path = request.url.path.removeprefix(BASE_PATH)
        assert_documented_response(request.method, path, response.status_code, json.loads(content))
        self.checked += 1
        return httpx.Response(response.status_code, headers=response.headers, content=content)


@pytest.fixture(scope="module")
def running():
    srv = WorkforceSandboxServer(token=TOKEN).start()
    yield srv
    srv.stop()


@pytest.fixture
def server(running):
    running.reset()
    yield running
    running.reset()


def workforce(server, *, checked: bool = True, **policy):
    http = HttpClient(
        "workforce",
        server.base_url,
        auth=StaticToken(),
        transport=CheckedTransport() if checked else None,
        sleep=lambda _: None,
        policy=RetryPolicy(**{"timeout": 2.0, **policy}),
    )
    return WorkforceRestAdapter(http)


def test_units_rosters_and_options_of_the_sandbox_hospital(server):
    wf = workforce(server)
    assert [u.unit_id for u in wf.units("fac-north")] == ["ICU-N", "4W", "5W", "PACU-N"]
    roster = wf.roster("fac-north", "4W", NIGHT)
    assert [e.role for e in roster].count("RN") == 4  # 4W's night: 4 RNs and 2 aides
    assert all(e.shift_start == NIGHT for e in roster)
    options = {o.kind: o for o in wf.staffing_options("fac-north", "4W", NIGHT, "med-surg")}
    assert (options["float_pool"].available, options["float_pool"].cost_per_hour) == (2, 68.0)
    assert options["agency"].lead_time_hours == 8.0


def test_a_decision_is_recorded_once_and_puts_staff_on_the_roster(server):
    wf = workforce(server)
    decision = StaffingDecision(
        decision_id="sg-1-task-1",
        facility_id="fac-north",
        unit_id="4W",
        shift_start=NIGHT,
        gap=2,
        option="float_pool",
        staff_count=2,
        decided_by="user:staffing-jortiz",
        decided_at=NIGHT,
    )
    assert wf.record_decision(decision).status == "ACCEPTED"
    assert wf.record_decision(decision).status == "DUPLICATE"  # a retried POST
    assert [e.role for e in wf.roster("fac-north", "4W", NIGHT)].count("RN") == 6
    float_pool = wf.staffing_options("fac-north", "4W", NIGHT, "med-surg")[0]
    assert float_pool.available == 0


def test_an_unknown_unit_is_not_found_and_faults_are_retried_then_unavailable(server):
    wf = workforce(server)
    with pytest.raises(NotFound):
        wf.roster("fac-north", "9Z", NIGHT)
    server.faults.server_errors = 1
    assert wf.units("fac-south")  # one 503, then the answer
    server.faults.always_down = True
    with pytest.raises(ConnectorUnavailable):
        workforce(server, checked=False, max_attempts=2).units("fac-south")
