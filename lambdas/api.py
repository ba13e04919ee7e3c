"""The ``/v1`` partner API behind API Gateway (REST API, Cognito authorizer): the
resolver in :mod:`careflow.api.app` serves the contract's routes."""

from typing import Any

from careflow.api.app import app
from careflow.observability import step


@step("api")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
