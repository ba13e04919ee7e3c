"""A Powertools REST resolver that several threads may call at once.

Powertools keeps the request being resolved on the resolver (``current_event``,
``lambda_context``, the routing ``context`` and the middleware frames; the first two as
class attributes of ``BaseRouter``, shared by every resolver), which is right for a
Lambda instance, that takes one request at a time, and wrong for the local cloud's
gateway, that serves partners from many threads. Here each of them is the calling
thread's own; in a Lambda (one thread) the resolver behaves as Powertools' own.

A route's middleware stack, built on its first call, is built under a lock: two threads
building it at once would wrap the route twice.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder, Route


class _Request(threading.local):
    """One thread's request being resolved (empty until the thread resolves one)."""

    def __init__(self) -> None:
        self.event: Any = None
        self.lambda_context: Any = None
        self.context: dict[str, Any] = {}
        self.frames: list[str] = []


class ThreadSafeRestResolver(APIGatewayRestResolver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._request = _Request()
        self._build_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    # Data descriptors on this class come before BaseRouter's class attributes, so that
    # reading them on this resolver reads the calling thread's own.
    @property
    def current_event(self) -> Any:
        return self._request.event

    @current_event.setter
    def current_event(self, value: Any) -> None:
        self._request.event = value

    @property
    def lambda_context(self) -> Any:
        return self._request.lambda_context

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._request.lambda_context = value

    @property
    def context(self) -> dict[str, Any]:
        return self._request.context

    @context.setter
    def context(self, value: dict[str, Any]) -> None:
        self._request.context = value

    @property
    def processed_stack_frames(self) -> list[str]:
        return self._request.frames

    @processed_stack_frames.setter
    def processed_stack_frames(self, value: list[str]) -> None:
        self._request.frames = value

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        # Powertools sets BaseRouter's class attributes from these; this resolver reads
        # its thread's own, set here and in _to_proxy_event.
        self.lambda_context = context
        try:
            return super().resolve(event, context)
        finally:
            self.current_event = None
            self.lambda_context = None

    def _to_proxy_event(self, event: dict[str, Any]) -> Any:
        proxy = super()._to_proxy_event(event)
        self.current_event = proxy
        return proxy

    def _call_route(self, route: Route, route_arguments: dict[str, str]) -> ResponseBuilder:
        if not route._middleware_stack_built:
            with self._build_lock:
                if not route._middleware_stack_built:
                    route._build_middleware_stack(
                        router_middlewares=self._router_middlewares, app=self
                    )
        return super()._call_route(route, route_arguments)
