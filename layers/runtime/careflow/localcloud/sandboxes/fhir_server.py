"""A FHIR R4 server for the local cloud: read, search with paging, create (conditional),
update, a CapabilityStatement, SMART Backend Services tokens, and switchable faults.

It holds whatever it is given: the shared HL7 example resources for contract tests, and
generated hospital data for the demo. Errors are OperationOutcomes.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from careflow.localcloud.sandboxes.faults import FaultPlan
from careflow.localcloud.sandboxes.http_base import LoopbackServer, SandboxHandler

# Search parameters that name a reference, and where they look.
REFERENCE_PARAMS = {
    "patient": ("patient", "subject", "beneficiary", "for"),
    "subject": ("subject", "for"),
    "beneficiary": ("beneficiary",),
    "actor": ("participant.actor", "actor"),
    "encounter": ("encounter", "context", "context.encounter"),
    "context": ("context",),
    "appointment": ("appointment",),
    "based-on": ("basedOn",),
    "schedule": ("schedule",),
    "location": ("location.location", "location"),
}


def outcome(code: str, diagnostics: str, expression: str | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def split_token(wanted: str) -> tuple[str, str]:
    """``system|value`` of a token search value, with FHIR's escapes (``\\|`` is a bar in
    the value, ``\\\\`` a backslash); no bar: any system."""
    parts, current, escaped, bars = [], "", False, 0
    for char in wanted:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == "|":
            parts.append(current)
            current, bars = "", bars + 1
        else:
            current += char
    parts.append(current)
    if bars == 0:
        return "", parts[0]
    return parts[-2], parts[-1]


def _values(node: Any, path: str) -> Iterable[Any]:
    head, _, rest = path.partition(".")
    value = node.get(head) if isinstance(node, Mapping) else None
    items = value if isinstance(value, list) else [value]
    for item in items:
        if item is None:
            continue
        if rest:
            yield from _values(item, rest)
        else:
            yield item


class FhirStore:
    def __init__(self) -> None:
        self._resources: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def put(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        stored = json.loads(json.dumps(resource))
        rtype = stored["resourceType"]
        stored.setdefault("id", str(uuid.uuid4()))
        with self._lock:
            previous = self._resources.get((rtype, stored["id"]))
            version = int(previous.get("meta", {}).get("versionId", "0")) + 1 if previous else 1
            meta = dict(stored.get("meta") or {})
            meta["versionId"] = str(version)
            stored["meta"] = meta
            self._resources[(rtype, stored["id"])] = stored
        return stored

    def load(self, paths: Iterable[Path]) -> int:
        count = 0
        for path in paths:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and doc.get("resourceType") and doc.get("id"):
                self.put(doc)
                count += 1
        return count

    def get(self, rtype: str, rid: str) -> dict[str, Any] | None:
        with self._lock:
            return self._resources.get((rtype, rid))

    def search(self, rtype: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        with self._lock:
            candidates = [r for (t, _), r in sorted(self._resources.items()) if t == rtype]
        return [r for r in candidates if all(self._matches(r, k, v) for k, v in params.items())]

    @staticmethod
    def _matches(resource: Mapping[str, Any], name: str, wanted: str) -> bool:
        if name == "_id":
            return resource.get("id") == wanted
        if name == "identifier":
            system, value = split_token(wanted)
            return any(
                i.get("value") == value and (not system or i.get("system") == system)
                for i in resource.get("identifier") or []
            )
        if name in REFERENCE_PARAMS:
            refs = {
                str(v.get("reference"))
                for path in REFERENCE_PARAMS[name]
                for v in _values(resource, path)
                if isinstance(v, Mapping)
            }
            return wanted in refs or any(r.endswith("/" + wanted) for r in refs)
        values = list(_values(resource, name))
        for v in values:
            if isinstance(v, str) and v == wanted:
                return True
            if isinstance(v, Mapping):
                codes = [c.get("code") for c in v.get("coding") or []]
                if wanted.rpartition("|")[2] in codes:
                    return True
        return False


class FhirSandboxServer(LoopbackServer):
    """``start()`` listens on 127.0.0.1 (a free port unless given); ``base_url`` ends in /fhir.

    ``on_search_miss(resource_type, params)``, when given, is asked for resources to add to
    the store when a search finds nothing (the local cloud makes the Encounters it is asked
    for by visit number, as the in-process sandbox holds them); then the search runs again.
    """

    def __init__(
        self,
        store: FhirStore | None = None,
        *,
        port: int = 0,
        require_token: bool = False,
        client_keys: Mapping[str, Any] | None = None,
        page_size: int = 50,
        on_search_miss: Callable[[str, Mapping[str, str]], Iterable[Mapping[str, Any]]]
        | None = None,
    ) -> None:
        super().__init__(port)
        self.on_search_miss = on_search_miss
        self.store = store or FhirStore()
        self.faults = FaultPlan()
        self.require_token = require_token
        self.client_keys = dict(client_keys or {})  # client_id -> public key (PEM or key)
        self.page_size = page_size
        self.tokens: dict[str, float] = {}
        self.requests = 0

    @property
    def base_url(self) -> str:
        return f"{self.origin}/fhir"

    @property
    def token_url(self) -> str:
        return f"{self.origin}/auth/token"

    def start(self) -> FhirSandboxServer:
        server = self

        class Handler(SandboxHandler):
            json_type = error_type = "application/fhir+json"
            malformed_body = b'{"resourceType": "Bund'

            def error_body(self, status: int, kind: str, message: str) -> Any:
                return outcome({"unavailable": "transient"}.get(kind, kind), message)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                ctype = self.headers.get("Content-Type", "")
                if "x-www-form-urlencoded" in ctype:
                    return {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                return json.loads(raw) if raw else None

            def _authorized(self) -> bool:
                if not server.require_token:
                    return True
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ").strip()
                if server.tokens.get(token, 0) > time.time():
                    return True
                self._send(401, outcome("login", "a valid bearer token is required"))
                return False

            def _route(self, method: str) -> None:
                server.requests += 1
                url = urlparse(self.path)
                parts = [p for p in url.path.split("/") if p]
                try:
                    body = self._body() if method in ("POST", "PUT") else None
                except (ValueError, UnicodeDecodeError):
                    self._send(400, outcome("structure", "the body is not JSON"))
                    return
                if parts[:2] == ["auth", "token"] and method == "POST":
                    self._token(body or {})
                    return
                if not parts or parts[0] != "fhir":
                    self._send(404, outcome("not-found", "no such endpoint"))
                    return
                if self.apply_fault(server.faults) or not self._authorized():
                    return
                parts = parts[1:]
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                if parts == ["metadata"]:
                    self._send(200, server.capability())
                elif method == "GET" and len(parts) == 2:
                    found = server.store.get(parts[0], parts[1])
                    if found is None:
                        self._send(
                            404,
                            outcome(
                                "not-found", f"{parts[0]}/{parts[1]} is unknown", f"{parts[0]}.id"
                            ),
                        )
                    else:
                        self._send(200, found, {"ETag": f'W/"{found["meta"]["versionId"]}"'})
                elif method == "GET" and len(parts) == 1:
                    self._send(200, server.searchset(parts[0], params))
                elif method == "POST" and len(parts) == 1:
                    self._create(parts[0], body)
                elif method == "PUT" and len(parts) == 2:
                    if not isinstance(body, dict) or body.get("resourceType") != parts[0]:
                        self._send(
                            400,
                            outcome(
                                "invalid", "resourceType does not match the URL", "resourceType"
                            ),
                        )
                        return
                    body["id"] = parts[1]
                    existed = server.store.get(parts[0], parts[1]) is not None
                    self._send(200 if existed else 201, server.store.put(body))
                else:
                    self._send(405, outcome("not-supported", f"{method} is not supported here"))

            def _create(self, rtype: str, body: Any) -> None:
                if not isinstance(body, dict) or body.get("resourceType") != rtype:
                    self._send(
                        400,
                        outcome("invalid", "resourceType does not match the URL", "resourceType"),
                    )
                    return
                condition = self.headers.get("If-None-Exist")
                if condition:
                    query = {k: v[0] for k, v in parse_qs(condition).items()}
                    matches = server.store.search(rtype, query)
                    if len(matches) > 1:
                        self._send(412, outcome("duplicate", "the condition matches several"))
                        return
                    if matches:
                        self._send(200, matches[0])
                        return
                body.pop("id", None)
                stored = server.store.put(body)
                self._send(201, stored, {"Location": f"{rtype}/{stored['id']}/_history/1"})

            def _token(self, form: Mapping[str, str]) -> None:
                import jwt

                assertion = form.get("client_assertion", "")
                try:
                    client_id = jwt.decode(assertion, options={"verify_signature": False})["iss"]
                    key = server.client_keys[client_id]
                    jwt.decode(
                        assertion,
                        key,
                        algorithms=["RS384", "ES384"],
                        audience=server.token_url,
                        options={"verify_iat": False, "verify_exp": False},
                    )
                except (KeyError, jwt.PyJWTError):
                    self._send(401, {"error": "invalid_client"})
                    return
                token = uuid.uuid4().hex
                server.tokens[token] = time.time() + 300
                self._send(
                    200,
                    {
                        "access_token": token,
                        "token_type": "bearer",
                        "expires_in": 300,
                        "scope": form.get("scope", ""),
                    },
                )

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PUT(self) -> None:
                self._route("PUT")

        self._serve(Handler, "fhir-sandbox")
        return self

    def capability(self) -> dict[str, Any]:
        return {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "kind": "instance",
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "rest": [
                {
                    "mode": "server",
                    "security": {
                        "service": [
                            {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                        "code": "SMART-on-FHIR",
                                    }
                                ]
                            }
                        ]
                    },
                }
            ],
        }

    def searchset(self, rtype: str, params: Mapping[str, str]) -> dict[str, Any]:
        count = int(params.get("_count", self.page_size))
        offset = int(params.get("_offset", 0))
        filters = {k: v for k, v in params.items() if not k.startswith("_") or k == "_id"}
        matches = self.store.search(rtype, filters)
        if not matches and self.on_search_miss is not None:
            added = [self.store.put(r) for r in self.on_search_miss(rtype, filters)]
            if added:
                matches = self.store.search(rtype, filters)
        page = matches[offset : offset + count]
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        links = [
            {
                "relation": "self",
                "url": f"{self.base_url}/{rtype}?{query}&_count={count}&_offset={offset}",
            }
        ]
        if offset + count < len(matches):
            links.append(
                {
                    "relation": "next",
                    "url": f"{self.base_url}/{rtype}?{query}"
                    f"&_count={count}&_offset={offset + count}",
                }
            )
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{self.base_url}/{rtype}/{r['id']}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in page
            ],
        }
