"""docs/erp-openapi.yaml is a valid OpenAPI 3.1 document, and the ERP REST adapter calls
only what it documents, with the parameters it documents, and reads its examples."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from careflow.adapters.erp_rest import OPERATIONS, ErpRestAdapter
from careflow.adapters.http import HttpClient, NotFound, Rejected, RetryPolicy
from careflow.canonical.supply import RequisitionLine, RequisitionRequest
from careflow.ports import ConnectorUnavailable

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "erp-openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
DOC = "urn:careflow:erp-openapi"


# -- helpers (the integration tests use them too) ---------------------------------------------
@cache
def load_spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def _pointer(doc: Any, ref: str) -> Any:
    assert ref.startswith("#/"), f"only local $refs are allowed: {ref}"
    node = doc
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _deref(doc: Any, node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = _pointer(doc, node["$ref"])
    return node


def _strict(node: Any) -> Any:
    """Refs made absolute (so any sub-schema resolves alone) and objects closed (so a server
    that answers an undocumented field fails the test)."""
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
def _registry() -> tuple[dict[str, Any], Registry]:
    strict = _strict(copy.deepcopy(load_spec()))
    resource = Resource(contents=strict, specification=DRAFT202012)
    return strict, Registry().with_resource(DOC, resource)


def operation_for(method: str, url_path: str) -> tuple[str, dict[str, Any]]:
    """The documented (template, operation) that ``METHOD /path`` (below the server URL) is."""
    spec = load_spec()
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, url_path) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"{method} {url_path} is not in {SPEC_PATH.name}")


def response_schema(template: str, method: str, status: int) -> dict[str, Any]:
    strict, _ = _registry()
    responses = strict["paths"][template][method.lower()]["responses"]
    answer = responses.get(str(status)) or responses.get("default")
    assert answer is not None, f"{method} {template} does not document {status}"
    while "$ref" in answer:
        answer = _pointer(strict, answer["$ref"].removeprefix(DOC))
    content = answer["content"]
    kind = "application/json" if status < 400 else "application/problem+json"
    return content[kind]["schema"]


def schema_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    _, registry = _registry()
    validator = Draft202012Validator(
        schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def assert_documented_response(method: str, url_path: str, status: int, body: Any) -> None:
    template, _ = operation_for(method, url_path)
    errors = schema_errors(response_schema(template, method, status), body)
    assert not errors, f"{method} {url_path} {status}: {errors}"


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (template, method, op)
        for template, item in load_spec()["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


# -- the document -------------------------------------------------------------------------------
def test_the_document_parses_as_openapi_3_1():
    spec = load_spec()
    assert spec["openapi"].startswith("3.1.")
    assert spec["info"]["title"] and spec["info"]["version"]
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        **spec["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
    }
    assert {"bearerAuth": []} in spec["security"]


def test_openapi_spec_validator_accepts_it():
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(load_spec())


def test_every_ref_resolves():
    spec = load_spec()
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(spec)
    assert len(refs) > 50
    for ref in refs:
        _pointer(spec, ref)  # raises if it does not resolve


def test_every_operation_has_a_success_and_error_responses_and_an_id():
    ids = []
    for template, method, op in _operations():
        codes = set(op["responses"])
        assert any(c.startswith("2") for c in codes), f"{method} {template}"
        assert "default" in codes, f"{method} {template} has no default (problem) response"
        assert any(c.startswith(("4", "5")) for c in codes), f"{method} {template}"
        for code in codes - {"default"}:
            if code.startswith(("4", "5")):
                content = _deref(load_spec(), op["responses"][code])["content"]
                assert "application/problem+json" in content, f"{method} {template} {code}"
        ids.append(op["operationId"])
    assert len(ids) == len(set(ids))


def test_every_path_parameter_is_declared_and_required():
    spec = load_spec()
    for template, item in spec["paths"].items():
        in_path = set(re.findall(r"\{([^}]+)\}", template))
        for method in (m for m in METHODS if m in item):
            params = [
                _deref(spec, p)
                for p in item.get("parameters", []) + item[method].get("parameters", [])
            ]
            declared = {p["name"] for p in params if p["in"] == "path"}
            assert declared == in_path, f"{method} {template}: {declared} vs {in_path}"
            assert all(p.get("required") for p in params if p["in"] == "path")


def test_list_endpoints_page_with_next_cursors():
    spec = load_spec()
    for template, method, op in _operations():
        if method != "get" or template.endswith("}") or template.endswith("/budget"):
            continue
        names = {_deref(spec, p)["name"] for p in op.get("parameters", [])}
        assert {"cursor", "limit"} <= names, template
        schema = _deref(spec, op["responses"]["200"]["content"]["application/json"]["schema"])
        assert schema["required"] == ["data", "next"], template


def test_times_have_offsets_and_amounts_are_decimal_strings():
    schemas = load_spec()["components"]["schemas"]
    date_time = schemas["DateTime"]
    check = Draft202012Validator(date_time)
    assert check.is_valid("2026-03-02T14:05:00+00:00") and check.is_valid("2026-03-02T14:05:00Z")
    assert not check.is_valid("2026-03-02T14:05:00")
    amount = Draft202012Validator(schemas["Money"])
    assert amount.is_valid({"amount": "1980.00", "currency": "USD"})
    assert not amount.is_valid({"amount": 1980.0, "currency": "USD"})
    assert not amount.is_valid({"amount": "1.98e3", "currency": "USD"})

    def formats(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["format"]] if isinstance(node.get("format"), str) else []
            return found + [f for v in node.values() for f in formats(v)]
        if isinstance(node, list):
            return [f for v in node for f in formats(v)]
        return []

    # every date-time is the one DateTime schema (with its offset pattern)
    assert formats(schemas).count("date-time") == 1


def test_the_documents_examples_match_their_schemas():
    spec = load_spec()
    seen = 0
    for template, method, op in _operations():
        bodies = [(op.get("requestBody") or {}, None)]
        bodies += [(_deref(spec, r), code) for code, r in op["responses"].items()]
        for holder, _ in bodies:
            for media in (holder.get("content") or {}).values():
                if "example" in media:
                    seen += 1
                    errors = schema_errors(_strict(media["schema"]), media["example"])
                    assert not errors, f"{method} {template}: {errors}"
    assert seen >= 4


# -- the adapter against the document ------------------------------------------------------------
def _example(template: str, method: str, status: str, kind: str = "application/json") -> Any:
    spec = load_spec()
    return _deref(spec, spec["paths"][template][method]["responses"][status])["content"][kind][
        "example"
    ]


def documented_erp() -> tuple[ErpRestAdapter, list[httpx.Request]]:
    """The adapter against a fake that answers with the document's examples."""
    seen: list[httpx.Request] = []
    server_path = "/careflow/v1"

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path.removeprefix(server_path)
        template, op = operation_for(request.method, path)
        spec = load_spec()
        params = [_deref(spec, p) for p in op.get("parameters", [])]
        query_names = {p["name"] for p in params if p["in"] == "query"}
        assert set(request.url.params.keys()) <= query_names, (template, request.url.params)
        if request.method == "POST":
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            errors = schema_errors(_strict(schema), json.loads(request.content))
            assert not errors, errors
            return httpx.Response(201, json=_example(template, "post", "201"))
        if template == "/requisitions/{requisition_id}":
            return httpx.Response(
                200, json=_example("/requisitions", "post", "201") | {"requisition_id": "REQ-9"}
            )
        return httpx.Response(200, json=_example(template, "get", "200"))

    http = HttpClient(
        "erp",
        "https://erp-facade.example-hospital.org" + server_path,
        transport=httpx.MockTransport(handle),
        sleep=lambda _: None,
        policy=RetryPolicy(max_attempts=1),
    )
    return ErpRestAdapter(http), seen


