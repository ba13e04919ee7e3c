"""Which local cloud a ``careflow`` command talks to, and whether it is there.

One rule for every command: ``--port P`` (anywhere on the command line) wins, then the
``CAREFLOW_ENDPOINT`` environment variable (``http://127.0.0.1:4600``), then
``http://127.0.0.1:4566``. The control endpoint (clock, health) is on the port after it.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import socket
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DEFAULT_PORT = 4566
CONTROL_PORT_OFFSET = 1  # the control endpoint (clock, health) listens on port + 1
ENDPOINT_ENV = "CAREFLOW_ENDPOINT"
HEALTH_PATH = "/health"
REGION = "us-east-1"  # the local cloud's one region


class EndpointError(ValueError):
    """``CAREFLOW_ENDPOINT`` is not an endpoint; the message says so in one line."""


class CloudUnreachable(Exception):
    """No ready local cloud at the endpoint; the message is the one line to show."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def control_port(self) -> int:
        return self.port + CONTROL_PORT_OFFSET

    def client(self, service: str) -> Any:
        """A boto3 client of this local cloud (its fixed test credentials), built once per
        endpoint and service."""
        return _client(self.url, service)


@functools.cache
def _client(url: str, service: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",  # moto's fixed test credentials
        aws_secret_access_key="testing",
    )


def port_number(text: str) -> int:
    """An argparse type: a port the cloud can take with the control port after it."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65534:
        raise argparse.ArgumentTypeError(f"not a port number: {text} (1 to 65534)")
    return port


def port_options() -> argparse.ArgumentParser:
    """The parent parser every subcommand shares, so that ``--port`` goes anywhere."""
    parent = argparse.ArgumentParser(add_help=False)
    add_port_option(parent)
    return parent


def add_port_option(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand's parser leaves a --port given before it in place
    parser.add_argument(
        "--port",
        type=port_number,
        default=argparse.SUPPRESS,
        help=f"the local cloud's port (default: ${ENDPOINT_ENV}'s, else {DEFAULT_PORT})",
    )


def from_env(environ: Any = None) -> Endpoint | None:
    text = (environ if environ is not None else os.environ).get(ENDPOINT_ENV, "").strip()
    if not text:
        return None
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise EndpointError(
            f"{ENDPOINT_ENV}={text!r} is not an endpoint (e.g. http://127.0.0.1:4566)"
        )
    return Endpoint(parts.hostname, port)


def resolve(args: argparse.Namespace, environ: Any = None) -> Endpoint:
    """The endpoint a command talks to (or, for ``careflow up``, serves on)."""
    port = getattr(args, "port", None)
    if port is not None:
        return Endpoint("127.0.0.1", port)
    return from_env(environ) or Endpoint("127.0.0.1", DEFAULT_PORT)


def health(endpoint: Endpoint, timeout: float = 2.0) -> dict[str, Any] | None:
    """The control endpoint's health, or None when nothing answers there."""
    url = f"http://{endpoint.host}:{endpoint.control_port}{HEALTH_PATH}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body: dict[str, Any] = json.loads(resp.read())
            return body
    except (OSError, ValueError):
        return None


def require_ready(endpoint: Endpoint) -> None:
    """Raises :class:`CloudUnreachable` unless a ready local cloud answers at ``endpoint``.

    The AWS endpoint itself answers 503 until the cloud is ready, and its
    ``/_careflow/health`` says so; a cloud started in-process (tests) has no control
    endpoint, so that is where this looks."""
    from careflow.localcloud.server import HEALTH_PATH as GATE_HEALTH

    if not _answers(endpoint.host, endpoint.port):
        raise CloudUnreachable(
            f"no local cloud answers on {endpoint.url}: start one with `careflow up` "
            f"(or pass --port, or set {ENDPOINT_ENV})"
        )
    try:
        url = endpoint.url + GATE_HEALTH
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
            ready = bool(json.loads(resp.read()).get("ready"))
    except (OSError, ValueError, AttributeError):
        raise CloudUnreachable(
            f"{endpoint.url} answers, but not as a careflow local cloud: is the port right?"
        ) from None
    if not ready:
        raise CloudUnreachable(
            f"the local cloud on {endpoint.url} is still starting: `careflow wait` waits for it"
        )


def _answers(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        try:
            return s.connect_ex((host, port)) == 0
        except OSError:
            return False


def bind_error(port: int, host: str = "127.0.0.1") -> OSError | None:
    """Why a server could not listen on ``port`` now, or None (tried with ``SO_REUSEADDR``,
    as the local cloud's servers bind: a port a stopped cloud left in TIME_WAIT is free)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc
        return None
