"""An MLLP listener (HL7 v2 over TCP): the local cloud's on 127.0.0.1:2575, and the Fargate
task's (`mllp_service`) on 0.0.0.0:2575. Standard library only.

Framing: ``0x0B`` message ``0x1C 0x0D``. A connection carries any number of messages; the
sender waits for each ACK before the next (the listener answers each frame in order).
What is not a frame is skipped: bytes before a start block, a frame over ``max_frame``
bytes (answered AR, then skipped to its end), a connection closed mid-frame. A handler
that raises is answered AE. Nothing a peer sends stops the listener.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

START = b"\x0b"
END = b"\x1c\x0d"
DEFAULT_PORT = 2575
MAX_FRAME = 1_048_576  # 1 MiB: an ADT is a few KB

Handler = Callable[[bytes], str]


def frame(message: str | bytes, encoding: str = "utf-8") -> bytes:
    body = message.encode(encoding) if isinstance(message, str) else message
    return START + body + END


def _fallback_ack(code: str, reason: str) -> str:
    from datetime import UTC, datetime

    from careflow.adapters.hl7v2.ack import build_ack

    return build_ack(None, code, now=datetime.now(UTC), reason=reason)  # type: ignore[arg-type]


class _Connection(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(self.server.idle_timeout)
        buffer = b""
        in_frame = False
        skipping = False
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, OSError):
                return
            if not chunk:
                if in_frame:
                    log.info("mllp: a peer closed its connection mid-frame; frame dropped")
                return
            buffer += chunk
            while True:
                if not in_frame:
                    start = buffer.find(START)
                    if start < 0:
                        buffer = b""  # garbage between frames
                        break
                    buffer = buffer[start + 1 :]
                    in_frame, skipping = True, False
                end = buffer.find(END)
                if end < 0:
                    if len(buffer) > self.server.max_frame and not skipping:
                        skipping = True
                        self._send(
                            _fallback_ack("AR", "the message is larger than the listener takes")
                        )
                    if skipping:
                        buffer = buffer[-1:]  # keep a possible 0x1C
                    break
                body, buffer = buffer[:end], buffer[end + len(END) :]
                in_frame = False
                if skipping:
                    continue
                if len(body) > self.server.max_frame:
                    self._send(_fallback_ack("AR", "the message is larger than the listener takes"))
                    continue
                if not self._send(self._answer(body)):
                    return

    def _answer(self, body: bytes) -> str:
        try:
            return self.server.handler(body)
        except Exception:
            log.exception("mllp: the message could not be handled")
            return _fallback_ack("AE", "the message could not be handled: send it again")

    def _send(self, ack: str) -> bool:
        try:
            self.request.sendall(frame(ack))
            return True
        except OSError:
            return False


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self, address: tuple[str, int], handler: Handler, max_frame: int, idle_timeout: float
    ) -> None:
        self.handler = handler
        self.max_frame = max_frame
        self.idle_timeout = idle_timeout
        super().__init__(address, _Connection)


class MllpServer:
    """``handler`` takes a frame's bytes and returns the ACK (ER7 text)."""

    def __init__(
        self,
        port: int,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        max_frame: int = MAX_FRAME,
        idle_timeout: float = 300.0,
    ) -> None:
        self.host = host
        self.port = port
        self.handler = handler
        self.max_frame = max_frame
        self.idle_timeout = idle_timeout
        self._server: _Server | None = None

    def start(self) -> MllpServer:
        """Binds the port (``OSError`` if it is taken) and serves in a daemon thread."""
        self._server = _Server(
            (self.host, self.port), self.handler, self.max_frame, self.idle_timeout
        )
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="mllp", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> MllpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def send(host: str, port: int, messages: list[str], timeout: float = 10.0) -> list[str]:
    """A minimal MLLP sender: each message, waiting for its ACK (tests, `careflow` users)."""
    acks = []
    with socket.create_connection((host, port), timeout=timeout) as sock:
        buffer = b""
        for message in messages:
            sock.sendall(frame(message))
            while END not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("the listener closed the connection")
                buffer += chunk
            body, buffer = buffer.split(END, 1)
            acks.append(body.lstrip(START).decode("utf-8", "replace"))
    return acks
