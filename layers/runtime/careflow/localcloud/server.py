"""The local cloud's AWS endpoint: moto's WSGI app on loopback, behind a readiness gate.

Two differences from moto's ``ThreadedMotoServer``:

- the socket is bound in :meth:`MotoEndpoint.start`, in the caller's thread, so a busy
  port raises ``OSError`` at once (moto's binds in its server thread, where werkzeug
  prints the error and exits the thread, and its ``start`` then waits forever);
- until the cloud says it is ready (tables created, state machines deployed), every
  request is answered ``503`` with a JSON body; ``GET /_careflow/health`` is answered by
  the gate at any time with the cloud's health. The cloud's own deployment calls do not
  meet the gate: they are answered in-process (:mod:`careflow.localcloud.moto`).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

HEALTH_PATH = "/_careflow/health"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def readiness_gate(app: WsgiApp, health: Callable[[], dict[str, Any]]) -> WsgiApp:
    """``app`` once ``health()["ready"]``; 503 before. ``HEALTH_PATH`` answers the health."""

    def gated(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        state = health()
        if environ.get("PATH_INFO") == HEALTH_PATH:
            return _json(start_response, "200 OK", state)
        if not state.get("ready"):
            body = {"message": "the careflow local cloud is starting; try again shortly"}
            return _json(start_response, "503 Service Unavailable", body, retry_after=True)
        return app(environ, start_response)

    return gated


def _json(
    start_response: Callable[..., Any], status: str, body: dict[str, Any], retry_after: bool = False
) -> list[bytes]:
    data = json.dumps(body).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    if retry_after:
        headers.append(("Retry-After", "1"))
    start_response(status, headers)
    return [data]


class MotoEndpoint:
    def __init__(self, host: str, port: int, health: Callable[[], dict[str, Any]]) -> None:
        self.host = host
        self.port = port
        self._health = health
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> MotoEndpoint:
        """Binds the port (``OSError`` if it is taken) and serves in a daemon thread."""
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = readiness_gate(DomainDispatcherApplication(create_backend_app), self._health)
        # Bound here rather than by werkzeug, which reports a busy port by printing and
        # calling sys.exit in whichever thread it runs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as HTTPServer does
        try:
            sock.bind((self.host, self.port))
            sock.listen(128)
            self._server = make_server(
                self.host,
                self.port,
                app,
                threaded=True,
                request_handler=MotoRequestHandler,
                fd=sock.fileno(),
            )
        finally:
            sock.close()  # the server holds its own duplicate of the socket
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="moto-endpoint", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
