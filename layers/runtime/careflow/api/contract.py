"""The ``/v1`` partner API's routes and OAuth scopes: one table that the API handler
serves and the CDK app deploys (API Gateway resources, methods and their authorization
scopes). A route added here is a route of both; nothing else lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

VERSION = "v1"
RESOURCE_SERVER = "careflow"  # Cognito resource server identifier: scopes are careflow/<name>

SCOPES: dict[str, str] = {
    "workflows.read": "read workflow instances, their milestones and tasks",
    "workflows.write": "start workflow instances",
    "tasks.work": "read the task inbox; claim, release, reassign, complete and acknowledge tasks",
    "events.write": "put domain events on the careflow bus",
    "payer.notify": "deliver PAS Subscription notifications (the payer's rest-hook)",
    "policies.read": "read the policies in force and their versions",
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway form: /v1/instances/{id}
    scope: str | None  # None: no token needed (health)
    summary: str


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
)


def scope_name(scope: str) -> str:
    """The OAuth scope as Cognito issues it: ``careflow/workflows.read``."""
    return f"{RESOURCE_SERVER}/{scope}"