def test_every_operation_the_adapter_uses_is_documented():
    spec = load_spec()
    for method, template in OPERATIONS:
        assert method.lower() in spec["paths"][template], f"{method} {template}"


def test_the_adapter_reads_the_documented_examples():
    from datetime import UTC, datetime

    erp, seen = documented_erp()
    [position] = erp.stock_positions("fac-south", ["IMP-THA-STEM-12", "IMP-UNKNOWN"])
    assert (position.on_hand, position.reserved, position.available) == (1, 1, 0)
    assert (position.supplier_id, position.lead_time_days) == ("sup-jointworks", 5.0)
    created = erp.create_requisition(
        RequisitionRequest(
            facility_id="fac-south",
            supplier_id="sup-jointworks",
            lines=(RequisitionLine(item_id="IMP-THA-STEM-12", quantity=1),),
            needed_by=datetime(2026, 3, 6, 7, tzinfo=UTC),
            reason="shortage for case appt-1003",
            reference="appt-1003:sup-jointworks",
        )
    )
    assert created.requisition_id == "REQ-5001"
    assert created.expected_delivery == datetime(2026, 3, 7, 14, 5, tzinfo=UTC)
    assert erp.get_requisition("REQ-9").requisition_id == "REQ-9"
    assert [(r.method, r.url.path) for r in seen] == [
        ("GET", "/careflow/v1/facilities/fac-south/stock"),
        ("POST", "/careflow/v1/requisitions"),
        ("GET", "/careflow/v1/requisitions/REQ-9"),
    ]
    assert seen[0].url.params.get_list("item_id") == ["IMP-THA-STEM-12", "IMP-UNKNOWN"]


