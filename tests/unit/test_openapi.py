"""The committed OpenAPI document (docs/openapi.json) is the code's, and valid."""

from __future__ import annotations

import json
from pathlib import Path

from openapi_spec_validator import validate

from careflow.api import openapi
from careflow.api.contract import ROUTES, scope_name

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_committed_document_is_the_one_the_code_generates():
    assert COMMITTED.read_text(encoding="utf-8") == openapi.render(), (
        "docs/openapi.json is stale: run `make openapi` and commit it"
    )


def test_the_document_is_valid_openapi_with_every_route_and_its_scope():
    doc = json.loads(COMMITTED.read_text(encoding="utf-8"))
    validate(doc)
    operations = {
        (method.upper(), path): op
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    }
    assert set(operations) == {(r.method, r.path) for r in ROUTES}
    for route in ROUTES:
        security = operations[(route.method, route.path)]["security"]
        assert security == ([{openapi.SCHEME: [scope_name(route.scope)]}] if route.scope else [])
