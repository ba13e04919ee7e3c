"""Discharge coordination's own KPIs, served by ``GET /v1/kpis`` (see careflow.kit.kpis).

Read for each discharge concluded DISCHARGED within the window: its audit trail (the
``discharge_measured`` entry finalize writes, with the A16's order time and the
departure; the ``delay_recorded`` entries, one per cause) and, for a discharge concluded
before finalize measured it, its ``discharged`` milestone (the A03: the departure).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from careflow.kit.kpis import KpiDefinition, concluded, percentiles, ratio
from careflow.workflows.discharge_coordination.rules import DELAY_CAUSES

if TYPE_CHECKING:
    from careflow.domain.records import Instance
    from careflow.ports import StateStore

DISCHARGED = "DISCHARGED"  # the outcome of a departure
NOON = 12  # the policy's noon hour when the measurement does not say


class _Kpi(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderToDeparture(_Kpi):
    discharges: int
    p50_minutes: float | None
    p90_minutes: float | None


class BeforeNoon(_Kpi):
    discharges: int
    before_noon: int
    share: float | None


OWNER = "case management (patient flow)"
DEFINITIONS = (
    KpiDefinition(
        "order_to_departure",
        "minutes",
        "discharges concluded DISCHARGED within the window: minutes from the discharge "
        "order (the A16's time) to the departure (the A03); p50 and p90 by nearest rank; "
        "null when none (discharges concluded before the measurement was recorded are not "
        "counted)",
        OWNER,
        "audit discharge_measured.detail.ordered_at, departed_at",
        OrderToDeparture,
    ),
    KpiDefinition(
        "discharged_before_noon",
        "count, ratio",
        "discharges concluded DISCHARGED within the window, those that departed before the "
        "policy's noon hour in the facility's time zone, and their share; null when none",
        OWNER,
        "audit discharge_measured.detail.departed_at, noon_hour (else milestone "
        "discharged.at), facility time zone",
        BeforeNoon,
    ),
    KpiDefinition(
        "delay_minutes_by_cause",
        "minutes",
        "delay minutes of the discharges concluded DISCHARGED within the window, summed by "
        "cause (every cause of the fixed list, 0 when none)",
        OWNER,
        "audit delay_recorded.reason, detail.minutes",
        dict[str, int],
        enterprise="discharge_delay_causes",
    ),
)


def _zone(facility_id: str) -> ZoneInfo:
    from careflow.facilities import zone_of

    return zone_of(facility_id)


def _departed_at(
    store: StateStore, instance: Instance, measured: dict[str, Any]
) -> datetime | None:
    from careflow.workflows.discharge_coordination.steps import DEPARTED

    if "departed_at" in measured:
        return datetime.fromisoformat(measured["departed_at"])
    departures = [m.at for m in store.milestones(instance.instance_id) if m.name == DEPARTED]
    return min(departures) if departures else None


def values(
    store: StateStore, instances: Sequence[Instance], since: datetime, now: datetime
) -> dict[str, Any]:
    from careflow.workflows.discharge_coordination.steps import MEASURED

    minutes: list[float] = []
    departures = before_noon = 0
    delays = dict.fromkeys(DELAY_CAUSES, 0)
    for instance in concluded(instances, since):
        if instance.outcome != DISCHARGED:
            continue
        measured: dict[str, Any] = {}
        for entry in store.audit_trail(instance.instance_id):
            if entry.action == MEASURED:
                measured = entry.detail
            elif entry.action == "delay_recorded":
                cause = str(entry.detail.get("cause", entry.reason))
                delays[cause] = delays.get(cause, 0) + int(entry.detail.get("minutes", 0))
        if measured.get("order_to_departure_seconds") is not None:
            minutes.append(int(measured["order_to_departure_seconds"]) / 60)
        departed_at = _departed_at(store, instance, measured)
        if departed_at is not None:
            departures += 1
            local = departed_at.astimezone(_zone(instance.facility_id))
            before_noon += local.hour < int(measured.get("noon_hour", NOON))
    p50, p90 = percentiles(minutes)
    return {
        "order_to_departure": {"discharges": len(minutes), "p50_minutes": p50, "p90_minutes": p90},
        "discharged_before_noon": {
            "discharges": departures,
            "before_noon": before_noon,
            "share": ratio(before_noon, departures),
        },
        "delay_minutes_by_cause": delays,
    }
