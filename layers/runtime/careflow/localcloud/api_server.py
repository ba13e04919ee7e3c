"""The ``/v1`` API on the local cloud: what API Gateway (REST API, Cognito authorizer,
usage plan) does in front of ``lambdas.api.handler``, on 127.0.0.1 (``careflow up
--api-port``, default 8080).

Per request, in API Gateway's order:

1. a body over :data:`MAX_BODY_BYTES` is 413 (API Gateway's own limit is 10 MB);
2. the method and path are matched against ``contract.ROUTES`` (unmatched: 404);
3. a route with a scope needs a token from :class:`LocalIssuer` in ``Authorization``
   (``Bearer`` optional, as the Cognito authorizer takes it): RS256, ``iss``, ``exp``
   and ``token_use == "access"`` checked, else 401; without the route's scope, 403;
   (``/ops``, the operations page and its local sign-in, is served beside ``/v1``:
   :mod:`careflow.localcloud.ops_site`);
4. the client's usage plan (a token bucket per ``client_id``): over it, 429 with
   ``Retry-After``;
5. the request becomes a REST proxy event, its claims in
   ``requestContext.authorizer.claims`` as strings (as the Cognito authorizer passes
   them), and ``lambdas.api.handler`` answers it in this process.

Refusals made here are problem details like the handler's. Requests and tokens are never
logged.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from careflow.api.auth import FACILITIES_CLAIM, ROLES_CLAIM
from careflow.api.contract import ROUTES, SCOPES, VERSION, Route, scope_name
from careflow.api.problems import ApiProblem, gateway_problem

log = logging.getLogger(__name__)

DEFAULT_API_PORT = 8080
MAX_BODY_BYTES = 1024 * 1024
DRAIN_LIMIT = 10 * 1024 * 1024
MAX_TOKEN_MINUTES = 24 * 60
VERIFIED_TOKENS_MAX = 4096  # tokens remembered as verified (all forgotten when full)
ISSUER_PATH = "/issuer"  # on the control endpoint: the issuer's URL, and its JWKS below it

_PROBLEM_HEADERS = {"Content-Type": "application/problem+json"}

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class TokenRefused(ValueError):
    """A token the issuer will not mint; the message says why in one line."""


def token_refusal(scopes: Sequence[str], minutes: float) -> str | None:
    """Why a token with these scopes and lifetime may not be minted, or None. The CLI and
    the control endpoint agree."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        return f"unknown scope {', '.join(unknown)} (known: {', '.join(sorted(SCOPES))})"
    if not scopes:
        return "give at least one scope"
    if not (math.isfinite(minutes) and 0 < minutes <= MAX_TOKEN_MINUTES):
        return f"a token lives more than 0 and at most {MAX_TOKEN_MINUTES} minutes"
    return None


