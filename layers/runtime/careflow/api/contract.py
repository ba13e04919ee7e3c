"""The ``/v1`` partner API's routes and OAuth scopes: one table that the API handler
serves and the CDK app deploys (API Gateway resources, methods and their authorization
scopes). A route added here is a route of both; nothing else lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime

VERSION = "v1"
RESOURCE_SERVER = "careflow"  # Cognito resource server identifier: scopes are careflow/<name>

SCOPES: dict[str, str] = {
    "workflows.read": "read workflow instances, their milestones and tasks",
    "workflows.write": "start workflow instances",
    "tasks.work": "read the task inbox; claim, release, reassign, complete and acknowledge tasks",
    "events.write": "put domain events on the careflow bus",
    "payer.notify": "deliver PAS Subscription notifications (the payer's rest-hook)",
    "policies.read": "read the policies in force and their versions",
    "hl7v2.write": "send HL7 v2 messages (ADT, SIU) in ER7: the interface engine",
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway form: /v1/instances/{id}
    scope: str | None  # None: no token needed (health)
    summary: str
    # Retiring a route (docs/api.md "Retiring a route"): from ``deprecated`` on, its
    # answers carry Deprecation, Sunset and Link headers and the document marks it
    # deprecated; from ``sunset`` on it answers 410 Gone.
    deprecated: date | None = None
    sunset: date | None = None
    successor: str | None = None  # the route that replaces it: /v1/... or a URL
    deprecation_link: str = "https://careflow.dev/docs/api#retiring-a-route"


ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/health", None, "whether the API and its table answer"),
    Route(
        "POST",
        "/v1/workflows/{workflow}/instances",
        "workflows.write",
        "start an instance (Idempotency-Key header)",
    ),
    Route("GET", "/v1/instances", "workflows.read", "search instances (paginated)"),
    Route("GET", "/v1/instances/{id}", "workflows.read", "an instance, its milestones and tasks"),
    Route("GET", "/v1/tasks", "tasks.work", "the task inbox by queue, facility and status"),
    Route("POST", "/v1/tasks/{id}/claim", "tasks.work", "claim a task as the caller"),
    Route("POST", "/v1/tasks/{id}/complete", "tasks.work", "complete a claimed task"),
    Route("POST", "/v1/tasks/{id}/reassign", "tasks.work", "hand a task to another person"),
    Route("POST", "/v1/tasks/{id}/release", "tasks.work", "put a claimed task back in its queue"),
    Route(
        "POST",
        "/v1/tasks/{id}/acknowledge",
        "tasks.work",
        "complete a claimed task that offers no decision",
    ),
    Route("POST", "/v1/events", "events.write", "a domain event, validated, onto the bus"),
    Route("POST", "/v1/payer/notifications", "payer.notify", "a PAS Subscription notification"),
    Route("GET", "/v1/policies/{name}", "policies.read", "a policy in force and its version"),
    Route("GET", "/v1/kpis", "workflows.read", "the workflows' KPIs"),
    Route("GET", "/v1/kpis/series", "workflows.read", "KPIs over time, per interval"),
    Route(
        "GET", "/v1/board", "workflows.read", "instances not yet ended, by workflow and milestone"
    ),
    Route("GET", "/v1/queues", "tasks.work", "the task queues: depth, overdue, aging buckets"),
    Route("POST", "/v1/hl7v2", "hl7v2.write", "an HL7 v2 message (ER7) in, its ACK out"),
)


def scope_name(scope: str) -> str:
    """The OAuth scope as Cognito issues it: ``careflow/workflows.read``."""
    return f"{RESOURCE_SERVER}/{scope}"


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def deprecation_headers(route: Route) -> dict[str, str]:
    """The headers a deprecated route's answers carry (none for a route in good standing):
    ``Deprecation`` (RFC 9745, ``@<unix seconds>``), ``Sunset`` (RFC 8594, an HTTP-date)
    and ``Link`` to the successor and to the deprecation notice."""
    if route.deprecated is None and route.sunset is None:
        return {}
    headers: dict[str, str] = {}
    if route.deprecated is not None:
        headers["Deprecation"] = f"@{int(_midnight(route.deprecated).timestamp())}"
    if route.sunset is not None:
        headers["Sunset"] = format_datetime(_midnight(route.sunset), usegmt=True)
    links = [f'<{route.deprecation_link}>; rel="deprecation"']
    if route.successor is not None:
        links.insert(0, f'<{route.successor}>; rel="successor-version"')
    headers["Link"] = ", ".join(links)
    return headers
