"""What every sandbox server's request handler shares: JSON responses on a kept-alive
connection, and the faults of a :class:`FaultPlan` answered in the server's own error
format."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from careflow.localcloud.sandboxes.faults import FaultPlan

LOG = logging.getLogger(__name__)


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as one; no 40 ms stalls
    json_type = "application/json"
    error_type = "application/json"
    malformed_body = b'{"truncated": '

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def error_body(self, status: int, kind: str, message: str) -> Any:
        """The server's error document; ``kind`` is ``unavailable``, ``throttled`` or
        ``timeout``."""
        raise NotImplementedError

    def _send(
        self,
        status: int,
        body: Any,
        headers: Mapping[str, str] | None = None,
        raw: bytes | None = None,
    ) -> None:
        data = raw if raw is not None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", self.error_type if status >= 400 else self.json_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a stall outlasting its timeout): nobody reads the answer.
            self.close_connection = True

    def apply_fault(self, faults: FaultPlan) -> bool:
        """Answers this request with the next planned fault; False when there is none."""
        kind = faults.next()
        if kind == "503":
            self._send(503, self.error_body(503, "unavailable", "sandbox fault: unavailable"))
        elif kind == "429":
            self._send(
                429,
                self.error_body(429, "throttled", "sandbox fault: slow down"),
                {"Retry-After": str(faults.retry_after_s)},
            )
        elif kind == "stall":
            time.sleep(faults.stall_s)
            self._send(503, self.error_body(503, "timeout", "sandbox fault: stalled"))
        elif kind == "malformed":
            self._send(200, None, raw=self.malformed_body)
        else:
            return False
        return True


class _QuietServer(ThreadingHTTPServer):
    """socketserver prints a traceback to stderr for any error in a request thread: a
    client that hung up is normal here (a stalled fault outlasts its timeout), anything
    else is one log line."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (BrokenPipeError, ConnectionResetError)):
            return
        LOG.warning("sandbox request failed: %s", type(error).__name__)


class LoopbackServer:
    """Serving a handler on 127.0.0.1 in a daemon thread: ``port`` 0 takes a free one."""

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def origin(self) -> str:
        assert self._httpd is not None, "start() the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def _serve(self, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self._httpd = _QuietServer(("127.0.0.1", self._port), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name=name, daemon=True).start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