class LocalIssuer:
    """A Cognito-like issuer of access tokens: an RSA key pair made at start, kept in
    memory only. Token times are wall-clock (as Cognito's), not the virtual clock."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.kid = uuid.uuid4().hex[:16]
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public_key = self._key.public_key()
        self._verified: dict[str, dict[str, Any]] = {}  # token -> its claims

    def mint(
        self,
        *,
        client: str,
        scopes: Sequence[str],
        facilities: Sequence[str] = (),
        user: str | None = None,
        roles: Sequence[str] | None = None,
        lifetime: timedelta = timedelta(hours=1),
        now: float | None = None,
    ) -> str:
        """An access token as Cognito shapes one (``scope``, ``client_id``, ``username``
        for a person, ``token_use``), with careflow's ``custom:`` claims."""
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "sub": user or client,
            "iss": self.url,
            "client_id": client,
            "token_use": "access",
            "scope": " ".join(scope_name(s) for s in scopes),
            "auth_time": issued,
            "iat": issued,
            "exp": issued + int(lifetime.total_seconds()),
            "jti": str(uuid.uuid4()),
            FACILITIES_CLAIM: ",".join(facilities),
        }
        if user:
            claims["username"] = user
        if roles is not None:
            claims[ROLES_CLAIM] = ",".join(roles)
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; ``jwt.InvalidTokenError`` unless this issuer signed it, for
        this issuer, unexpired, as an access token.

        A token verified once is remembered until it expires (as API Gateway's Cognito
        authorizer caches a token's result): the signature, issuer and use of a given
        string do not change, its expiry is checked again on every call."""
        known = self._verified.get(token)
        if known is not None:
            if int(known["exp"]) > time.time():
                return dict(known)
            self._verified.pop(token, None)
        claims = self._verify(token)
        if len(self._verified) >= VERIFIED_TOKENS_MAX:
            self._verified.clear()
        self._verified[token] = claims
        return dict(claims)

    def _verify(self, token: str) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(
            token,
            self._public_key,
            algorithms=["RS256"],
            issuer=self.url,
            options={"require": ["exp", "iss", "token_use", "client_id"]},
        )
        if claims.get("token_use") != "access":
            raise jwt.InvalidTokenError("not an access token")
        return claims

    def jwks(self) -> dict[str, Any]:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}


# -- usage plans ------------------------------------------------------------------------------
@dataclass(frozen=True)
class UsagePlan:
    rate: float = 50.0  # requests per second, steady
    burst: int = 100  # requests at once


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class Throttle:
    """A token bucket per client: ``default`` unless ``plans`` names the client."""

    default: UsagePlan = field(default_factory=UsagePlan)
    plans: dict[str, UsagePlan] = field(default_factory=dict)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, client: str, now: float | None = None) -> float:
        """0 when the request may pass (a token taken), else seconds until one is due."""
        plan = self.plans.get(client, self.default)
        at = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.setdefault(client, _Bucket(float(plan.burst), at))
            bucket.tokens = min(float(plan.burst), bucket.tokens + (at - bucket.at) * plan.rate)
            bucket.at = at
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / plan.rate if plan.rate > 0 else math.inf


# -- routes and events ------------------------------------------------------------------------
_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class _Compiled:
    route: Route
    pattern: re.Pattern[str]


def _compile(routes: Sequence[Route]) -> list[_Compiled]:
    out = []
    for route in routes:
        parts = [
            f"(?P<{p[1:-1]}>[^/]+)" if _PARAM.fullmatch(p) else re.escape(p)
            for p in route.path.split("/")
        ]
        regex = "/".join(parts)
        out.append(_Compiled(route, re.compile(f"^{regex}$")))
    return out


_ROUTES = _compile(ROUTES)


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The contract's route for ``method path`` and its path parameters (decoded)."""
    for compiled in _ROUTES:
        m = compiled.pattern.match(path)
        if m and compiled.route.method == method:
            return compiled.route, {k: unquote(v) for k, v in m.groupdict().items()}
    return None


def proxy_event(
    *,
    method: str,
    raw_path: str,
    route: Route,
    path_parameters: Mapping[str, str],
    headers: Sequence[tuple[str, str]],
    body: bytes,
    claims: Mapping[str, Any] | None,
    source_ip: str,
    request_id: str,
) -> dict[str, Any]:
    """An API Gateway REST proxy event, as API Gateway would pass this request."""
    parts = urlsplit(raw_path)
    query = parse_qs(parts.query, keep_blank_values=True)
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    text: str | None
    encoded = False
    if not body:
        text = None
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
    context: dict[str, Any] = {
        "resourcePath": route.path,
        "httpMethod": method,
        "path": unquote(parts.path),
        "stage": VERSION,
        "requestId": request_id,
        "requestTimeEpoch": int(time.time() * 1000),
        "protocol": "HTTP/1.1",
        "identity": {"sourceIp": source_ip},
    }
    if claims is not None:
        # the Cognito authorizer passes every claim as a string
        context["authorizer"] = {"claims": {k: _claim_text(v) for k, v in claims.items()}}
    return {
        "resource": route.path,
        "path": unquote(parts.path),
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": dict(path_parameters) or None,
        "stageVariables": None,
        "requestContext": context,
        "body": text,
        "isBase64Encoded": encoded,
    }


def _claim_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class _Context:
    """What the handler may read of a Lambda context."""

    aws_request_id: str
    function_name: str = "careflow-api"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:careflow-api"
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    deadline: float = field(default_factory=lambda: time.monotonic() + 29.0)

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.deadline - time.monotonic()) * 1000), 0)


def _discard(req: BaseHTTPRequestHandler, length: int) -> None:
    while length > 0:
        chunk = req.rfile.read(min(length, 65536))
        if not chunk:
            return
        length -= len(chunk)


LISTEN_BACKLOG = 128  # connections waiting to be accepted


class _HTTPServer(ThreadingHTTPServer):
    # socketserver's backlog of 5 drops the SYNs of partners connecting together while
    # the accepting thread waits for the interpreter: they retry after a second, and
    # three seconds (the bench's p99 was those retries). API Gateway refuses none.
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


def _default_handler() -> Handler:
    from lambdas.api import handler

    return handler


