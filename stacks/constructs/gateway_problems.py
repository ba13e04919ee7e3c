"""API Gateway's own refusals (no token, wrong scope, unknown route, throttled, too large)
as RFC 9457 problem details, like every answer of the handler.

Without these, API Gateway answers ``{"message": "Unauthorized"}`` in its own format and a
partner needs two error parsers. One gateway response per entry of
:data:`careflow.api.problems.GATEWAY_PROBLEMS`, the table the local gateway answers from.
``DEFAULT_4XX``/``DEFAULT_5XX`` keep the status API Gateway chose, so their body carries
API Gateway's own message rather than a fixed status.
"""

from __future__ import annotations

import json

from aws_cdk import aws_apigateway as apigw

from careflow.api.problems import (
    CONTENT_TYPE,
    GATEWAY_PROBLEMS,
    QUOTA_RETRY_AFTER_SECONDS,
    THROTTLED_RETRY_AFTER_SECONDS,
    TYPE_BASE,
)

DEFAULTS = ("DEFAULT_4XX", "DEFAULT_5XX")
RETRY_AFTER = {
    "THROTTLED": THROTTLED_RETRY_AFTER_SECONDS,
    "QUOTA_EXCEEDED": QUOTA_RETRY_AFTER_SECONDS,
}


def _response_type(kind: str) -> apigw.ResponseType:
    # CDK spells DEFAULT_4XX as DEFAULT_4_XX
    return getattr(apigw.ResponseType, kind.replace("_4XX", "_4_XX").replace("_5XX", "_5_XX"))


def template(kind: str) -> str:
    """The body API Gateway sends: a non-VTL template (``$context`` substitution only)."""
    status, title, detail = GATEWAY_PROBLEMS[kind]
    slug = title.lower().replace(" ", "-")
    if kind in DEFAULTS:  # the status is API Gateway's; its message says what happened
        return (
            f'{{"type": "{TYPE_BASE}{slug}", "title": "{title}", '
            '"detail": $context.error.messageString}'
        )
    return json.dumps(
        {"type": f"{TYPE_BASE}{slug}", "title": title, "status": status, "detail": detail}
    )


def add_problem_responses(api: apigw.RestApi) -> dict[str, apigw.GatewayResponse]:
    responses = {}
    for kind, (status, _title, _detail) in GATEWAY_PROBLEMS.items():
        headers = {"Content-Type": f"'{CONTENT_TYPE}'"}
        if kind in RETRY_AFTER:
            headers["Retry-After"] = f"'{RETRY_AFTER[kind]}'"
        responses[kind] = api.add_gateway_response(
            f"Problem{kind.title().replace('_', '')}",
            type=_response_type(kind),
            status_code=None if kind in DEFAULTS else str(status),
            response_headers=headers,
            templates={"application/json": template(kind)},
        )
    return responses
