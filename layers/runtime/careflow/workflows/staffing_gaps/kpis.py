"""Staffing gap detection's own KPIs, served by ``GET /v1/kpis`` (see careflow.kit.kpis).

Read for each assessment concluded within the window that found a new gap (FILLED or
UNFILLED): the ``staffing_measured`` audit entry its last step writes (found early,
unfilled at the shift start, overtime hours). Assessments concluded before that entry
was written are not counted.
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

MEASURED = "staffing_measured"  # the audit action finish_assessment writes (steps import it)
OWNER = "nursing operations (staffing office)"
LINEAGE = "audit staffing_measured.detail"


class GapsFoundEarly(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gaps: int
    found_early: int
    share: float | None


DEFINITIONS = (
    KpiDefinition(
        "gaps_found_early",
        "count, ratio",
        "staffing gaps (a unit-shift short of staff, each counted once) whose assessment "
        "concluded within the window, those found at least the policy's early warning "
        "(4 h) before the shift, and their share; null when none",
        OWNER,
        f"{LINEAGE}.found_early",
        GapsFoundEarly,
    ),
    KpiDefinition(
        "gaps_unfilled_at_shift_start",
        "count",
        "staffing gaps concluded within the window still unfilled when their shift began "
        "(no coordinator decision before the escalation chain ran out)",
        OWNER,
        f"{LINEAGE}.unfilled_at_shift_start",
        int,
    ),
    KpiDefinition(
        "overtime_hours",
        "hours",
        "overtime hours booked by the coordinator's decisions on gaps concluded within the "
        "window (staff on overtime x the shift's hours)",
        OWNER,
        f"{LINEAGE}.overtime_hours",
        float,
    ),
)


def values(
    store: StateStore, instances: Sequence[Instance], since: datetime, now: datetime
) -> dict[str, Any]:
    gaps = early = unfilled = 0
    overtime = 0.0
    for instance in concluded(instances, since):
        if instance.outcome not in ("FILLED", "UNFILLED"):
            continue
        for entry in store.audit_trail(instance.instance_id):
            if entry.action == MEASURED:
                gaps += 1
                early += bool(entry.detail.get("found_early"))
                unfilled += bool(entry.detail.get("unfilled_at_shift_start"))
                overtime += float(entry.detail.get("overtime_hours") or 0)
                break
    return {
        "gaps_found_early": {"gaps": gaps, "found_early": early, "share": ratio(early, gaps)},
        "gaps_unfilled_at_shift_start": unfilled,
        "overtime_hours": round(overtime, 2),
    }
