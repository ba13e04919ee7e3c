"""The adapters' HTTP client (retries, Retry-After, errors) and SMART Backend Services auth."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from careflow import clock
from careflow.adapters.http import HttpClient, NotFound, Rejected, RetryPolicy, retry_after_seconds
from careflow.adapters.smart import ASSERTION_TYPE, SmartBackendAuth
from careflow.ports import ConnectorError, ConnectorUnavailable

OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "not-found",
            "diagnostics": "Patient Jane Doe not found",
            "expression": ["Appointment.participant[0].actor"],
        }
    ],
}


def scripted(*responses):
    """A transport answering with the given responses (or raising the given exceptions)."""
    seen = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = responses[min(len(seen) - 1, len(responses) - 1)]
        if isinstance(item, Exception):
            raise item
        return item

    return httpx.MockTransport(handle), seen


def client(transport, **kw):
    sleeps: list[float] = []
    c = HttpClient(
        "ehr",
        "http://ehr.test/fhir",
        transport=transport,
        sleep=sleeps.append,
        rng=random.Random(7),
        **kw,
    )
    return c, sleeps


def test_5xx_is_retried_with_growing_jittered_backoff_then_succeeds():
    transport, seen = scripted(
        httpx.Response(503), httpx.Response(502), httpx.Response(200, json={"ok": True})
    )
    c, sleeps = client(transport, policy=RetryPolicy(base_delay=0.2, max_delay=5))
    assert c.get_json("Appointment/1") == {"ok": True}
    assert len(seen) == 3
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.2 and 0 <= sleeps[1] <= 0.4


def test_429_honours_retry_after_seconds_capped_by_the_policy():
    transport, _ = scripted(
        httpx.Response(429, headers={"Retry-After": "2"}),
        httpx.Response(429, headers={"Retry-After": "120"}),
        httpx.Response(200, json={}),
    )
    c, sleeps = client(transport, policy=RetryPolicy(max_delay=10))
    c.get_json("x")
    assert sleeps == [2.0, 10.0]


def test_retry_after_as_an_http_date():
    now = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    assert retry_after_seconds("Sun, 29 Nov 2026 08:00:30 GMT", now) == 30.0
    assert retry_after_seconds("soon", now) is None


def test_timeouts_exhaust_the_attempts_then_the_connector_is_unavailable():
    transport, seen = scripted(httpx.ReadTimeout("slow"))
    c, sleeps = client(transport, policy=RetryPolicy(max_attempts=3))
    with pytest.raises(
        ConnectorUnavailable, match="ehr unavailable after 3 attempts \\(timed out\\)"
    ):
        c.get_json("x")
    assert len(seen) == 3 and len(sleeps) == 2


def test_404_with_an_operation_outcome_is_not_found_not_retried_and_carries_no_diagnostics():
    transport, seen = scripted(httpx.Response(404, json=OUTCOME))
    c, _ = client(transport)
    with pytest.raises(NotFound) as err:
        c.get_json("Appointment/nope")
    assert len(seen) == 1
    message = str(err.value)
    assert "error not-found at Appointment.participant[0].actor" in message
    assert "Jane" not in message


def test_other_4xx_are_rejected_without_retry():
    transport, seen = scripted(httpx.Response(422, json=OUTCOME))
    c, _ = client(transport)
    with pytest.raises(Rejected):
        c.post_json("Claim/$submit", {"resourceType": "Bundle"})
    assert len(seen) == 1


def test_a_malformed_body_is_reported_as_the_other_systems_fault():
    transport, _ = scripted(
        httpx.Response(200, content=b"<html>oops", headers={"content-type": "text/html"})
    )
    c, _ = client(transport)
    with pytest.raises(ConnectorUnavailable, match="malformed response body \\(text/html\\)"):
        c.get_json("x")


class FakeAuth:
    def __init__(self):
        self.issued = 0

    def token(self):
        return f"t{self.issued}"

    def invalidate(self):
        self.issued += 1


def test_a_401_refreshes_the_token_once():
    transport, seen = scripted(httpx.Response(401), httpx.Response(200, json={}))
    auth = FakeAuth()
    c, _ = client(transport, auth=auth)
    c.get_json("x")
    assert [r.headers["Authorization"] for r in seen] == ["Bearer t0", "Bearer t1"]


@pytest.fixture
def keys():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem, key.public_key()


@pytest.fixture
def virtual_time():
    previous = clock.get_clock()
    vc = clock.VirtualClock(start=datetime(2026, 11, 29, 8, 0, tzinfo=UTC), speed=0)
    clock.set_clock(vc)
    yield vc
    clock.set_clock(previous)


def token_endpoint(public_key, expires_in=300, status=200):
    requests = []

    def handle(request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        requests.append(form)
        if status != 200:
            return httpx.Response(status, json={"error": "invalid_client"})
        assert form["grant_type"] == "client_credentials"
        assert form["client_assertion_type"] == ASSERTION_TYPE
        claims = jwt.decode(
            form["client_assertion"],
            public_key,
            algorithms=["RS384"],
            audience="https://auth.test/token",
            options={"verify_exp": False, "verify_iat": False},
        )
        assert claims["iss"] == claims["sub"] == "careflow-test"
        assert claims["exp"] - claims["iat"] == 300
        header = jwt.get_unverified_header(form["client_assertion"])
        assert header["kid"] == "key-1" and header["alg"] == "RS384"
        return httpx.Response(
            200,
            json={
                "access_token": f"at-{len(requests)}",
                "token_type": "bearer",
                "expires_in": expires_in,
                "scope": form["scope"],
            },
        )

    return httpx.MockTransport(handle), requests


def smart(keys, transport):
    pem, _ = keys
    return SmartBackendAuth(
        token_url="https://auth.test/token",
        client_id="careflow-test",
        private_key_pem=pem,
        key_id="key-1",
        scope="system/Appointment.read system/Task.write",
        transport=transport,
    )


def test_smart_signs_a_client_assertion_and_caches_the_token_until_near_expiry(keys, virtual_time):
    transport, requests = token_endpoint(keys[1])
    auth = smart(keys, transport)
    assert {auth.token() for _ in range(5)} == {"at-1"}
    assert len(requests) == 1
    virtual_time.advance(timedelta(seconds=239))
    assert auth.token() == "at-1"
    virtual_time.advance(timedelta(seconds=2))  # within the 60 s margin of expiry
    assert auth.token() == "at-2"
    assert len(requests) == 2
    assert requests[0]["client_assertion"] != requests[1]["client_assertion"]  # new jti


def test_smart_refused_client_and_unavailable_server(keys, virtual_time):
    refused, _ = token_endpoint(keys[1], status=401)
    with pytest.raises(ConnectorError, match="invalid_client"):
        smart(keys, refused).token()
    down, _ = token_endpoint(keys[1], status=503)
    with pytest.raises(ConnectorUnavailable):
        smart(keys, down).token()


def test_the_bearer_token_reaches_the_fhir_server(keys, virtual_time):
    token_transport, _ = token_endpoint(keys[1])
    fhir_transport, seen = scripted(httpx.Response(200, json={"resourceType": "Bundle"}))
    c, _ = client(fhir_transport, auth=smart(keys, token_transport))
    c.get_json("Appointment", params={"status": "booked"})
    assert seen[0].headers["Authorization"] == "Bearer at-1"
    assert json.loads(seen[0].content or b"null") is None
