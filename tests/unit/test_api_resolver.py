"""The /v1 resolver may be called from several threads at once (the local cloud's
gateway does): each thread resolves its own request."""

from __future__ import annotations

import inspect
import json
import threading
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.api_gateway import Route

from careflow.api.resolver import ThreadSafeRestResolver


def _event(path: str) -> dict[str, Any]:
    return {
        "resource": path,
        "path": path,
        "httpMethod": "GET",
        "headers": {},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "pathParameters": None,
        "requestContext": {"resourcePath": path, "httpMethod": "GET", "stage": "v1"},
        "body": None,
        "isBase64Encoded": False,
    }


def _app(kind: type[APIGatewayRestResolver]) -> tuple[APIGatewayRestResolver, threading.Event]:
    app = kind()
    inside, release = threading.Event(), threading.Event()

    @app.get("/slow/<n>")
    def slow(n: str) -> dict[str, Any]:
        inside.set()
        release.wait(5)  # another request is resolved meanwhile
        return {"n": n, "path": app.current_event.path, "ctx": app.lambda_context}

    @app.get("/fast/<n>")
    def fast(n: str) -> dict[str, Any]:
        release.set()
        return {"n": n, "path": app.current_event.path, "ctx": app.lambda_context}

    app.inside = inside  # type: ignore[attr-defined]
    return app, release


def _interleaved(kind: type[APIGatewayRestResolver]) -> tuple[dict[str, Any], dict[str, Any]]:
    app, release = _app(kind)
    answers: dict[str, Any] = {}
    slow = threading.Thread(
        target=lambda: answers.update(slow=app.resolve(_event("/slow/1"), "ctx-1"))
    )
    slow.start()
    assert app.inside.wait(5)  # type: ignore[attr-defined]
    fast = app.resolve(_event("/fast/2"), "ctx-2")
    slow.join(5)
    release.set()
    return json.loads(answers["slow"]["body"]), json.loads(fast["body"])


def test_a_request_resolved_meanwhile_in_another_thread_does_not_replace_this_ones():
    slow, fast = _interleaved(ThreadSafeRestResolver)
    assert slow == {"n": "1", "path": "/slow/1", "ctx": "ctx-1"}
    assert fast == {"n": "2", "path": "/fast/2", "ctx": "ctx-2"}


def test_powertools_own_resolver_does_mix_them_up():
    """Why the subclass exists: if Powertools kept the request per thread itself, this
    would fail and careflow.api.resolver could go."""
    slow, _ = _interleaved(APIGatewayRestResolver)
    assert slow["path"] == "/fast/2"


def test_the_resolver_is_done_with_its_request_after_resolving():
    app, release = _app(ThreadSafeRestResolver)
    release.set()
    app.resolve(_event("/fast/1"), "ctx")
    assert app.current_event is None and app.lambda_context is None and app.context == {}


@pytest.mark.parametrize(
    ("owner", "name", "needle"),
    [
        (APIGatewayRestResolver, "resolve", "self._to_proxy_event("),
        (
            APIGatewayRestResolver,
            "_call_route",
            "route(router_middlewares=self._router_middlewares",
        ),
        (Route, "__call__", "if not self._middleware_stack_built:"),
        (Route, "_build_middleware_stack", "self._middleware_stack_built = True"),
    ],
)
def test_powertools_still_has_the_shape_the_resolver_relies_on(owner, name, needle):
    assert needle in inspect.getsource(getattr(owner, name))
