"""Prior authorization's own KPIs, served by ``GET /v1/kpis`` (see careflow.kit.kpis)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from careflow.kit.kpis import KpiDefinition, concluded, percentiles

if TYPE_CHECKING:
    from careflow.domain.records import Instance
    from careflow.ports import StateStore


class Turnaround(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    decisions: int
    p50_minutes: float | None
    p90_minutes: float | None


DEFINITIONS = (
    KpiDefinition(
        "authorization_turnaround",
        "minutes",
        "prior authorizations concluded within the window: minutes from the request "
        "(instance.started_at, milestone request_received) to the decision (milestone "
        "concluded_<outcome>); p50 and p90 by nearest rank; null when none concluded",
        "revenue cycle (utilization review)",
        "instance.started_at, milestone concluded_*.at",
        Turnaround,
        enterprise="authorization_turnaround",
    ),
)


def values(
    store: StateStore, instances: Sequence[Instance], since: datetime, now: datetime
) -> dict[str, Any]:
    minutes: list[float] = []
    for instance in concluded(instances, since):
        decided = [
            m.at for m in store.milestones(instance.instance_id) if m.name.startswith("concluded_")
        ]
        if decided:
            minutes.append((min(decided) - instance.started_at).total_seconds() / 60)
    p50, p90 = percentiles(minutes)
    return {
        "authorization_turnaround": {
            "decisions": len(minutes),
            "p50_minutes": p50,
            "p90_minutes": p90,
        }
    }
