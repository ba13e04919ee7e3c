"""The post-procedure revenue cycle's own KPIs, served by ``GET /v1/kpis`` (see
careflow.kit.kpis).

Read from the audit trail: ``revenue_reviewed`` (the first review of a case: its charge
lag and missing charges) and ``revenue_measured`` (finalize: the outcome and the DNFB
cause) for the cases within the window; ``dnfb_raised`` for the cases still open.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from careflow.kit.kpis import KpiDefinition, percentiles

if TYPE_CHECKING:
    from careflow.domain.records import Instance
    from careflow.ports import StateStore


class _Kpi(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChargeLag(_Kpi):
    cases: int
    p50_days: float | None
    p90_days: float | None
    mean_days: float | None


class DnfbCause(_Kpi):
    cases: int
    days: int  # days since the procedure's end, summed over the cases


class MissingCharges(_Kpi):
    cases_reviewed: int
    cases_with_missing: int
    items: int
    amount: str  # USD, a decimal string


OWNER = "revenue cycle (patient financial services)"
DEFINITIONS = (
    KpiDefinition(
        "charge_lag_days",
        "days",
        "cases reviewed within the window with a charge posted: whole days from the "
        "procedure's end to the first charge (facility dates); p50 and p90 by nearest rank "
        "and the mean; null when none",
        OWNER,
        "audit revenue_reviewed.detail.charge_lag_days (the case's first review)",
        ChargeLag,
    ),
    KpiDefinition(
        "dnfb_by_cause",
        "count, days",
        "cases discharged not final billed now (open with a DNFB task, or concluded HELD "
        "within the window), by the cause that holds them: their count and the days since "
        "their procedures ended, summed",
        OWNER,
        "audit dnfb_raised.detail.cause, revenue_measured.detail.dnfb_cause",
        dict[str, DnfbCause],
    ),
    KpiDefinition(
        "missing_charges",
        "count, usd",
        "cases reviewed within the window, those whose first review found used items "
        "without a charge, the items and their amount at the chargemaster's price",
        OWNER,
        "audit revenue_reviewed.detail.missing_count, missing_amount (first review)",
        MissingCharges,
    ),
)


def values(
    store: StateStore, instances: Sequence[Instance], since: datetime, now: datetime
) -> dict[str, Any]:
    from careflow.domain.records import InstanceStatus
    from careflow.workflows.revenue_cycle.steps import HELD, MEASURED, RAISED, REVIEWED

    lags: list[float] = []
    reviewed = with_missing = items = 0
    amount = Decimal(0)
    dnfb: dict[str, dict[str, int]] = {}
    for instance in instances:
        trail = list(store.audit_trail(instance.instance_id))
        first = next((e for e in trail if e.action == REVIEWED), None)
        if first is not None and first.at >= since:
            reviewed += 1
            if first.detail.get("charge_lag_days") is not None:
                lags.append(float(first.detail["charge_lag_days"]))
            count = int(first.detail.get("missing_count") or 0)
            if count:
                with_missing += 1
                items += count
                amount += Decimal(str(first.detail.get("missing_amount") or "0"))
        cause, end = None, None
        measured = next((e for e in trail if e.action == MEASURED), None)
        if instance.status is InstanceStatus.RUNNING:
            raised = [e for e in trail if e.action == RAISED]
            if raised:
                cause, end = raised[-1].detail.get("cause"), raised[-1].detail.get("procedure_end")
        elif (
            measured is not None and measured.at >= since and measured.detail.get("outcome") == HELD
        ):
            cause, end = measured.detail.get("dnfb_cause"), measured.detail.get("procedure_end")
        if cause:
            days = (now - datetime.fromisoformat(str(end))).days if end else 0
            slot = dnfb.setdefault(str(cause), {"cases": 0, "days": 0})
            slot["cases"] += 1
            slot["days"] += max(0, days)
    p50, p90 = percentiles(lags)
    return {
        "charge_lag_days": {
            "cases": len(lags),
            "p50_days": p50,
            "p90_days": p90,
            "mean_days": round(sum(lags) / len(lags), 1) if lags else None,
        },
        "dnfb_by_cause": dnfb,
        "missing_charges": {
            "cases_reviewed": reviewed,
            "cases_with_missing": with_missing,
            "items": items,
            "amount": str(amount.quantize(Decimal("0.01"))),
        },
    }
