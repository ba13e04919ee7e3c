"""The committed OpenAPI document (docs/openapi.json) is the code's, valid, complete, and
true: the handler's real answers validate against its schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from careflow.api import app as api
from careflow.api import openapi
from careflow.api.contract import ROUTES, scope_name
from careflow.api.schemas import PartnerEvent
from careflow.domain.records import Milestone
from tests.unit.test_api import (  # noqa: F401 - wired is the fixture
    BOOKED,
    START,
    _event,
    call,
    claims,
    instance,
    task_for,
    wired,
)

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
DOC = json.loads(COMMITTED.read_text(encoding="utf-8"))
UNDESCRIBED: set[tuple[str, str]] = set()  # routes without a response model: none now
# routes whose body and answer are text in a format of their own, not JSON (ER7)
TEXT: dict[tuple[str, str], str] = {("POST", "/v1/hl7v2"): "x-application/hl7-v2+er7"}


def _operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    }


def test_the_committed_document_is_the_one_the_code_generates():
    assert COMMITTED.read_text(encoding="utf-8") == openapi.render(), (
        "docs/openapi.json is stale: run `make openapi` and commit it"
    )


def test_the_document_is_valid_openapi_with_every_route_and_its_scope():
    validate(DOC)
    operations = _operations(DOC)
    assert set(operations) == {(r.method, r.path) for r in ROUTES}
    for route in ROUTES:
        security = operations[(route.method, route.path)]["security"]
        assert security == ([{openapi.SCHEME: [scope_name(route.scope)]}] if route.scope else [])


def test_every_operation_describes_its_inputs_answers_and_problems():
    for (method, path), op in _operations(DOC).items():
        responses = op["responses"]
        ok = [s for s in responses if s.startswith("2")]
        assert ok, (method, path)
        text = TEXT.get((method, path))
        if text is not None:
            for status in ok:
                assert responses[status]["content"] == {text: {"schema": {"type": "string"}}}
            assert set(op["requestBody"]["content"]) == {text, "text/plain"}
            # its own refusal (an HL7 AR) is a 400 in its format, beside the gateway's
            assert responses["400"]["content"][text] == {"schema": {"type": "string"}}
        elif (method, path) not in UNDESCRIBED:
            for status in ok:
                assert "$ref" in responses[status]["content"]["application/json"]["schema"]
        problems = [s for s in responses if not s.startswith("2")]
        for status in problems:
            content = {k: v for k, v in responses[status]["content"].items() if k != text}
            assert content == {
                "application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/ProblemDetails"}
                }
            }
        assert "429" in problems
        assert responses["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
        if op["security"]:
            assert {"401", "403"} <= set(problems)
        if "requestBody" in op:
            assert {"400", "413"} <= set(problems)
            if text is None:
                assert set(op["requestBody"]["content"]) == {"application/json"}


def test_bodies_queries_and_the_idempotency_header_are_in_the_document():
    ops = _operations(DOC)
    body = ops[("POST", "/v1/tasks/{id}/complete")]["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CompleteBody"
    }
    assert ops[("POST", "/v1/tasks/{id}/claim")]["requestBody"]["required"] is False
    complete = DOC["components"]["schemas"]["CompleteBody"]
    assert complete["required"] == ["decision"] and complete["additionalProperties"] is False
    inbox = {p["name"]: p for p in ops[("GET", "/v1/tasks")]["parameters"]}
    assert inbox["queue"]["required"] and not inbox["facility"]["required"]
    assert inbox["status"]["schema"]["enum"] == ["OPEN", "CLAIMED"]
    search = {p["name"]: p for p in ops[("GET", "/v1/instances")]["parameters"]}
    assert search["limit"]["schema"] == {
        "default": 50,
        "maximum": 100,
        "minimum": 1,
        "type": "integer",
    }
    start = ops[("POST", "/v1/workflows/{workflow}/instances")]
    header = [p for p in start["parameters"] if p["in"] == "header"]
    assert [(p["name"], p["required"]) for p in header] == [("Idempotency-Key", True)]
    assert {"200", "201", "409", "422"} <= set(start["responses"])
    assert "AppointmentBooked" in json.dumps(start["requestBody"])


def test_the_partner_sources_documented_are_the_ones_served():
    documented = PartnerEvent.model_json_schema()["properties"]["source"]["enum"]
    assert set(documented) == api.PARTNER_SOURCES


# -- the handler's real answers validate against the document ------------------------------
def _validator(method: str, path: str, status: int, content_type: str) -> Draft202012Validator:
    response = _operations(DOC)[(method, path)]["responses"][str(status)]
    schema = response["content"][content_type]["schema"]
    return Draft202012Validator({**schema, "components": DOC["components"]})


def check(route: tuple[str, str], answer: tuple[int, Any, dict[str, str]]) -> int:
    status, body, headers = answer
    content_type = headers["Content-Type"]
    _validator(*route, status, content_type).validate(body)
    return status


def _assert_valid_request(route: tuple[str, str], body: Any) -> None:
    schema = _operations(DOC)[route]["requestBody"]["content"]["application/json"]["schema"]
    Draft202012Validator({**schema, "components": DOC["components"]}).validate(body)


def test_real_answers_validate_against_the_documents_schemas(wired):  # noqa: F811
    inst = instance(1)
    wired.store.put_instance(inst)
    wired.store.record_milestone(
        Milestone(instance_id=inst.instance_id, name="readiness_checked", at=inst.started_at)
    )
    task = task_for(wired.store, inst)
    me = claims("coordinator-mdiaz", scope="careflow/tasks.work", roles="care_coordinator")
    tid = task.task_id

    assert check(("GET", "/v1/health"), call("GET", "/v1/health")) == 200
    got = ("GET", "/v1/instances/{id}")
    assert check(got, call("GET", f"/v1/instances/{inst.instance_id}", who=claims())) == 200
    assert check(got, call("GET", "/v1/instances/nope", who=claims())) == 404
    assert check(got, call("GET", "/v1/instances/x")) == 401
    search = ("GET", "/v1/instances")
    query = {"workflow": inst.workflow_id, "limit": "1"}
    assert check(search, call("GET", "/v1/instances", who=claims(), query=query)) == 200
    assert check(search, call("GET", "/v1/instances", who=claims(), query={"limit": "0"})) == 400
    inbox = ("GET", "/v1/tasks")
    assert (
        check(inbox, call("GET", "/v1/tasks", who=me, query={"queue": "care_coordinator"})) == 200
    )
    claim = ("POST", "/v1/tasks/{id}/claim")
    assert check(claim, call("POST", f"/v1/tasks/{tid}/claim", who=me)) == 200
    other = claims("coordinator-akim", scope="careflow/tasks.work", roles="care_coordinator")
    assert check(claim, call("POST", f"/v1/tasks/{tid}/claim", who=other)) == 409
    complete = ("POST", "/v1/tasks/{id}/complete")
    decided = {"decision": "NOPE", "reason": "r"}
    _assert_valid_request(complete, decided)
    assert check(complete, call("POST", f"/v1/tasks/{tid}/complete", who=me, body=decided)) == 422
    decided = {"decision": "PROCEED"}
    _assert_valid_request(complete, decided)
    assert check(complete, call("POST", f"/v1/tasks/{tid}/complete", who=me, body=decided)) == 200

    start = ("POST", "/v1/workflows/{workflow}/instances")
    _assert_valid_request(start, BOOKED)
    writer = claims(scope="careflow/workflows.write")
    key = {"Idempotency-Key": "key-00000001"}
    assert check(start, call("POST", START, who=writer, body=BOOKED, headers=key)) == 201
    assert check(start, call("POST", START, who=writer, body=BOOKED, headers=key)) == 200
    again = {"Idempotency-Key": "key-00000002"}
    assert check(start, call("POST", START, who=writer, body=BOOKED, headers=again)) == 409
    assert check(start, call("POST", START, who=writer, body=BOOKED)) == 400

    events = ("POST", "/v1/events")
    _assert_valid_request(events, _event())
    put = claims(scope="careflow/events.write")
    assert check(events, call("POST", "/v1/events", who=put, body=_event())) == 202
    assert check(events, call("POST", "/v1/events", who=put, body=_event("fac-south"))) == 403

    policy = ("GET", "/v1/policies/{name}")
    reader = claims(scope="careflow/policies.read")
    assert check(policy, call("GET", "/v1/policies/surgical-readiness", who=reader)) == 200


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_every_route_declares_its_description_to_the_document(route):
    op = api.OPERATIONS[(route.method, route.path)]
    if (route.method, route.path) in TEXT:  # ER7 in and out: no JSON model to declare
        assert op.media_type == TEXT[(route.method, route.path)]
        return
    if (route.method, route.path) not in UNDESCRIBED:
        assert op.response is not None
    optional = {"/v1/tasks/{id}/claim", "/v1/tasks/{id}/release", "/v1/tasks/{id}/acknowledge"}
    if route.method == "POST":  # a body, optional only where a reason is all it carries
        assert op.body is not None
        assert op.body_required == (route.path not in optional)
