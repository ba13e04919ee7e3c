"""The /v1 API on the local cloud, over real HTTP: the local gateway verifies the local
issuer's tokens, enforces scopes and usage plans, and the handler answers from the
cloud's own table and bus."""

from __future__ import annotations

import json
import random
import statistics
import time
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from typing import Any

import pytest

from careflow import cli, wiring
from careflow.api.problems import GATEWAY_PROBLEMS
from careflow.localcloud.api_server import (
    ISSUER_PATH,
    ApiServer,
    LocalIssuer,
    Throttle,
    UsagePlan,
)
from careflow.localcloud.cloud import free_port
from careflow.localcloud.control import ControlServer
from stacks.constructs.gateway_problems import template
from tests.unit.test_api import instance, task_for

START = "/workflows/surgical-case-readiness/instances"
TINY = "tiny-plan-app"  # this client's usage plan: 2 requests, then 1 a minute


@pytest.fixture(scope="module")
def api(cloud):
    issuer = LocalIssuer(f"http://127.0.0.1:{cloud.port + 1}{ISSUER_PATH}")
    control = ControlServer(cloud, cloud.port + 1, issuer).start()
    throttle = Throttle(plans={TINY: UsagePlan(rate=1 / 60, burst=2)})
    server = ApiServer(free_port(), issuer, throttle=throttle).start()
    yield server
    server.stop()
    control.stop()


