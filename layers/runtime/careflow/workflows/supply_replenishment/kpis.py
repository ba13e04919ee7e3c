"""Supply replenishment's own KPIs, served by ``GET /v1/kpis`` (see careflow.kit.kpis).

Read for each review concluded within the window (any outcome but SUPERSEDED): the
``replenishment_measured`` audit entry its last step writes (per item and location: the
stockout risk and the days of inventory on hand; the requisitions placed and expedited).
The stockout risk and days on hand are the latest review's per facility; the expedite rate
counts every review in the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from careflow.kit.kpis import KpiDefinition, concluded, ratio

if TYPE_CHECKING:
    from careflow.domain.records import Instance
    from careflow.ports import StateStore

MEASURED = "replenishment_measured"  # the audit action finish_review writes (steps import it)
OWNER = "supply chain (perioperative materials)"
LINEAGE = "audit replenishment_measured.detail"


class ExpediteRate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    requisitions: int
    expedited: int
    rate: float | None


DEFINITIONS = (
    KpiDefinition(
        "stockout_risk",
        "probability",
        "by facility and item, the highest stockout risk over the item's locations in the "
        "facility's latest review concluded within the window: the chance the shelf runs "
        "out before an order placed at the review arrives (booked cases' preference cards "
        "plus Poisson use at the historical rate; bill-only items left out)",
        OWNER,
        f"{LINEAGE}.items[].stockout_risk",
        dict[str, dict[str, float]],
        enterprise="stockout_risk",
    ),
    KpiDefinition(
        "expedite_rate",
        "count, ratio",
        "replenishment requisitions placed by reviews concluded within the window, those "
        "expedited for a booked case at risk, and their share; null when none were placed",
        OWNER,
        f"{LINEAGE}.requisitions, expedited",
        ExpediteRate,
    ),
    KpiDefinition(
        "days_on_hand",
        "days",
        "by facility and item, days of inventory on hand: the item's on hand over its "
        "expected daily use (booked cases over the horizon plus the historical rate), both "
        "summed over its locations, as the facility's latest review concluded within the "
        "window saw them; an item nothing is expected to use is left out",
        OWNER,
        f"{LINEAGE}.items[].on_hand, daily_use",
        dict[str, dict[str, float]],
    ),
)


def values(
    store: StateStore, instances: Sequence[Instance], since: datetime, now: datetime
) -> dict[str, Any]:
    placed = expedited = 0
    latest: dict[str, tuple[datetime, dict[str, Any]]] = {}
    for instance in concluded(instances, since):
        if instance.outcome in (None, "SUPERSEDED"):
            continue
        for entry in store.audit_trail(instance.instance_id):
            if entry.action == MEASURED:
                placed += int(entry.detail.get("requisitions") or 0)
                expedited += int(entry.detail.get("expedited") or 0)
                seen = latest.get(instance.facility_id)
                if seen is None or instance.updated_at > seen[0]:
                    latest[instance.facility_id] = (instance.updated_at, entry.detail)
                break
    risk: dict[str, dict[str, float]] = {}
    days: dict[str, dict[str, float]] = {}
    for facility_id, (_, detail) in sorted(latest.items()):
        by_item: dict[str, float] = {}
        stock: dict[str, tuple[float, float]] = {}
        for row in detail.get("items", []):
            item = str(row["item_id"])
            by_item[item] = max(by_item.get(item, 0.0), float(row["stockout_risk"]))
            on_hand, use = stock.get(item, (0.0, 0.0))
            stock[item] = (on_hand + float(row["on_hand"]), use + float(row["daily_use"]))
        risk[facility_id] = dict(sorted(by_item.items()))
        days[facility_id] = {
            item: round(on_hand / use, 1) for item, (on_hand, use) in sorted(stock.items()) if use
        }
    return {
        "stockout_risk": risk,
        "expedite_rate": {
            "requisitions": placed,
            "expedited": expedited,
            "rate": ratio(expedited, placed),
        },
        "days_on_hand": days,
    }
