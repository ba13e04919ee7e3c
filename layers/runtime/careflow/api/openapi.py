"""The ``/v1`` API's OpenAPI document, generated from the code: the contract's routes
(:mod:`careflow.api.contract`: paths, scopes, deprecation) and what each route function
declares to :func:`careflow.api.app.route` (its query model, its body model, its response
model and statuses, the problems it answers), the schemas from the pydantic models
themselves.

``python -m careflow.api.openapi`` prints it; ``make openapi`` writes ``docs/openapi.json``,
the committed copy a test holds equal to the code (so a change to the API shows in review);
``docs/openapi-v1-released.json`` is the last released one, that
:mod:`careflow.api.compat` compares it with.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from careflow.api.contract import (
    RESOURCE_SERVER,
    ROUTES,
    SCOPES,
    VERSION,
    Route,
    deprecation_headers,
    scope_name,
)

if TYPE_CHECKING:
    from careflow.api.app import Operation

TITLE = "careflow partner API"
DOC_VERSION = "1.0.0"
SCHEME = "cognito"
JSON = "application/json"
PROBLEM = "application/problem+json"
REF = "#/components/schemas/{model}"

# why each problem status, in the document's words
PROBLEMS: dict[int, str] = {
    400: "the query, body or a header is not valid (errors names the fields), or the body "
    "is not JSON",
    401: "no valid access token",
    403: "the token lacks the route's scope, or does not name the facility, or names no "
    "person for a task action, or the person's roles may not",
    404: "no such resource (or one of another facility); the detail never repeats the id",
    409: "a conflict with the resource's state",
    410: "the route is retired (past its Sunset)",
    413: "the body is too large",
    415: "the body's Content-Type is not one the route takes",
    422: "valid, but not something this resource takes",
    429: "over the client's usage plan: retry after Retry-After seconds",
    501: "not implemented with this deployment",
    503: "a dependency does not answer",
}
SUCCESS: dict[int, str] = {200: "OK", 201: "Created", 202: "Accepted"}


def _deprecation_header_docs(route: Route) -> dict[str, Any]:
    docs = {
        "Deprecation": "RFC 9745: when the route was deprecated (@<unix seconds>)",
        "Sunset": "RFC 8594: when the route stops answering (an HTTP-date)",
        "Link": 'the successor (rel="successor-version") and the notice (rel="deprecation")',
    }
    return {
        name: {"description": docs[name], "schema": {"type": "string"}}
        for name in deprecation_headers(route)
    }


def _schemas(
    models: Iterable[tuple[type[BaseModel], JsonSchemaMode]],
) -> dict[str, Any]:
    pairs = sorted(set(models), key=lambda pair: (pair[0].__name__, pair[1]))
    _, top = models_json_schema(pairs, ref_template=REF)
    found: dict[str, Any] = dict(top.get("$defs", {}))
    for model, mode in pairs:  # a model no other refers to is not among the $defs
        found.setdefault(model.__name__, model.model_json_schema(mode=mode, ref_template=REF))
    return found


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = schemas.pop(model.__name__)  # the parameters carry it, not a schema
    required = set(schema.get("required", ()))
    params = []
    for name, declared in schema["properties"].items():
        prop = dict(declared)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if "description" in prop:
            param["description"] = prop.pop("description")
        variants = prop.get("anyOf", [])
        if name not in required and {"type": "null"} in variants and len(variants) == 2:
            # an absent parameter, not a null one: the query string has no null
            prop = next(v for v in variants if v != {"type": "null"})
        prop.pop("title", None)
        param["schema"] = prop
        params.append(param)
    return params


def _header_parameter(name: str) -> dict[str, Any]:
    from careflow.api.app import IDEMPOTENCY_KEY

    known = {
        "Idempotency-Key": (
            "the caller's key for this start (scoped to the caller): a replay answers 200 "
            "with the first instance",
            {"type": "string", "pattern": IDEMPOTENCY_KEY.pattern},
        )
    }
    description, schema = known[name]
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": schema,
    }


def _bodies(op: Operation) -> tuple[type[BaseModel], ...]:
    if op.body is None:
        return ()
    return (op.body,) if isinstance(op.body, type) else tuple(op.body())


def _problem(status: int, notice: dict[str, Any]) -> dict[str, Any]:
    from careflow.api.schemas import ProblemDetails

    problem: dict[str, Any] = {
        "description": PROBLEMS[status],
        "content": {PROBLEM: {"schema": _ref(ProblemDetails)}},
    }
    headers = dict(notice)
    if status == 429:
        headers["Retry-After"] = {
            "description": "whole seconds to wait",
            "schema": {"type": "integer", "minimum": 1},
        }
    if headers:
        problem["headers"] = headers
    return problem


def _responses(route: Route, op: Operation) -> dict[str, Any]:
    problems = set(op.errors) | {429}
    if op.body is not None:
        problems |= {400, 413}
    if op.query is not None or op.headers:
        problems.add(400)
    if route.scope is not None:
        problems |= {401, 403}
    if "{" in route.path:
        problems.add(404)
    if route.sunset is not None:
        problems.add(410)
    notice = _deprecation_header_docs(route)
    responses: dict[str, Any] = {}
    for status in op.status:
        schema = _ref(op.response) if op.response else {"type": "object"}
        if op.media_type != JSON:
            schema = {"type": "string"}
        answer: dict[str, Any] = {
            "description": SUCCESS[status],
            "content": {op.media_type: {"schema": schema}},
        }
        if notice:
            answer["headers"] = dict(notice)
        responses[str(status)] = answer
    for status in sorted(problems):
        responses[str(status)] = _problem(status, notice)
    if op.media_type != JSON and "400" in responses:
        # a text route answers what it cannot take in its own format too (an HL7 v2 AR)
        responses["400"]["content"][op.media_type] = {"schema": {"type": "string"}}
        responses["400"]["description"] += f"; or, as {op.media_type}, the refusal"
    return responses


def _operation(route: Route, op: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{(\w+)\}", route.path)
    ]
    params += [_header_parameter(name) for name in op.headers]
    if op.query is not None:
        params += _query_parameters(op.query, schemas)
    operation: dict[str, Any] = {
        "operationId": op.name,
        "summary": route.summary,
        "security": [{SCHEME: [scope_name(route.scope)]}] if route.scope else [],
    }
    if route.deprecated is not None or route.sunset is not None:
        operation["deprecated"] = True
        if route.sunset is not None:
            operation["x-sunset"] = route.sunset.isoformat()
        if route.successor is not None:
            operation["x-successor"] = route.successor
    if params:
        operation["parameters"] = params
    bodies = _bodies(op)
    if op.media_type != JSON:
        text = {"schema": {"type": "string"}}
        operation["requestBody"] = {
            "required": True,
            "content": {op.media_type: text, "text/plain": text},
        }
    elif bodies:
        schema = _ref(bodies[0]) if len(bodies) == 1 else {"anyOf": [_ref(b) for b in bodies]}
        operation["requestBody"] = {
            "required": op.body_required,
            "content": {JSON: {"schema": schema}},
        }
        if not isinstance(op.body, type) and op.body is not None and op.body.__doc__:
            operation["requestBody"]["description"] = " ".join(op.body.__doc__.split())
    operation["responses"] = _responses(route, op)
    return operation


def document() -> dict[str, Any]:
    from careflow.api.app import OPERATIONS
    from careflow.api.schemas import ProblemDetails

    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ProblemDetails, "serialization")]
    for op in OPERATIONS.values():
        if op.query is not None:
            models.append((op.query, "validation"))
        models.extend((body, "validation") for body in _bodies(op))
        if op.response is not None:
            models.append((op.response, "serialization"))
    schemas = _schemas(models)
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        op = OPERATIONS[(route.method, route.path)]
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, op, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": DOC_VERSION,
            "description": (
                f"Version {VERSION} in the path. OAuth 2.0 access tokens from the careflow "
                f"user pool; scopes of the resource server `{RESOURCE_SERVER}`. Errors are "
                "RFC 9457 problem details (application/problem+json). A deprecated "
                "operation's answers carry Deprecation, Sunset and Link headers; after its "
                "Sunset it answers 410."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                SCHEME: {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": (
                                "https://<domain>.auth.<region>.amazoncognito.com/oauth2/token"
                            ),
                            "scopes": {scope_name(name): text for name, text in SCOPES.items()},
                        }
                    },
                }
            },
        },
    }


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
