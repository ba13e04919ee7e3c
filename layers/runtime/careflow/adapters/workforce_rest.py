"""The workforce port over careflow's workforce REST API (``docs/workforce-openapi.yaml``):
units, a shift's roster, the options to fill a gap, and the coordinator's decision
(idempotent on ``decision_id``).

Errors, as the ERP adapter's: 404 is :class:`NotFound`; another 4xx is :class:`Rejected`
with the problem's ``type``, status and field paths, never its ``detail``; 429, 5xx,
timeouts and bodies that are not the documented shape are :class:`ConnectorUnavailable`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from careflow.adapters.http import HttpClient, call_model
from careflow.canonical.workforce import (
    RecordedDecision,
    RosterEntry,
    StaffingDecision,
    StaffingOption,
    Unit,
)
from careflow.ports import ConnectorUnavailable

# The operations this adapter calls: (method, path template) as in docs/workforce-openapi.yaml.
UNITS = ("GET", "/facilities/{facility_id}/units")
ROSTER = ("GET", "/facilities/{facility_id}/units/{unit_id}/roster")
OPTIONS = ("GET", "/facilities/{facility_id}/units/{unit_id}/staffing-options")
RECORD_DECISION = ("POST", "/staffing-decisions")
OPERATIONS = (UNITS, ROSTER, OPTIONS, RECORD_DECISION)

CLIENT_ERRORS = frozenset({400, 403, 404, 405, 409, 410, 415, 422})

W = TypeVar("W", bound=BaseModel)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Unit(_Wire):
    facility_id: str
    unit_id: str
    unit_type: Literal["icu", "med-surg", "pacu"]
    beds: int = Field(ge=0)


class _Units(_Wire):
    data: list[_Unit]


class _RosterEntry(_Wire):
    staff_id: str
    role: str
    skills: list[str]


class _Roster(_Wire):
    unit_id: str
    shift_start: AwareDatetime
    data: list[_RosterEntry]


class _Money(_Wire):
    amount: Decimal
    currency: str


class _Option(_Wire):
    kind: Literal["float_pool", "agency", "overtime", "flex_census"]
    available: int = Field(ge=0)
    lead_time_hours: float = Field(ge=0)
    cost_per_hour: _Money


class _Options(_Wire):
    data: list[_Option]


class _Recorded(_Wire):
    decision_id: str
    status: Literal["ACCEPTED", "DUPLICATE"]


def _path(template: tuple[str, str], **params: str) -> str:
    return template[1].format(**{k: quote(v, safe="") for k, v in params.items()})


class WorkforceRestAdapter:
    """Implements :class:`careflow.ports.WorkforcePort`."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def units(self, facility_id: str) -> Sequence[Unit]:
        wire = self._call(UNITS, _path(UNITS, facility_id=facility_id), _Units)
        return [Unit(**u.model_dump()) for u in wire.data if u.facility_id == facility_id]

    def roster(
        self, facility_id: str, unit_id: str, shift_start: datetime
    ) -> Sequence[RosterEntry]:
        path = _path(ROSTER, facility_id=facility_id, unit_id=unit_id)
        wire = self._call(ROSTER, path, _Roster, params={"shift_start": shift_start.isoformat()})
        if wire.unit_id != unit_id or wire.shift_start != shift_start:
            raise ConnectorUnavailable(f"{self.http.system}: roster answered for another shift")
        return [
            RosterEntry(
                staff_id=e.staff_id,
                unit_id=unit_id,
                shift_start=shift_start,
                role=e.role,
                skills=tuple(e.skills),
            )
            for e in wire.data
        ]

    def staffing_options(
        self, facility_id: str, unit_id: str, shift_start: datetime, skill: str
    ) -> Sequence[StaffingOption]:
        path = _path(OPTIONS, facility_id=facility_id, unit_id=unit_id)
        params = {"shift_start": shift_start.isoformat(), "skill": skill}
        wire = self._call(OPTIONS, path, _Options, params=params)
        return [
            StaffingOption(
                kind=o.kind,
                available=o.available,
                lead_time_hours=o.lead_time_hours,
                cost_per_hour=float(o.cost_per_hour.amount),
            )
            for o in wire.data
        ]

    def record_decision(self, decision: StaffingDecision) -> RecordedDecision:
        body = decision.model_dump(mode="json")
        wire = self._call(RECORD_DECISION, _path(RECORD_DECISION), _Recorded, body=body)
        if wire.decision_id != decision.decision_id:
            raise ConnectorUnavailable(f"{self.http.system}: decision answered for another id")
        return RecordedDecision(decision_id=wire.decision_id, status=wire.status)

    def _call(
        self,
        op: tuple[str, str],
        path: str,
        shape: type[W],
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> W:
        return call_model(self.http, op, path, shape, CLIENT_ERRORS, params=params, body=body)
