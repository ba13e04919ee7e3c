"""The control endpoint of ``careflow up`` (loopback, the cloud's port + 1).

- ``GET /health``: ``{"ready": bool, "endpoint": ..., "state_machines": n}``; ready once
  the cloud's tables and state machines exist (``careflow wait`` polls it);
- ``GET /clock``: the virtual clock's time;
- ``POST /clock/advance?seconds=S``: moves the clock forward, by more than nothing and at
  most :data:`MAX_ADVANCE`; anything else is refused with 400 and a problem JSON;
- ``POST /token`` (when the cloud serves the API): an access token from the local issuer,
  ``{"client", "scopes", "facilities", "user", "roles", "minutes"}`` in, ``{"token",
  "expires_in"}`` out (``careflow token``); unknown scopes are refused with 400;
- ``GET /api``: ``{"url": "http://127.0.0.1:8080/v1"}``, where this cloud serves the
  ``/v1`` API (404 when it serves none); ``careflow tasks`` finds the API here;
- ``GET /issuer/.well-known/jwks.json``: the issuer's public key.
"""

from __future__ import annotations

import json
import math
import threading
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

if TYPE_CHECKING:  # the CLI imports this module without starting anything
    from careflow.localcloud.api_server import LocalIssuer
    from careflow.localcloud.cloud import LocalCloud

MAX_ADVANCE = timedelta(days=366)


def advance_refusal(seconds: float) -> str | None:
    """Why the clock may not move by ``seconds``, or None. The CLI and the server agree."""
    if not math.isfinite(seconds):
        return "the clock advance must be a number of seconds"
    if seconds <= 0:
        return "the clock never goes back: give a positive duration"
    if seconds > MAX_ADVANCE.total_seconds():
        return f"at most {MAX_ADVANCE.days} days per advance (asked for {seconds / 86400:.0f} d)"
    return None


class ControlServer:
    def __init__(self, cloud: LocalCloud, port: int, issuer: LocalIssuer | None = None) -> None:
        self.cloud = cloud
        self.port = port
        self.issuer = issuer
        self.api_url: str | None = None  # set once the API listens (``GET /api``)
        self._httpd: ThreadingHTTPServer | None = None

    def start(self) -> ControlServer:
        """Binds the port (``OSError`` if it is taken) and serves in a daemon thread."""
        cloud = self.cloud
        issuer = self.issuer
        control = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                ctype = "application/json" if status < 400 else "application/problem+json"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _problem(self, status: int, title: str) -> None:
                self._send(status, {"title": title, "status": status})

            def do_GET(self) -> None:
                path = urlparse(self.path).path
                if path == "/health":
                    self._send(200, cloud.health())
                elif path == "/clock":
                    self._send(200, {"now": cloud.clock.now().isoformat()})
                elif path == "/api":
                    if control.api_url is None:
                        self._problem(404, "this local cloud serves no API")
                    else:
                        self._send(200, {"url": control.api_url})
                elif issuer is not None and path == "/issuer/.well-known/jwks.json":
                    self._send(200, issuer.jwks())
                else:
                    self._problem(404, "not found")

            def do_POST(self) -> None:
                url = urlparse(self.path)
                if url.path == "/token":
                    self._token()
                    return
                if url.path != "/clock/advance":
                    self._problem(404, "not found")
                    return
                try:
                    seconds = float(parse_qs(url.query)["seconds"][0])
                except (KeyError, ValueError):
                    self._problem(400, "seconds must be a number")
                    return
                refusal = advance_refusal(seconds)
                if refusal:
                    self._problem(400, refusal)
                    return
                cloud.clock.advance(seconds)
                self._send(200, {"now": cloud.clock.now().isoformat()})

            def _token(self) -> None:
                from careflow.localcloud.api_server import token_refusal

                if issuer is None:
                    self._problem(404, "this local cloud serves no API (no token issuer)")
                    return
                try:
                    length = min(int(self.headers.get("Content-Length") or 0), 65536)
                    asked = json.loads(self.rfile.read(length) or b"{}")
                    client = str(asked["client"])
                    scopes = [str(s) for s in asked["scopes"]]
                    facilities = [str(f) for f in asked.get("facilities") or ()]
                    roles = asked.get("roles")
                    roles = None if roles is None else [str(r) for r in roles]
                    user = asked.get("user") or None
                    minutes = float(asked.get("minutes", 60))
                except (KeyError, TypeError, ValueError):
                    self._problem(
                        400,
                        "give client, scopes (a list) and optionally facilities, "
                        "user, roles, minutes",
                    )
                    return
                refusal = token_refusal(scopes, minutes) or (None if client else "name a client")
                if refusal:
                    self._problem(400, refusal)
                    return
                token = issuer.mint(
                    client=client,
                    scopes=scopes,
                    facilities=facilities,
                    user=None if user is None else str(user),
                    roles=roles,
                    lifetime=timedelta(minutes=minutes),
                )
                self._send(200, {"token": token, "expires_in": int(minutes * 60)})

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()


class ControlRefused(Exception):
    """The control endpoint answered with a problem; the message is its title."""


def call(
    port: int,
    method: str,
    path: str,
    host: str = "127.0.0.1",
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A call to the control endpoint. ``OSError`` when nothing answers; ``ControlRefused``
    with the problem's title when it refuses."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"http://{host}:{port}{path}",
        method=method,
        data=data,
        headers={"Content-Type": "application/json"} if data else {},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback only
            result: dict[str, Any] = json.loads(resp.read())
            return result
    except urllib.error.HTTPError as exc:
        try:
            title = json.loads(exc.read()).get("title") or exc.reason
        except ValueError:
            title = exc.reason
        raise ControlRefused(str(title)) from None


def remote_now(port: int, host: str = "127.0.0.1") -> datetime | None:
    try:
        return datetime.fromisoformat(call(port, "GET", "/clock", host)["now"])
    except (OSError, ControlRefused):
        return None
