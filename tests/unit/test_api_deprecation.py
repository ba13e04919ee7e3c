"""Retiring a route: a route the contract marks deprecated answers with Deprecation
(RFC 9745), Sunset (RFC 8594) and Link headers, its operation is ``deprecated`` in the
document, and from its sunset on it is 410 Gone. No real route is deprecated: these
tests swap a synthetic contract entry (the health route and an instance read, marked
deprecated) in for the test only."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime

from openapi_spec_validator import validate

from careflow import clock
from careflow.api import app as api
from careflow.api import openapi
from careflow.api.contract import ROUTES, Route, deprecation_headers
from tests.unit.test_api import call, claims, instance, wired  # noqa: F401

DEPRECATED = date(2026, 11, 1)
SUNSET = date(2027, 5, 1)
SUCCESSOR = "/v2/instances/{id}"


def _retire(monkeypatch, method: str, path: str, **fields) -> Route:
    route = dataclasses.replace(api._CONTRACT[(method, path)], **fields)
    monkeypatch.setitem(api._CONTRACT, (method, path), route)
    routes = tuple(route if (r.method, r.path) == (method, path) else r for r in ROUTES)
    monkeypatch.setattr(openapi, "ROUTES", routes)
    return route


def test_a_route_in_good_standing_has_no_deprecation_headers(wired):  # noqa: F811
    assert all(deprecation_headers(r) == {} for r in ROUTES)
    _, _, headers = call("GET", "/v1/health")
    assert not {"Deprecation", "Sunset", "Link"} & set(headers)


def test_the_headers_are_rfc_9745_and_8594_forms():
    route = Route(
        "GET", "/v1/x", None, "x", deprecated=DEPRECATED, sunset=SUNSET, successor="/v2/x"
    )
    headers = deprecation_headers(route)
    assert headers["Deprecation"] == "@1793491200"  # 2026-11-01T00:00:00Z
    assert datetime.fromtimestamp(1793491200, UTC) == datetime(2026, 11, 1, tzinfo=UTC)
    assert headers["Sunset"] == "Sat, 01 May 2027 00:00:00 GMT"
    assert parsedate_to_datetime(headers["Sunset"]) == datetime(2027, 5, 1, tzinfo=UTC)
    assert headers["Link"] == (
        '</v2/x>; rel="successor-version", '
        '<https://careflow.dev/docs/api#retiring-a-route>; rel="deprecation"'
    )
    only_deprecated = deprecation_headers(Route("GET", "/v1/x", None, "x", deprecated=DEPRECATED))
    assert set(only_deprecated) == {"Deprecation", "Link"}


def test_a_deprecated_routes_answers_carry_the_headers_success_and_problem(wired, monkeypatch):  # noqa: F811
    _retire(
        monkeypatch,
        "GET",
        "/v1/instances/{id}",
        deprecated=DEPRECATED,
        sunset=SUNSET,
        successor=SUCCESSOR,
    )
    wired.store.put_instance(instance(1))
    status, body, headers = call("GET", "/v1/instances/scr-0001", who=claims())
    assert status == 200 and body["instance_id"] == "scr-0001"
    assert headers["Content-Type"] == "application/json"
    assert headers["Deprecation"] == "@1793491200"
    assert headers["Sunset"] == "Sat, 01 May 2027 00:00:00 GMT"
    assert f'<{SUCCESSOR}>; rel="successor-version"' in headers["Link"]
    for who, expected in ((None, 401), (claims(), 404)):  # before the token, and after it
        status, _, headers = call("GET", "/v1/instances/nope", who=who)
        assert status == expected and headers["Deprecation"] == "@1793491200"
    _, _, headers = call("GET", "/v1/instances", who=claims(), query={"workflow": "w"})
    assert "Deprecation" not in headers  # the other routes are untouched


def test_a_dict_answer_keeps_its_body_and_status_with_the_headers(wired, monkeypatch):  # noqa: F811
    _retire(monkeypatch, "GET", "/v1/health", deprecated=DEPRECATED)
    status, body, headers = call("GET", "/v1/health")
    assert (status, body) == (200, {"status": "ok"})
    assert headers["Deprecation"] == "@1793491200" and "Sunset" not in headers


def test_from_its_sunset_on_the_route_is_410_gone(wired, monkeypatch):  # noqa: F811
    _retire(
        monkeypatch,
        "GET",
        "/v1/instances/{id}",
        deprecated=DEPRECATED,
        sunset=SUNSET,
        successor=SUCCESSOR,
    )
    wired.store.put_instance(instance(1))
    monkeypatch.setattr(clock, "now", lambda: datetime(2027, 4, 30, 23, 59, tzinfo=UTC))
    assert call("GET", "/v1/instances/scr-0001", who=claims())[0] == 200
    monkeypatch.setattr(clock, "now", lambda: datetime(2027, 5, 1, tzinfo=UTC))
    for who in (claims(), None):
        status, body, headers = call("GET", "/v1/instances/scr-0001", who=who)
        assert status == 410 and body["status"] == 410 and body["title"] == "Gone"
        assert headers["Content-Type"] == "application/problem+json"
        assert headers["Sunset"] == "Sat, 01 May 2027 00:00:00 GMT"
        assert SUCCESSOR in headers["Link"]


def test_the_document_marks_the_operation_deprecated_with_its_headers(monkeypatch):
    _retire(
        monkeypatch,
        "GET",
        "/v1/instances/{id}",
        deprecated=DEPRECATED,
        sunset=SUNSET,
        successor=SUCCESSOR,
    )
    doc = openapi.document()
    validate(doc)
    op = doc["paths"]["/v1/instances/{id}"]["get"]
    assert op["deprecated"] is True
    assert op["x-sunset"] == "2027-05-01" and op["x-successor"] == SUCCESSOR
    assert set(op["responses"]["200"]["headers"]) == {"Deprecation", "Sunset", "Link"}
    assert "410" in op["responses"]
    assert "deprecated" not in doc["paths"]["/v1/instances"]["get"]