class ApiServer:
    """The gateway in front of the handler, on ``127.0.0.1:port``."""

    def __init__(
        self,
        port: int,
        issuer: LocalIssuer,
        *,
        throttle: Throttle | None = None,
        handler: Handler | None = None,
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self.port = port
        self.issuer = issuer
        self.throttle = throttle or Throttle()
        self._handler = handler
        self.max_body = max_body
        self._httpd: ThreadingHTTPServer | None = None
        self._ops: Any = None  # the operations page, made on its first request

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{VERSION}"

    def start(self) -> ApiServer:
        """Binds the port (``OSError`` if it is taken) and serves in a daemon thread."""
        if self._handler is None:
            self._handler = _default_handler()  # imports the API app: a second or so
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The response leaves in one write (buffered, flushed at the request's end)
            # and without Nagle's wait: headers and body written apart waited out the
            # client's delayed ACK, about 40 ms a request on loopback.
            wbufsize = -1
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server._serve(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

            def __getattr__(self, name: str) -> Any:
                # any other method (TRACE, QUERY, ...) is answered, as an unknown route,
                # rather than with http.server's HTML 501
                if name.startswith("do_"):
                    return self.do_GET
                raise AttributeError(name)

        self._httpd = _HTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._httpd.serve_forever, name="api", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    # -- one request ----------------------------------------------------------------------
    def _serve(self, req: BaseHTTPRequestHandler) -> None:
        request_id = str(uuid.uuid4())
        try:
            status, headers, body = self._answer(req, request_id)
        except ApiProblem as refused:
            status, headers, body = refused.status, _PROBLEM_HEADERS, refused.body()
        except Exception as exc:  # the handler itself failed: API Gateway answers 502
            log.warning("api request %s failed: %s", request_id, type(exc).__name__)
            failed = gateway_problem("INTEGRATION_FAILURE")
            status, headers, body = 502, _PROBLEM_HEADERS, failed.body()
        data = body.encode()
        req.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                req.send_header(name, value)
        req.send_header("x-amzn-RequestId", request_id)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(data)

    def _answer(
        self, req: BaseHTTPRequestHandler, request_id: str
    ) -> tuple[int, dict[str, str], str]:
        if "chunked" in (req.headers.get("Transfer-Encoding") or "").lower():
            req.close_connection = True  # the body is not read
            raise ApiProblem(411, "Length Required", "Send the body with a Content-Length.")
        try:
            length = int(req.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiProblem(400, "Bad Request", "Content-Length is not a number.") from None
        if length > self.max_body:
            # read and dropped, so that the client reads the 413 rather than a reset
            # connection; a body beyond API Gateway's own 10 MB is not even read
            if length <= DRAIN_LIMIT:
                _discard(req, length)
            else:
                req.close_connection = True
            raise gateway_problem(
                "REQUEST_TOO_LARGE", f"The request body is over {self.max_body} bytes."
            )
        body = req.rfile.read(length) if length > 0 else b""
        path = urlsplit(req.path).path
        if path == "/ops" or path.startswith("/ops/"):  # the operations page (ops_site)
            return self._ops_site().answer(req.command, path, body)
        prefix = f"/{VERSION}/"
        found = match(req.command, path) if path.startswith(prefix) else None
        if found is None:
            raise gateway_problem("MISSING_AUTHENTICATION_TOKEN")
        route, params = found
        claims = self._authorize(route, req.headers.get("Authorization"))
        if claims is not None:
            wait = self.throttle.take(str(claims["client_id"]))
            if wait > 0:
                problem = gateway_problem("THROTTLED")
                retry = str(max(1, math.ceil(min(wait, 3600.0))))
                return 429, {**_PROBLEM_HEADERS, "Retry-After": retry}, problem.body()
        event = proxy_event(
            method=req.command,
            raw_path=req.path,
            route=route,
            path_parameters=params,
            headers=list(req.headers.items()),
            body=body,
            claims=claims,
            source_ip=req.client_address[0],
            request_id=request_id,
        )
        assert self._handler is not None
        # Requests in parallel, as API Gateway passes them to several Lambda instances: the
        # handler's resolver keeps each thread's request apart (careflow.api.resolver).
        answer = self._handler(event, _Context(aws_request_id=request_id))
        headers = {k: ", ".join(v) for k, v in (answer.get("multiValueHeaders") or {}).items()}
        headers.update(answer.get("headers") or {})
        text = answer.get("body") or ""
        if answer.get("isBase64Encoded"):
            text = base64.b64decode(text).decode("utf-8", "replace")
        return int(answer["statusCode"]), headers, text

    def _ops_site(self) -> Any:
        if self._ops is None:
            from careflow.localcloud.ops_site import OpsSite

            self._ops = OpsSite(self.issuer)
        return self._ops

    def _authorize(self, route: Route, header: str | None) -> dict[str, Any] | None:
        """The token's claims for a scoped route (401 / 403 as API Gateway refuses); None
        for an open route (its method has no authorizer, so no claims reach the handler)."""
        if route.scope is None:
            return None
        token = (header or "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        if not token:
            raise gateway_problem("UNAUTHORIZED")
        try:
            claims = self.issuer.verify(token)
        except jwt.InvalidTokenError:
            raise gateway_problem("UNAUTHORIZED") from None
        if scope_name(route.scope) not in str(claims.get("scope", "")).split():
            raise gateway_problem("ACCESS_DENIED")
        return claims
