"""The local API gateway's parts without a server: the issuer's checks, the usage plan's
bucket, route matching and the proxy event's shape, and a failing handler."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import jwt
import pytest

from careflow.api.contract import ROUTES
from careflow.localcloud.api_server import (
    ApiServer,
    LocalIssuer,
    Throttle,
    UsagePlan,
    match,
    proxy_event,
    token_refusal,
)
from careflow.localcloud.cloud import free_port

ISSUER = LocalIssuer("http://127.0.0.1:4567/issuer")


def test_the_issuer_accepts_its_own_access_token_with_cognitos_claims():
    claims = ISSUER.verify(
        ISSUER.mint(
            client="app",
            scopes=["tasks.work", "workflows.read"],
            facilities=["fac-north", "fac-south"],
            user="coordinator-mdiaz",
            roles=["care_coordinator"],
        )
    )
    assert claims["scope"] == "careflow/tasks.work careflow/workflows.read"
    assert claims["client_id"] == "app" and claims["username"] == "coordinator-mdiaz"
    assert claims["custom:facilities"] == "fac-north,fac-south"
    assert claims["custom:roles"] == "care_coordinator"
    assert claims["token_use"] == "access" and claims["iss"] == ISSUER.url


def test_a_client_token_has_no_username_and_no_roles_claim():
    claims = ISSUER.verify(ISSUER.mint(client="app", scopes=["workflows.read"]))
    assert "username" not in claims and "custom:roles" not in claims
    assert claims["sub"] == "app"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(
            jwt.encode(
                {"iss": ISSUER.url, "exp": int(time.time()) + 60, "client_id": "a"}
                | {"token_use": "id"},
                ISSUER._key,
                algorithm="RS256",
            ),
            id="an-id-token",
        ),
        pytest.param(
            LocalIssuer("http://elsewhere/issuer").mint(client="a", scopes=["workflows.read"]),
            id="another-issuer",
        ),
        pytest.param(
            ISSUER.mint(
                client="a", scopes=["workflows.read"], lifetime=timedelta(seconds=1), now=0
            ),
            id="expired",
        ),
        pytest.param(
            jwt.encode(
                {"iss": ISSUER.url, "exp": int(time.time()) + 60, "client_id": "a"}
                | {"token_use": "access"},
                "a-shared-secret-of-at-least-32-bytes!",
                algorithm="HS256",
            ),
            id="hs256",
        ),
    ],
)
def test_the_issuer_refuses(token):
    with pytest.raises(jwt.InvalidTokenError):
        ISSUER.verify(token)


def test_a_token_verified_once_is_refused_once_it_expires():
    issuer = LocalIssuer("http://127.0.0.1:4567/issuer")
    exp = int(time.time()) + 2  # at least 1 s to verify it twice, on a busy machine too
    token = issuer.mint(client="app", scopes=["workflows.read"], now=exp - 3600)  # 1 h life
    first = issuer.verify(token)
    first["scope"] = "careflow/tasks.work"  # a caller's copy: the remembered claims stay
    assert issuer.verify(token)["scope"] == "careflow/workflows.read"
    time.sleep(max(0.0, exp - time.time()) + 0.05)
    for _ in range(2):
        with pytest.raises(jwt.ExpiredSignatureError):
            issuer.verify(token)


def test_a_remembered_token_is_not_checked_again(monkeypatch):
    issuer = LocalIssuer("http://127.0.0.1:4567/issuer")
    token = issuer.mint(client="app", scopes=["workflows.read"])
    issuer.verify(token)
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: pytest.fail("verified twice"))
    assert issuer.verify(token)["client_id"] == "app"
    with pytest.raises(pytest.fail.Exception):  # another token is verified
        issuer.verify(issuer.mint(client="app", scopes=["workflows.read"]))


def test_the_jwks_verifies_the_issuers_tokens():
    key = jwt.PyJWK(ISSUER.jwks()["keys"][0])
    token = ISSUER.mint(client="app", scopes=["workflows.read"])
    assert jwt.get_unverified_header(token)["kid"] == key.key_id
    assert jwt.decode(token, key.key, algorithms=["RS256"], issuer=ISSUER.url)["client_id"]


@pytest.mark.parametrize(
    ("scopes", "minutes", "refusal"),
    [
        (["workflows.admin"], 60, "unknown scope workflows.admin"),
        ([], 60, "at least one scope"),
        (["workflows.read"], 0, "at most 1440 minutes"),
        (["workflows.read"], 1441, "at most 1440 minutes"),
        (["workflows.read"], float("nan"), "at most 1440 minutes"),
    ],
)
def test_token_refusals(scopes, minutes, refusal):
    assert refusal in (token_refusal(scopes, minutes) or "")


def test_the_bucket_allows_the_burst_then_the_rate():
    throttle = Throttle(UsagePlan(rate=2, burst=3))
    assert [throttle.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert throttle.take("a", now=0.0) == pytest.approx(0.5)
    assert throttle.take("b", now=0.0) == 0.0  # each client its own bucket
    assert throttle.take("a", now=0.5) == 0.0  # one token back after 1/rate
    assert throttle.take("a", now=0.5) > 0
    assert [throttle.take("a", now=100.0) for _ in range(4)][-1] > 0  # refills to burst only


def test_every_contract_route_matches_itself_with_its_path_parameters():
    for route in ROUTES:
        path = route.path.replace("{", "x-").replace("}", "")
        found = match(route.method, path)
        assert found is not None and found[0] == route
    assert match("GET", "/v1/instances/scr%2D1") == (
        next(r for r in ROUTES if r.path == "/v1/instances/{id}"),
        {"id": "scr-1"},
    )
    assert match("DELETE", "/v1/instances/scr-1") is None
    assert match("GET", "/v1/instances/a/b") is None


def test_the_proxy_event_has_api_gateways_shape():
    route, params = match("GET", "/v1/instances/scr-1") or pytest.fail("no route")
    event = proxy_event(
        method="GET",
        raw_path="/v1/instances/scr-1?a=1&a=2&b=",
        route=route,
        path_parameters=params,
        headers=[("X-Thing", "1"), ("X-Thing", "2")],
        body=b"",
        claims={"scope": "careflow/workflows.read", "exp": 17},
        source_ip="127.0.0.1",
        request_id="req-1",
    )
    assert event["resource"] == "/v1/instances/{id}" and event["path"] == "/v1/instances/scr-1"
    assert event["pathParameters"] == {"id": "scr-1"}
    assert event["queryStringParameters"] == {"a": "2", "b": ""}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert event["headers"] == {"X-Thing": "2"}
    assert event["multiValueHeaders"] == {"X-Thing": ["1", "2"]}
    assert event["body"] is None and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert (ctx["stage"], ctx["requestId"], ctx["identity"]["sourceIp"]) == (
        "v1",
        "req-1",
        "127.0.0.1",
    )
    assert ctx["authorizer"]["claims"] == {"scope": "careflow/workflows.read", "exp": "17"}


def test_a_handler_that_raises_is_a_502_problem():
    def broken(event, context):
        raise RuntimeError("a message that may quote a record")

    server = ApiServer(free_port(), ISSUER, handler=broken).start()
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(server.url + "/health", timeout=10)
        assert refused.value.code == 502
        body = json.loads(refused.value.read())
        assert body["status"] == 502 and "record" not in json.dumps(body)
    finally:
        server.stop()


def test_the_handler_takes_requests_in_parallel_as_lambda_instances_do():
    # the resolver keeps each thread's request apart (careflow.api.resolver)
    inside, most, lock = [0], [0], threading.Lock()

    def slow(event, context):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.05)
        with lock:
            inside[0] -= 1
        return {"statusCode": 200, "headers": {}, "body": "{}"}

    server = ApiServer(free_port(), ISSUER, handler=slow).start()
    try:
        with ThreadPoolExecutor(5) as pool:
            codes = list(
                pool.map(
                    lambda _: urllib.request.urlopen(server.url + "/health", timeout=10).status,
                    range(10),
                )
            )
        assert codes == [200] * 10 and most[0] > 1
    finally:
        server.stop()