def request(
    api: ApiServer,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    req = urllib.request.Request(api.url + path, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # loopback
            status, raw, got = resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        status, raw, got = exc.code, exc.read(), dict(exc.headers)
    return status, (json.loads(raw) if raw else {}), got


def token(api: ApiServer, scopes: str, facility: str = "fac-north", **kw: Any) -> str:
    return api.issuer.mint(
        client=kw.pop("client", "partner-app"),
        scopes=scopes.split(","),
        facilities=[facility],
        **kw,
    )


def as_deployed(kind: str) -> dict[str, Any]:
    """The body API Gateway's gateway response of ``kind`` sends (the CDK template)."""
    return json.loads(template(kind))


def booked() -> dict[str, str]:
    return {
        "appointment_id": f"appt-api-{uuid.uuid4().hex[:8]}",
        "appointment_type": "procedure",
        "scheduled_start": "2026-12-09T08:00:00+00:00",
    }


def test_health_is_open(api):
    status, body, _ = request(api, "GET", "/health")
    assert (status, body) == (200, {"status": "ok"})


def test_a_scoped_route_without_a_token_is_401_problem(api):
    status, body, headers = request(api, "GET", "/instances?workflow=surgical-case-readiness")
    assert status == 401 and body["status"] == 401
    assert headers["Content-Type"] == "application/problem+json"


def test_an_expired_token_is_401(api):
    old = token(api, "workflows.read", lifetime=timedelta(minutes=5), now=time.time() - 3600)
    status, _, _ = request(api, "GET", "/instances?workflow=surgical-case-readiness", token=old)
    assert status == 401


def test_a_token_signed_by_another_key_is_401(api):
    forged = LocalIssuer(api.issuer.url).mint(client="partner-app", scopes=["workflows.read"])
    status, _, _ = request(api, "GET", "/instances?workflow=surgical-case-readiness", token=forged)
    assert status == 401


def test_a_token_without_the_routes_scope_is_403_at_the_gateway(api):
    status, body, _ = request(
        api, "GET", "/instances?workflow=surgical-case-readiness", token=token(api, "tasks.work")
    )
    assert status == 403 and body == as_deployed("ACCESS_DENIED")


def test_a_start_through_the_gateway_is_201(api, cloud):
    headers = {"Idempotency-Key": f"order-{uuid.uuid4().hex[:12]}"}
    status, started, _ = request(
        api, "POST", START, token=token(api, "workflows.write"), body=booked(), headers=headers
    )
    assert status == 201 and started["status"] == "started", started
    # the sandbox EHR has no such case: stop the execution rather than leave its timers
    # to the session cloud's other tests
    arn = cloud.execution_arn(started["instance_id"], "surgical-case-readiness")
    if cloud.describe(arn)["status"] == "RUNNING":
        cloud.client("stepfunctions").stop_execution(executionArn=arn)


def test_an_instance_of_another_facility_is_404_and_its_own_reads_it(api):
    south = instance(random.randrange(10_000, 99_999), facility="fac-south")
    wiring.store().put_instance(south)  # the cloud's table
    path = f"/instances/{south.instance_id}"
    assert request(api, "GET", path, token=token(api, "workflows.read"))[0] == 404
    status, found, _ = request(
        api, "GET", path, token=token(api, "workflows.read", facility="fac-south")
    )
    assert status == 200 and found["facility_id"] == "fac-south"


def test_an_invalid_body_is_400_naming_the_field(api):
    status, body, _ = request(
        api,
        "POST",
        START,
        token=token(api, "workflows.write"),
        body={**booked(), "patient_name": "x"},
        headers={"Idempotency-Key": f"order-{uuid.uuid4().hex[:12]}"},
    )
    assert status == 400
    assert body["errors"] == [{"field": "body.patient_name", "reason": "extra_forbidden"}]


def test_a_body_over_the_limit_is_413(api):
    status, body, _ = request(
        api,
        "POST",
        "/events",
        token=token(api, "events.write"),
        data=b"{" + b" " * (1024 * 1024) + b"}",
    )
    assert status == 413 and body["status"] == 413


def test_a_client_over_its_usage_plan_is_429_with_retry_after(api):
    mine = token(api, "workflows.read", client=TINY)
    path = "/instances?workflow=surgical-case-readiness"
    assert [request(api, "GET", path, token=mine)[0] for _ in range(2)] == [200, 200]
    status, body, headers = request(api, "GET", path, token=mine)
    assert status == 429 and body == as_deployed("THROTTLED")
    assert 1 <= int(headers["Retry-After"]) <= 60
    # another client's plan is its own
    assert request(api, "GET", path, token=token(api, "workflows.read"))[0] == 200


def test_careflow_token_against_the_running_cloud_is_accepted(api, cloud, capsys):
    code = cli.main(
        [
            "token",
            "--port",
            str(cloud.port),
            "--client",
            "cli-app",
            "--scopes",
            "workflows.read,tasks.work",
            "--facility",
            "fac-north",
            "--user",
            "coordinator-mdiaz",
        ]
    )
    printed = capsys.readouterr().out.strip()
    assert code == 0
    status, body, _ = request(api, "GET", "/tasks?queue=or_scheduling", token=printed)
    assert status == 200 and "items" in body


def test_careflow_token_refuses_an_unknown_scope_in_one_line(cloud, capsys):
    code = cli.main(
        ["token", "--port", str(cloud.port), "--client", "x", "--scopes", "workflows.admin"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown scope workflows.admin" in err[0]


def test_careflow_token_without_a_cloud_is_one_line(capsys):
    code = cli.main(
        ["token", "--port", str(free_port()), "--client", "x", "--scopes", "workflows.read"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "no local cloud answers" in err[0]


def test_health_latency_over_200_sequential_requests(api):
    took = []
    for _ in range(200):
        start = time.perf_counter()
        assert request(api, "GET", "/health")[0] == 200
        took.append(time.perf_counter() - start)
    p50 = statistics.median(took) * 1000
    p95 = statistics.quantiles(took, n=20)[-1] * 1000
    print(f"GET /v1/health over 200 sequential requests: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    assert p50 < 100


def test_the_username_claim_reaches_the_handler_a_person_claims_a_task_as_themself(api):
    inst = instance(random.randrange(10_000, 99_999))
    wiring.store().put_instance(inst)
    task = task_for(wiring.store(), inst)
    path = f"/tasks/{task.task_id}/claim"
    assert request(api, "POST", path, token=token(api, "tasks.work"), body={})[0] == 403
    person = token(api, "tasks.work", user="coordinator-mdiaz")
    status, body, _ = request(api, "POST", path, token=person, body={})
    assert (status, body.get("claimed_by")) == (200, "user:coordinator-mdiaz"), body


ROUNDS = 8  # of every case, in one shuffled run


def test_concurrent_requests_each_get_their_own_answer(api):
    """Different routes, callers and facilities at once, with the interpreter switching
    threads as often as it can: each answer is its own request's (the instance asked
    for, the caller's facility, the route's own shape). With the handler's request kept
    on a shared resolver this fails within a few hundred requests."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    north = [instance(random.randrange(10_000, 99_999)) for _ in range(6)]
    south = [instance(random.randrange(10_000, 99_999), facility="fac-south") for _ in range(6)]
    for inst in north + south:
        wiring.store().put_instance(inst)
    # a token per facility and round: each client stays within its usage plan's burst
    readers = {
        (facility, r): token(api, "workflows.read", facility=facility, client=f"conc-{f}-{r}")
        for f, facility in enumerate(("fac-north", "fac-south"))
        for r in range(ROUNDS)
    }
    cases: list[tuple[str, str | None, tuple[Any, ...]]] = []
    for inst, r in ((i, r) for i in north + south for r in range(ROUNDS)):
        own, other = (
            readers[inst.facility_id, r],
            readers["fac-south" if inst.facility_id == "fac-north" else "fac-north", r],
        )
        path = f"/instances/{inst.instance_id}"
        cases.append((path, own, (200, inst.instance_id, inst.facility_id)))
        cases.append((path, other, (404, None, None)))
        search = f"/instances?subject=case/{inst.subject_id}"
        cases.append((search, own, (200, [inst.instance_id])))
        cases.append((search, other, (200, [])))
    for r in range(ROUNDS):
        cases.append(("/health", None, (200, "ok")))
        cases.append(
            (
                "/instances?workflow=surgical-case-readiness&limit=0",
                readers["fac-north", r],
                (400, ["query.limit"]),
            )
        )

    def answer(case: tuple[str, str | None, tuple[Any, ...]]) -> tuple[Any, ...]:
        path, caller, _ = case
        status, body, _ = request(api, "GET", path, token=caller)
        if path == "/health":
            return status, body.get("status")
        if path.startswith("/instances?subject="):
            return status, [i["instance_id"] for i in body.get("items", [])]
        if path.startswith("/instances?"):
            return status, [e["field"] for e in body.get("errors", [])]
        return status, body.get("instance_id"), body.get("facility_id")

    work = list(cases)
    random.Random(7).shuffle(work)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # a thread switch between any two steps of a request
    try:
        with ThreadPoolExecutor(16) as pool:
            got = list(pool.map(answer, work))
    finally:
        sys.setswitchinterval(round(interval, 6))  # a get and a set lose 1 µs
    wrong = [(case[0], case[2], g) for case, g in zip(work, got, strict=True) if g != case[2]]
    assert not wrong, f"{len(wrong)} of {len(work)} answers were not their request's: {wrong[:3]}"


@pytest.mark.parametrize(
    ("method", "path", "auth", "kind"),
    [
        ("GET", "/instances", None, "UNAUTHORIZED"),
        ("GET", "/instances", "not-a-jwt", "UNAUTHORIZED"),
        ("GET", "/no-such-route", None, "MISSING_AUTHENTICATION_TOKEN"),
        ("TRACE", "/health", None, "MISSING_AUTHENTICATION_TOKEN"),
        ("QUERY", "/instances", None, "MISSING_AUTHENTICATION_TOKEN"),
        ("DELETE", "/instances/abc", None, "MISSING_AUTHENTICATION_TOKEN"),
    ],
)
def test_the_gateways_refusals_are_the_deployed_gateway_responses(api, method, path, auth, kind):
    headers = {"Authorization": f"Bearer {auth}"} if auth else None
    status, body, got = request(api, method, path, headers=headers)
    assert status == GATEWAY_PROBLEMS[kind][0]
    assert body == as_deployed(kind)
    assert got["Content-Type"] == "application/problem+json"
