"""The breaking-change check: the committed document is compatible with the last released
/v1, and each kind of break is found in a synthetic mutation of it (additive changes are
not)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from careflow.api.compat import breaking_changes, main

DOCS = Path(__file__).resolve().parents[2] / "docs"
RELEASED = DOCS / "openapi-v1-released.json"
CURRENT = DOCS / "openapi.json"
BASE: dict[str, Any] = json.loads(RELEASED.read_text(encoding="utf-8"))
SCHEMAS = "components"


def mutated(change) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    change(doc)
    return doc


def schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return doc["components"]["schemas"][name]


def op(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return doc["paths"][path][method]


def param(doc: dict[str, Any], method: str, path: str, name: str) -> dict[str, Any]:
    return next(p for p in op(doc, method, path)["parameters"] if p["name"] == name)


def test_the_committed_document_keeps_the_released_v1():
    current = json.loads(CURRENT.read_text(encoding="utf-8"))
    assert breaking_changes(BASE, current) == []


def test_the_command_line_is_silent_and_0_when_clean_1_with_a_line_per_break(tmp_path, capsys):
    assert main([str(RELEASED), str(CURRENT)]) == 0
    assert capsys.readouterr().out == ""
    broken = mutated(lambda d: d["paths"].pop("/v1/tasks"))
    path = tmp_path / "new.json"
    path.write_text(json.dumps(broken), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "careflow.api.compat", str(RELEASED), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (1, "GET /v1/tasks: operation removed\n")


def _drop_enum_value(doc):
    schema(doc, "TaskStatus")["enum"].remove("CLOSED")


def _narrow_limit(doc):
    param(doc, "get", "/v1/instances", "limit")["schema"]["maximum"] = 50


BREAKS = {
    "route removed": (
        lambda d: d["paths"]["/v1/tasks/{id}/claim"].pop("post"),
        ["POST /v1/tasks/{id}/claim: operation removed"],
    ),
    "response field removed": (
        lambda d: schema(d, "TaskView")["properties"].pop("due_at"),
        ["GET /v1/tasks: response 200 body.items[].due_at: removed"],
    ),
    "response field no longer required": (
        lambda d: schema(d, "StartResult")["required"].remove("instance_id"),
        [
            "POST /v1/workflows/{workflow}/instances: response 200 body.instance_id: "
            "no longer always present"
        ],
    ),
    "enum value removed in a response": (
        _drop_enum_value,
        ['GET /v1/tasks: response 200 body.items[].status: enum value "CLOSED" removed'],
    ),
    "enum value removed in a request": (
        lambda d: param(d, "get", "/v1/tasks", "status")["schema"]["enum"].remove("CLAIMED"),
        ['GET /v1/tasks: query parameter status: enum value "CLAIMED" removed'],
    ),
    "newly required body field": (
        lambda d: schema(d, "ClaimBody").setdefault("required", []).append("reason"),
        ["POST /v1/tasks/{id}/claim: request body.reason: newly required"],
    ),
    "newly required query parameter": (
        lambda d: param(d, "get", "/v1/instances", "workflow").update(required=True),
        ["GET /v1/instances: query parameter workflow: newly required"],
    ),
    "new required parameter": (
        lambda d: op(d, "get", "/v1/tasks")["parameters"].append(
            {"name": "team", "in": "query", "required": True, "schema": {"type": "string"}}
        ),
        ["GET /v1/tasks: query parameter team: newly required"],
    ),
    "body newly required": (
        lambda d: op(d, "post", "/v1/tasks/{id}/claim")["requestBody"].update(required=True),
        ["POST /v1/tasks/{id}/claim: request body newly required"],
    ),
    "request type narrowed": (
        lambda d: schema(d, "ClaimBody")["properties"]["reason"].update(type="integer"),
        ["POST /v1/tasks/{id}/claim: request body.reason: type narrowed from string to integer"],
    ),
    "request bound tightened": (
        _narrow_limit,
        ["GET /v1/instances: query parameter limit: maximum tightened from 100 to 50"],
    ),
    "response type widened to null": (
        lambda d: schema(d, "TaskView")["properties"]["queue"].update(type=["string", "null"]),
        ["GET /v1/tasks: response 200 body.items[].queue: may now be null"],
    ),
    "request field removed where unknown fields are refused": (
        lambda d: schema(d, "ClaimBody")["properties"].pop("reason"),
        ["POST /v1/tasks/{id}/claim: request body.reason: no longer accepted"],
    ),
    "scope removed": (
        lambda d: d["components"]["securitySchemes"]["cognito"]["flows"]["clientCredentials"][
            "scopes"
        ].pop("careflow/policies.read"),
        ["scope careflow/policies.read removed"],
    ),
    "operation needs another scope": (
        lambda d: op(d, "get", "/v1/tasks").update(
            security=[{"cognito": ["careflow/workflows.read"]}]
        ),
        ["GET /v1/tasks: now needs scope ['careflow/workflows.read']"],
    ),
    "success status removed": (
        lambda d: op(d, "post", "/v1/events")["responses"].pop("202"),
        ["POST /v1/events: response 202 removed"],
    ),
}


@pytest.mark.parametrize("kind", BREAKS)
def test_each_kind_of_break_is_found(kind):
    change, expected = BREAKS[kind]
    found = breaking_changes(BASE, mutated(change))
    for line in expected:
        assert line in found, found


def _new_route(doc):
    doc["paths"]["/v1/tasks/{id}/release"] = {
        "post": copy.deepcopy(op(doc, "post", "/v1/tasks/{id}/claim"))
    }


def _new_optional_field(doc):
    schema(doc, "ClaimBody")["properties"]["note"] = {"type": "string"}
    schema(doc, "TaskView")["properties"]["team"] = {"type": "string"}


def _new_request_enum_value(doc):
    param(doc, "get", "/v1/tasks", "status")["schema"]["enum"].append("ESCALATED")


def _looser(doc):
    param(doc, "get", "/v1/instances", "limit")["schema"]["maximum"] = 500
    op(doc, "get", "/v1/tasks")["parameters"].append(
        {"name": "team", "in": "query", "required": False, "schema": {"type": "string"}}
    )


def test_a_break_in_a_shared_schema_is_named_on_every_operation_that_answers_it():
    found = breaking_changes(
        BASE, mutated(lambda d: schema(d, "TaskView")["properties"].pop("due_at"))
    )
    assert len(found) == 5 and all(line.endswith("due_at: removed") for line in found)


@pytest.mark.parametrize(
    "change", [_new_route, _new_optional_field, _new_request_enum_value, _looser]
)
def test_additive_changes_are_not_breaks(change):
    assert breaking_changes(BASE, mutated(change)) == []


def test_a_route_removed_after_its_released_sunset_is_not_a_break():
    def retired(doc):
        op(doc, "get", "/v1/kpis").update({"deprecated": True, "x-sunset": "2027-01-01"})

    old = mutated(retired)
    new = mutated(lambda d: d["paths"].pop("/v1/kpis"))
    assert breaking_changes(old, new, today=date(2027, 1, 1)) == []
    assert breaking_changes(old, new, today=date(2026, 12, 31)) == [
        "GET /v1/kpis: operation removed"
    ]
