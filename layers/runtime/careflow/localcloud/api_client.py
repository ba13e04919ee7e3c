"""How ``careflow tasks`` reaches the local ``/v1`` API: over HTTP, with a bearer token,
as a user's own tools would.

Where the API is, one rule: ``--api-port P`` (``http://<cloud host>:P/v1``) wins, then
the ``CAREFLOW_API`` environment variable (``http://127.0.0.1:8080/v1``; the ``/v1`` may
be left off), then what the running cloud's control endpoint says (``GET /api``, which
``careflow up`` fills with the port it serves the API on), else port 8080.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from careflow.api.contract import VERSION
from careflow.localcloud.endpoint import Endpoint

API_ENV = "CAREFLOW_API"
DEFAULT_API_PORT = 8080
CLI_CLIENT = "careflow-cli"  # the app client id of the CLI's tokens


class ApiUnreachable(Exception):
    """No API answers where the command looked; the message is the one line to show."""


class ApiAnswered(Exception):
    """The API answered with a problem: its status and its ``detail`` on one line."""

    def __init__(self, status: int, detail: str, retry_after: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


def _with_version(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith(f"/{VERSION}") else f"{url}/{VERSION}"


def api_url(endpoint: Endpoint, api_port: int | None, environ: Any = None) -> str:
    """The ``/v1`` API's base URL for the cloud at ``endpoint`` (see the module's rule)."""
    from careflow.localcloud.control import ControlRefused, call

    if api_port is not None:
        return f"http://{endpoint.host}:{api_port}/{VERSION}"
    text = (environ if environ is not None else os.environ).get(API_ENV, "").strip()
    if text:
        parts = urlsplit(text)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
            raise ApiUnreachable(f"{API_ENV}={text!r} is not a URL (e.g. http://127.0.0.1:8080/v1)")
        return _with_version(text)
    try:
        return _with_version(str(call(endpoint.control_port, "GET", "/api", endpoint.host)["url"]))
    except ControlRefused:
        raise ApiUnreachable(
            f"the local cloud on {endpoint.url} serves no /v1 API (start it with `careflow up`)"
        ) from None
    except (OSError, KeyError, TypeError, ValueError):
        return f"http://{endpoint.host}:{DEFAULT_API_PORT}/{VERSION}"


def _one_line(text: Any) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= 300 else line[:297] + "..."


def call(
    base: str,
    method: str,
    path: str,
    token: str,
    *,
    body: Any = None,
    params: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Any:
    """The API's JSON answer; :class:`ApiAnswered` for a problem (status >= 400),
    :class:`ApiUnreachable` when nothing answers at ``base``."""
    import httpx

    try:
        resp = httpx.request(
            method,
            base + path,
            headers={"Authorization": f"Bearer {token}"},
            json=body,
            params=params,
            timeout=timeout,
        )
    except httpx.TimeoutException:
        raise ApiUnreachable(f"the API on {base} did not answer in {timeout:g} s") from None
    except httpx.TransportError:
        raise ApiUnreachable(
            f"no careflow API answers on {base} (is `careflow up` running? "
            f"pass --api-port, or set {API_ENV})"
        ) from None
    if resp.status_code >= 400:
        try:
            doc = resp.json()
            detail = doc.get("detail") or doc.get("title") or resp.reason_phrase
        except (ValueError, AttributeError):
            detail = resp.reason_phrase
        raise ApiAnswered(resp.status_code, _one_line(detail), resp.headers.get("Retry-After"))
    try:
        return resp.json()
    except ValueError:
        raise ApiAnswered(resp.status_code, "the API's answer is not JSON") from None
