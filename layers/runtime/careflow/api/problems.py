"""RFC 9457 problem details: the one error map of the ``/v1`` API.

Problems name fields, never their values (a value may be PHI).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://careflow.dev/problems/"

# TaskError.kind -> status, title
TASK_ERRORS: dict[str, tuple[int, str]] = {
    "not_found": (404, "Not Found"),
    "forbidden": (403, "Forbidden"),
    "conflict": (409, "Conflict"),
    "invalid": (422, "Unprocessable Content"),
}


class ApiProblem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        errors: Sequence[dict[str, str]] = (),
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = list(errors)
        self.extra = dict(extra or {})
        self.headers: dict[str, str] = {}  # e.g. a deprecated route's Deprecation, Sunset

    def body(self) -> str:
        slug = self.title.lower().replace(" ", "-")
        doc: dict[str, Any] = {
            "type": f"{TYPE_BASE}{slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }
        if self.errors:
            doc["errors"] = self.errors
        return json.dumps(doc)


def _field(prefix: str, loc: Sequence[Any]) -> str:
    return ".".join([prefix, *(str(part) for part in loc)]) if loc else prefix


def invalid(error: ValidationError, *, prefix: str, detail: str | None = None) -> ApiProblem:
    """400 naming each failing field and pydantic's error type (never the input)."""
    errors = [
        {"field": _field(prefix, err["loc"]), "reason": err["type"]}
        for err in error.errors(include_input=False, include_url=False, include_context=False)
    ]
    return ApiProblem(
        400,
        "Bad Request",
        detail or f"The request's {prefix} is not valid: see errors.",
        errors=errors,
    )


def bad_field(field: str, reason: str, detail: str) -> ApiProblem:
    return ApiProblem(400, "Bad Request", detail, errors=[{"field": field, "reason": reason}])
