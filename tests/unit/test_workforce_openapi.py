"""docs/workforce-openapi.yaml is a valid OpenAPI 3.1 document; the workforce REST adapter
calls only what it documents, with the documented parameters and bodies, and reads its
examples. The integration test checks the sandbox's answers against it over HTTP."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from careflow.adapters.http import HttpClient, NotFound, Rejected, RetryPolicy
from careflow.adapters.workforce_rest import OPERATIONS, WorkforceRestAdapter
from careflow.canonical.workforce import StaffingDecision
from careflow.ports import ConnectorUnavailable

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "workforce-openapi.yaml"
DOC = "urn:careflow:workforce-openapi"
METHODS = ("get", "post", "put", "patch", "delete")
SERVER_PATH = "/workforce/v1"
SHIFT = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


@cache
def load_spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def _deref(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = load_spec()
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def _strict(node: Any) -> Any:
    """Refs made absolute and objects closed: an undocumented field fails the test."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if isinstance(out.get("$ref"), str) and out["$ref"].startswith("#"):
        out["$ref"] = DOC + out["$ref"]
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


@cache
def _registry() -> Registry:
    resource = Resource(contents=_strict(copy.deepcopy(load_spec())), specification=DRAFT202012)
    return Registry().with_resource(DOC, resource)


def schema_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    validator = Draft202012Validator(
        _strict(schema), registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def operation_for(method: str, url_path: str) -> tuple[str, dict[str, Any]]:
    for template, item in load_spec()["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, url_path) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"{method} {url_path} is not in {SPEC_PATH.name}")


def assert_documented_response(method: str, url_path: str, status: int, body: Any) -> None:
    _template, op = operation_for(method, url_path)
    answer = _deref(op["responses"].get(str(status)) or op["responses"]["default"])
    kind = "application/json" if status < 400 else "application/problem+json"
    errors = schema_errors(answer["content"][kind]["schema"], body)
    assert not errors, f"{method} {url_path} {status}: {errors}"


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (template, method, op)
        for template, item in load_spec()["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


# -- the document -------------------------------------------------------------------------------
def test_the_document_is_valid_openapi_3_1():
    validator = pytest.importorskip("openapi_spec_validator")
    spec = load_spec()
    assert spec["openapi"].startswith("3.1.")
    validator.validate(spec)
    assert {"bearerAuth": []} in spec["security"]


def test_every_operation_has_an_id_a_success_and_problem_responses():
    ids = []
    for template, _method, op in _operations():
        codes = set(op["responses"])
        assert any(c.startswith("2") for c in codes) and "default" in codes, template
        for code in codes - {"default"}:
            if code.startswith(("4", "5")):
                assert "application/problem+json" in _deref(op["responses"][code])["content"]
        ids.append(op["operationId"])
    assert len(ids) == len(set(ids)) == 4


def test_the_documents_examples_match_their_schemas():
    seen = 0
    for template, method, op in _operations():
        holders = [op.get("requestBody") or {}] + [_deref(r) for r in op["responses"].values()]
        for holder in holders:
            for media in (holder.get("content") or {}).values():
                if "example" in media:
                    seen += 1
                    errors = schema_errors(media["schema"], media["example"])
                    assert not errors, f"{method} {template}: {errors}"
    assert seen >= 6


# -- the adapter against the document ------------------------------------------------------------
def _example(template: str, method: str, status: str) -> Any:
    response = _deref(load_spec()["paths"][template][method]["responses"][status])
    return response["content"]["application/json"]["example"]


def documented_workforce(
    answer: dict[str, httpx.Response] | None = None,
) -> tuple[WorkforceRestAdapter, list[httpx.Request]]:
    """The adapter against a fake that checks each request and answers with the examples."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path.removeprefix(SERVER_PATH)
        template, op = operation_for(request.method, path)
        params = [_deref(p) for p in op.get("parameters", [])]
        query = {p["name"]: p for p in params if p["in"] == "query"}
        assert set(request.url.params.keys()) <= set(query), (template, request.url.params)
        for name, p in query.items():
            if p.get("required"):
                assert name in request.url.params, (template, name)
                errors = schema_errors(p["schema"], request.url.params[name])
                assert not errors, (template, name, errors)
        if answer and template in answer:
            return answer[template]
        if request.method == "POST":
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            errors = schema_errors(schema, json.loads(request.content))
            assert not errors, errors
            return httpx.Response(201, json=_example(template, "post", "201"))
        example = _example(template, "get", "200")
        if template.endswith("/roster"):  # the example's shift, as asked
            example = {**example, "unit_id": "4W", "shift_start": request.url.params["shift_start"]}
        return httpx.Response(200, json=example)

    http = HttpClient(
        "workforce",
        "https://workforce-facade.example-hospital.org" + SERVER_PATH,
        transport=httpx.MockTransport(handle),
        sleep=lambda _: None,
        policy=RetryPolicy(max_attempts=1),
    )
    return WorkforceRestAdapter(http), seen


def test_every_operation_the_adapter_uses_is_documented():
    spec = load_spec()
    for method, template in OPERATIONS:
        assert method.lower() in spec["paths"][template], f"{method} {template}"
    assert {(m.upper(), t) for t, m, _ in _operations()} == set(OPERATIONS)


def test_the_adapter_reads_the_documented_examples():
    workforce, seen = documented_workforce()
    [unit] = workforce.units("fac-north")
    assert (unit.unit_id, unit.unit_type, unit.beds) == ("4W", "med-surg", 28)
    [nurse] = workforce.roster("fac-north", "4W", SHIFT)
    assert (nurse.role, nurse.skills, nurse.shift_start) == ("RN", ("med-surg", "bls"), SHIFT)
    [option] = workforce.staffing_options("fac-north", "4W", SHIFT, "med-surg")
    assert (option.kind, option.available, option.cost_per_hour) == ("float_pool", 2, 68.0)
    recorded = workforce.record_decision(
        StaffingDecision(
            decision_id="sg-4f2a-task-91c0",
            facility_id="fac-north",
            unit_id="4W",
            shift_start=SHIFT,
            gap=2,
            option="float_pool",
            staff_count=2,
            decided_by="user:staffing-jortiz",
            decided_at=SHIFT,
        )
    )
    assert recorded.status == "ACCEPTED"
    assert [r.method for r in seen] == ["GET", "GET", "GET", "POST"]


def test_errors_are_mapped_without_the_problems_detail():
    problem = {
        "type": "https://workforce.example/problems/invalid",
        "title": "Invalid request",
        "status": 400,
        "detail": "shift_start 'MRN123' is not a time",
        "errors": [{"in": "query", "path": "shift_start", "code": "date-time-with-offset"}],
    }
    roster = "/facilities/{facility_id}/units/{unit_id}/roster"
    workforce, _ = documented_workforce({roster: httpx.Response(400, json=problem)})
    with pytest.raises(Rejected) as rejected:
        workforce.roster("fac-north", "4W", SHIFT)
    assert "shift_start (date-time-with-offset)" in str(rejected.value)
    assert "MRN123" not in str(rejected.value)
    units = "/facilities/{facility_id}/units"
    workforce, _ = documented_workforce(
        {units: httpx.Response(404, json={**problem, "status": 404})}
    )
    with pytest.raises(NotFound):
        workforce.units("fac-nowhere")
    workforce, _ = documented_workforce({units: httpx.Response(200, json={"data": [{"x": 1}]})})
    with pytest.raises(ConnectorUnavailable, match="unexpected shape"):
        workforce.units("fac-north")
