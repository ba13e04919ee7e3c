"""CORS on /v1: preflight answered and Access-Control-Allow-Origin added only for an origin
the environment allows (CORS_ALLOWED_ORIGINS); none configured, none added."""

from __future__ import annotations

import importlib

import pytest

from careflow.api import app as api
from careflow.api.cors import ORIGINS_ENV, allowed_origins, cors_config
from tests.unit.test_api import call, claims, wired  # noqa: F401  (fixture)

ALLOWED = "https://ops.careflow.example.org"


@pytest.fixture
def with_origins(monkeypatch):
    """The handler module as a Lambda with the variable set would import it."""
    monkeypatch.setenv(ORIGINS_ENV, f"{ALLOWED},http://localhost:3000")
    importlib.reload(api)
    yield
    monkeypatch.delenv(ORIGINS_ENV)
    importlib.reload(api)


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
