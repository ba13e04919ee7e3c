"""A tiny control endpoint of ``careflow up`` (loopback only): read and advance the clock."""

from __future__ import annotations

import json
import threading
import urllib.request
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from careflow.localcloud.cloud import LocalCloud


class ControlServer:
    def __init__(self, cloud: LocalCloud, port: int) -> None:
        self.cloud = cloud
        self.port = port
        self._httpd: ThreadingHTTPServer | None = None

    def start(self) -> ControlServer:
        cloud = self.cloud

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

            def do_GET(self) -> None:
                if urlparse(self.path).path == "/clock":
                    self._send(200, {"now": cloud.clock.now().isoformat()})
                else:
                    self._send(404, {"title": "not found", "status": 404})

            def do_POST(self) -> None:
                url = urlparse(self.path)
                if url.path != "/clock/advance":
                    self._send(404, {"title": "not found", "status": 404})
                    return
                try:
                    seconds = float(parse_qs(url.query)["seconds"][0])
                    if seconds < 0:
                        raise ValueError
                except (KeyError, ValueError):
                    self._send(
                        400, {"title": "seconds must be a non-negative number", "status": 400}
                    )
                    return
                cloud.clock.advance(seconds)
                self._send(200, {"now": cloud.clock.now().isoformat()})

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()


def call(port: int, method: str, path: str) -> dict[str, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback only
        result: dict[str, Any] = json.loads(resp.read())
        return result


def remote_now(port: int) -> datetime | None:
    try:
        return datetime.fromisoformat(call(port, "GET", "/clock")["now"])
    except OSError:
        return None
