"""The workforce system as a sandbox server: ``docs/workforce-openapi.yaml`` over real HTTP
on loopback, serving the seeded units, rosters and options of
:mod:`careflow.localcloud.sandboxes.workforce_seed`, with switchable faults
(:class:`FaultPlan`) and an optional bearer token."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from pydantic import ValidationError

from careflow.canonical.workforce import StaffingDecision
from careflow.localcloud.sandboxes.faults import FaultPlan
from careflow.localcloud.sandboxes.http_base import LoopbackServer, SandboxHandler
from careflow.localcloud.sandboxes.workforce_seed import WorkforceSandbox

BASE_PATH = "/workforce/v1"


class Problem(Exception):
    def __init__(
        self, status: int, code: str, title: str, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(title)
        self.status = status
        self.body: dict[str, Any] = {
            "type": f"https://workforce.example/problems/{code}",
            "title": title,
            "status": status,
            "detail": title,
        }
        if errors:
            self.body["errors"] = errors


def _not_found(what: str) -> Problem:
    return Problem(404, "not-found", f"No such {what}")


def _shift_start(query: Mapping[str, list[str]]) -> datetime:
    raw = (query.get("shift_start") or [""])[0]
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        error = {"in": "query", "path": "shift_start", "code": "date-time-with-offset"}
        raise Problem(400, "invalid", "Invalid request", [error])
    return when


def _money(value: float) -> dict[str, str]:
    return {"amount": f"{value:.2f}", "currency": "USD"}


class WorkforceSandboxServer(LoopbackServer):
    """``start()`` listens on 127.0.0.1; ``base_url`` ends in /workforce/v1."""

    def __init__(self, *, port: int = 0, token: str | None = None) -> None:
        super().__init__(port)
        self.faults = FaultPlan()
        self.token = token
        self.lock = threading.RLock()
        self.data = WorkforceSandbox()

    @property
    def base_url(self) -> str:
        return f"{self.origin}{BASE_PATH}"

    def start(self) -> WorkforceSandboxServer:
        self._serve(_handler(self), "workforce-sandbox")
        return self

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.data = WorkforceSandbox()

    def handle(
        self, method: str, parts: list[str], query: Mapping[str, list[str]], body: bytes
    ) -> tuple[int, Any]:
        if method == "POST" and parts == ["staffing-decisions"]:
            return self._record(body)
        if method != "GET" or len(parts) < 3 or parts[0] != "facilities":
            raise _not_found("endpoint")
        facility_id = parts[1]
        units = {u.unit_id: u for u in self.data.units(facility_id)}
        if not units:
            raise _not_found("facility")
        if parts[2:] == ["units"]:
            return 200, {"data": [u.model_dump() for u in units.values()]}
        if len(parts) != 5 or parts[2] != "units":
            raise _not_found("endpoint")
        unit_id, what = parts[3], parts[4]
        if unit_id not in units:
            raise _not_found("unit")
        shift_start = _shift_start(query)
        if what == "roster":
            entries = self.data.roster(facility_id, unit_id, shift_start)
            return 200, {
                "unit_id": unit_id,
                "shift_start": shift_start.isoformat(),
                "data": [
                    {"staff_id": e.staff_id, "role": e.role, "skills": list(e.skills)}
                    for e in entries
                ],
            }
        if what == "staffing-options":
            skill = (query.get("skill") or [""])[0]
            if not skill:
                error = {"in": "query", "path": "skill", "code": "required"}
                raise Problem(400, "invalid", "Invalid request", [error])
            options = self.data.staffing_options(facility_id, unit_id, shift_start, skill)
            return 200, {
                "data": [
                    {
                        "kind": o.kind,
                        "available": o.available,
                        "lead_time_hours": o.lead_time_hours,
                        "cost_per_hour": _money(o.cost_per_hour),
                    }
                    for o in options
                ]
            }
        raise _not_found("endpoint")

    def _record(self, body: bytes) -> tuple[int, Any]:
        try:
            decision = StaffingDecision.model_validate(json.loads(body or b"null"))
        except (ValueError, ValidationError) as exc:
            errors = []
            if isinstance(exc, ValidationError):
                errors = [
                    {
                        "in": "body",
                        "path": "/" + "/".join(str(p) for p in e["loc"]),
                        "code": e["type"],
                    }
                    for e in exc.errors()
                ]
            raise Problem(422, "invalid", "Invalid decision", errors or None) from None
        if self.data.facility_unknown(decision.facility_id, decision.unit_id):
            raise Problem(
                422,
                "invalid",
                "Invalid decision",
                [{"in": "body", "path": "/unit_id", "code": "unknown-unit"}],
            )
        recorded = self.data.record_decision(decision)
        return (201 if recorded.status == "ACCEPTED" else 200), recorded.model_dump()


def _handler(server: WorkforceSandboxServer) -> type[BaseHTTPRequestHandler]:
    class Handler(SandboxHandler):
        error_type = "application/problem+json"
        malformed_body = b'{"data": [{"staff_id": '

        def error_body(self, status: int, kind: str, message: str) -> Any:
            return Problem(status, kind, message).body

        def _route(self, method: str) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if not url.path.startswith(BASE_PATH + "/"):
                problem = _not_found("endpoint")
                self._send(problem.status, problem.body)
                return
            if self.apply_fault(server.faults):
                return
            if server.token is not None and (
                self.headers.get("Authorization", "") != f"Bearer {server.token}"
            ):
                problem = Problem(401, "unauthorized", "Unauthorized")
                self._send(401, problem.body, {"WWW-Authenticate": 'Bearer realm="workforce"'})
                return
            parts = [unquote(p) for p in url.path[len(BASE_PATH) :].split("/") if p]
            query = parse_qs(url.query, keep_blank_values=True)
            try:
                with server.lock:
                    status, payload = server.handle(method, parts, query, body)
            except Problem as problem:
                self._send(problem.status, problem.body)
                return
            self._send(status, payload)

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

    return Handler
