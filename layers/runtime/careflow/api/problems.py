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


# -- the gateway's own refusals -------------------------------------------------------------
# What API Gateway answers before the handler runs (its "gateway responses"), as problem
# details. The CDK app installs one gateway response per entry (stacks/constructs/
# gateway_problems.py); the local gateway answers the same bodies for the same refusals, so
# a partner's error handling is the one it will meet on AWS. Keys are API Gateway's
# ResponseType names. API Gateway cannot tell "no token" from "a bad token" (both are
# UNAUTHORIZED), so neither does the detail.
GATEWAY_PROBLEMS: dict[str, tuple[int, str, str]] = {
    "UNAUTHORIZED": (401, "Unauthorized", "The request carries no valid access token."),
    "EXPIRED_TOKEN": (401, "Unauthorized", "The request carries no valid access token."),
    "INVALID_SIGNATURE": (401, "Unauthorized", "The request carries no valid access token."),
    "ACCESS_DENIED": (403, "Forbidden", "The access token does not allow this route."),
    "INVALID_API_KEY": (403, "Forbidden", "The request's API key is missing or not valid."),
    "WAF_FILTERED": (403, "Forbidden", "The request was refused by the API's firewall."),
    # API Gateway's answer for a path or method the API does not have
    "MISSING_AUTHENTICATION_TOKEN": (404, "Not Found", "No such route."),
    "RESOURCE_NOT_FOUND": (404, "Not Found", "No such route."),
    "REQUEST_TOO_LARGE": (413, "Content Too Large", "The request body is too large."),
    "UNSUPPORTED_MEDIA_TYPE": (415, "Unsupported Media Type", "Send the body as JSON."),
    "BAD_REQUEST_PARAMETERS": (
        400,
        "Bad Request",
        "A required path parameter or header is missing (a start needs Idempotency-Key).",
    ),
    "BAD_REQUEST_BODY": (400, "Bad Request", "The request body is not valid."),
    "THROTTLED": (429, "Too Many Requests", "The client's usage plan allows no more now."),
    "QUOTA_EXCEEDED": (429, "Too Many Requests", "The client's usage plan quota is used up."),
    "INTEGRATION_FAILURE": (502, "Bad Gateway", "The API's handler failed."),
    "INTEGRATION_TIMEOUT": (504, "Gateway Timeout", "The API's handler did not answer in time."),
    "DEFAULT_4XX": (400, "Bad Request", "The request was refused."),
    "DEFAULT_5XX": (500, "Internal Server Error", "The API failed to answer."),
}
# A throttled client retries after this many seconds at the soonest (API Gateway's gateway
# responses carry static headers; the local gateway computes the exact wait).
THROTTLED_RETRY_AFTER_SECONDS = 1
QUOTA_RETRY_AFTER_SECONDS = 3600


def gateway_problem(kind: str, detail: str | None = None) -> ApiProblem:
    """The gateway's refusal ``kind`` (an API Gateway ResponseType name) as a problem."""
    status, title, text = GATEWAY_PROBLEMS[kind]
    return ApiProblem(status, title, detail or text)
