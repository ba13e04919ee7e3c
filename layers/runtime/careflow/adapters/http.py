"""The HTTP client every protocol adapter uses: timeouts, retries with backoff and full
jitter on 429/5xx/timeouts (honouring ``Retry-After``), bearer tokens, and errors mapped
to the ports' exceptions. A FHIR ``OperationOutcome`` becomes a one-line reason (codes
and field paths; diagnostics text is left out: servers echo values, which may be PHI).
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from careflow import clock
from careflow.ports import ConnectorError, ConnectorUnavailable

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# httpx logs every request's URL at INFO, httpcore its connections at DEBUG: a FHIR URL
# names a Patient's or a Coverage's id (``/Coverage/cov-1001``), a search its identifier.
# Warnings and errors only; careflow's own lines name the system and the status.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class NotFound(ConnectorError):
    """The resource does not exist at the other system."""


class Rejected(ConnectorError):
    """The other system refused the request (4xx): retrying will not help."""


class TokenProvider(Protocol):
    def token(self) -> str: ...

    def invalidate(self) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay: float = 0.2  # seconds; doubled each attempt, full jitter
    max_delay: float = 5.0
    timeout: float = 5.0  # per attempt
    retry_statuses: frozenset[int] = field(default=RETRY_STATUSES)


def operation_outcome_reason(body: Any) -> str | None:
    """``severity code @ expression`` of each issue of an OperationOutcome."""
    if not isinstance(body, Mapping) or body.get("resourceType") != "OperationOutcome":
        return None
    parts = []
    for issue in body.get("issue") or []:
        where = ", ".join(issue.get("expression") or issue.get("location") or [])
        parts.append(
            f"{issue.get('severity', 'error')} {issue.get('code', 'unknown')}"
            + (f" at {where}" if where else "")
        )
    return "; ".join(parts) or "OperationOutcome without issues"


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


class HttpClient:
    def __init__(
        self,
        system: str,
        base_url: str,
        *,
        auth: TokenProvider | None = None,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.system = system
        self.policy = policy or RetryPolicy()
        self._auth = auth
        self._sleep = sleep or clock.sleep
        self._rng = rng or random.Random()
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            timeout=self.policy.timeout,
            transport=transport,
            headers=dict(headers or {}),
        )
        self.attempts = 0  # counted, for tests and metrics

    def close(self) -> None:
        self._client.close()

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            advised = retry_after_seconds(response.headers.get("Retry-After"), clock.now())
            if advised is not None:
                return min(advised, self.policy.max_delay)
        ceiling = min(self.policy.max_delay, self.policy.base_delay * (2**attempt))
        return self._rng.uniform(0, ceiling)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        allow: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """Sends with retries; returns a 2xx response (or a status listed in ``allow``)."""
        last = "no attempt"
        refreshed = False
        attempt = 0
        while attempt < self.policy.max_attempts:
            self.attempts += 1
            request_headers = dict(headers or {})
            if self._auth is not None:
                request_headers["Authorization"] = f"Bearer {self._auth.token()}"
            response: httpx.Response | None = None
            try:
                response = self._client.request(
                    method,
                    path.lstrip("/"),
                    params=params,
                    json=json_body,
                    headers=request_headers,
                )
            except httpx.TimeoutException:
                last = "timed out"
            except httpx.TransportError as exc:
                last = f"transport error ({type(exc).__name__})"
            else:
                status = response.status_code
                if status < 300 or status in allow:
                    return response
                if status == 401 and self._auth is not None and not refreshed:
                    self._auth.invalidate()  # an expired or revoked token: one fresh try
                    refreshed = True
                    continue
                if status not in self.policy.retry_statuses:
                    reason = operation_outcome_reason(_json_or_none(response))
                    detail = f"{method} {path.split('?', maxsplit=1)[0]} returned {status}" + (
                        f": {reason}" if reason else ""
                    )
                    raise (NotFound if status in (404, 410) else Rejected)(
                        f"{self.system}: {detail}"
                    )
                last = f"HTTP {status}"
            attempt += 1
            if attempt < self.policy.max_attempts:
                self._sleep(self._delay(attempt - 1, response))
        raise ConnectorUnavailable(
            f"{self.system} unavailable after {self.policy.max_attempts} attempts ({last})"
        )

    def get_json(self, path: str, *, params: Mapping[str, Any] | None = None) -> Any:
        return parse_json(self.system, self.request("GET", path, params=params))

    def post_json(self, path: str, body: Any, **kwargs: Any) -> Any:
        return parse_json(self.system, self.request("POST", path, json_body=body, **kwargs))


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def parse_json(system: str, response: httpx.Response) -> Any:
    """The body as JSON; a malformed body is the other system's fault, reported as such."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConnectorUnavailable(
            f"{system}: malformed response body ({response.headers.get('content-type', 'no type')})"
        ) from None


def _short(value: Any) -> str:
    return str(value)[:80]


def problem_reason(status: int, body: Any) -> str:
    """``status type: in path (code); ...`` from RFC 9457 problem details; no ``detail``."""
    if not isinstance(body, Mapping):
        return str(status)
    out = str(status)
    if isinstance(body.get("type"), str):
        out += f" {_short(body['type'])}"
    fields = [
        f"{_short(e.get('in', 'body'))} {_short(e.get('path', '?'))} "
        f"({_short(e.get('code', 'invalid'))})"
        for e in body.get("errors") or []
        if isinstance(e, Mapping)
    ]
    return out + (": " + "; ".join(fields) if fields else "")


W = TypeVar("W", bound=BaseModel)


def call_model(
    http: HttpClient,
    op: tuple[str, str],
    path: str,
    shape: type[W],
    client_errors: frozenset[int],
    *,
    params: Mapping[str, Any] | None = None,
    body: Any = None,
) -> W:
    """One call of a REST connector whose errors are problem details (ERP, workforce): a
    client error is ``NotFound`` (404, 410) or ``Rejected`` naming the fields, never their
    values; an answer of another shape is ``ConnectorUnavailable`` naming where."""
    method, template = op
    response = http.request(method, path, params=params, json_body=body, allow=client_errors)
    if response.status_code >= 400:
        reason = problem_reason(response.status_code, _json_or_none(response))
        error = NotFound if response.status_code in (404, 410) else Rejected
        raise error(f"{http.system}: {method} {template} returned {reason}")
    raw = parse_json(http.system, response)
    try:
        return shape.model_validate(raw)
    except ValidationError as exc:
        where = ", ".join(
            sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
        )
        raise ConnectorUnavailable(
            f"{http.system}: {method} {template} answered an unexpected shape at {where}"
        ) from None
