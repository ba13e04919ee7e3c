"""CORS on /v1: preflight answered and Access-Control-Allow-Origin added only for an origin
the environment allows (CORS_ALLOWED_ORIGINS); none configured, none added."""

from __future__ import annotations

import importlib

import pytest

from careflow.api import app as api
from careflow.api.cors import ORIGINS_ENV, allowed_origins, cors_config
from lambdas.api import handler  # imported before any reload, as a Lambda holds it
from tests.unit.test_api import call, claims, wired  # noqa: F401  (fixture)

ALLOWED = "https://ops.careflow.example.org"


@pytest.fixture
def with_origins(monkeypatch):
    """The handler module as a Lambda with the variable set would import it.

    Afterwards the module's namespace is put back as it was, not re-imported: the route
    functions of the original ``app`` (which ``lambdas.api`` and the local gateway hold)
    read the module's globals, and a second reload left them reading a new ``app`` whose
    current event was never set (an AttributeError, a 502, for every later request
    through ``lambdas.api`` in this process)."""
    saved = dict(vars(api))
    monkeypatch.setenv(ORIGINS_ENV, f"{ALLOWED},http://localhost:3000")
    importlib.reload(api)
    try:
        yield
    finally:
        vars(api).clear()
        vars(api).update(saved)


def test_a_preflight_from_an_allowed_origin_is_answered(with_origins):
    status, _, headers = call("OPTIONS", "/v1/kpis", headers={"Origin": ALLOWED})
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "GET" in headers["Access-Control-Allow-Methods"]
    assert "Idempotency-Key" in headers["Access-Control-Allow-Headers"]


def test_a_response_names_only_an_allowed_origin(with_origins, wired):  # noqa: F811
    _, _, allowed = call("GET", "/v1/kpis", who=claims(), headers={"Origin": ALLOWED})
    assert allowed["Access-Control-Allow-Origin"] == ALLOWED
    _, _, other = call("GET", "/v1/kpis", who=claims(), headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other
    _, _, preflight = call("OPTIONS", "/v1/kpis", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in preflight


def test_without_configured_origins_there_is_no_cors(wired):  # noqa: F811
    assert cors_config("") is None
    _, _, headers = call("GET", "/v1/kpis", who=claims(), headers={"Origin": ALLOWED})
    assert not any(h.startswith("Access-Control-") for h in headers)
    assert call("OPTIONS", "/v1/kpis", headers={"Origin": ALLOWED})[0] == 404


@pytest.mark.parametrize("value", ["*", "https://a.example/path", "a.example"])
def test_only_origins_may_be_configured(value):
    with pytest.raises(ValueError):
        allowed_origins(value)


def test_the_lambda_entry_serves_after_a_reload_was_undone(wired):  # noqa: F811
    # lambdas.api was imported (above) before the fixture reloaded the module: its app's
    # routes must still find their own current event (this order failed with a 502)
    from types import SimpleNamespace

    event = {
        "resource": "/v1/health",
        "path": "/v1/health",
        "httpMethod": "GET",
        "headers": {},
        "requestContext": {"httpMethod": "GET", "path": "/v1/health", "requestId": "r"},
        "body": None,
        "isBase64Encoded": False,
    }
    answer = handler(event, SimpleNamespace(aws_request_id="r"))
    assert answer["statusCode"] == 200
