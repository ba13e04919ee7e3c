"""A retired route over real HTTP: the local gateway passes the handler's Deprecation,
Sunset and Link headers through, and its 410 after the sunset, as API Gateway does. A
synthetic contract entry (health, marked deprecated) is swapped in for the test only."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

from careflow import clock
from careflow.api import app as handler
from tests.e2e.test_local_api import api, request  # noqa: F401 - api is the fixture


def _retire(monkeypatch) -> None:
    key = ("GET", "/v1/health")
    retired = dataclasses.replace(
        handler._CONTRACT[key],
        deprecated=date(2026, 11, 1),
        sunset=date(2027, 5, 1),
        successor="/v2/health",
    )
    monkeypatch.setitem(handler._CONTRACT, key, retired)


def test_the_gateway_passes_the_deprecation_headers_through(api, monkeypatch):  # noqa: F811
    _retire(monkeypatch)
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 12, 1, tzinfo=UTC))
    status, body, headers = request(api, "GET", "/health")
    assert (status, body) == (200, {"status": "ok"})
    assert headers["Deprecation"] == "@1793491200"
    assert headers["Sunset"] == "Sat, 01 May 2027 00:00:00 GMT"
    assert '</v2/health>; rel="successor-version"' in headers["Link"]


def test_after_the_sunset_the_gateway_answers_the_handlers_410(api, monkeypatch):  # noqa: F811
    _retire(monkeypatch)
    monkeypatch.setattr(clock, "now", lambda: datetime(2027, 5, 2, tzinfo=UTC))
    status, body, headers = request(api, "GET", "/health")
    assert status == 410 and body["title"] == "Gone"
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Sunset"] == "Sat, 01 May 2027 00:00:00 GMT"