def _erp_answering(response: httpx.Response) -> ErpRestAdapter:
    return ErpRestAdapter(
        HttpClient(
            "erp",
            "http://erp.test/v1",
            transport=httpx.MockTransport(lambda _: response),
            sleep=lambda _: None,
            policy=RetryPolicy(max_attempts=1),
        )
    )


def test_a_documented_problem_becomes_a_rejection_with_field_paths_and_no_detail():
    problem = _example("/requisitions", "post", "422", "application/problem+json")
    problem = problem | {
        "detail": "quantity 0 for Jane Doe",
        "errors": [e | {"detail": "got 0"} for e in problem["errors"]],
    }
    erp = _erp_answering(httpx.Response(422, json=problem))
    with pytest.raises(Rejected) as caught:
        erp.get_requisition("REQ-1")
    message = str(caught.value)
    assert "422" in message and "body /lines/0/quantity (greater_than_equal)" in message
    assert "Jane" not in message and "got 0" not in message


def test_404_is_not_found():
    erp = _erp_answering(
        httpx.Response(404, json={"type": "about:blank", "title": "x", "status": 404})
    )
    with pytest.raises(NotFound, match=r"GET /requisitions/\{requisition_id\} returned 404"):
        erp.get_requisition("REQ-404")


@pytest.mark.parametrize(
    "body",
    [
        {"data": [{"item_id": 1}], "next": None},
        {"positions": []},
        [],
        {"data": [], "next": 7},
    ],
)
def test_an_undocumented_shape_is_unavailable_not_a_crash(body):
    erp = _erp_answering(httpx.Response(200, json=body))
    with pytest.raises(ConnectorUnavailable, match="unexpected shape"):
        erp.stock_positions("fac-south", ["IMP-THA-STEM-12"])


def test_a_position_for_another_facility_is_unavailable():
    body = _example("/facilities/{facility_id}/stock", "get", "200")
    erp = _erp_answering(httpx.Response(200, json=body))
    with pytest.raises(ConnectorUnavailable, match="another facility"):
        erp.stock_positions("fac-north", ["IMP-THA-STEM-12"])


def test_no_items_means_no_request():
    erp, seen = documented_erp()
    assert erp.stock_positions("fac-south", []) == []
    assert seen == []
