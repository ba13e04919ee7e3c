"""Procurement approval's own KPIs, served by ``GET /v1/kpis`` (see careflow.kit.kpis).

Read for each requisition concluded within the window: its ``requisition_measured`` audit
entry (finalize: submission time, cycle seconds, amount, approved levels) and its
``approval_decided`` entries (one per approver's decision, with its level).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from careflow.kit.kpis import KpiDefinition, concluded, percentiles

if TYPE_CHECKING:
    from careflow.domain.records import Instance
    from careflow.ports import StateStore

OWNER = "supply chain (procure-to-pay)"
MEASURED = "requisition_measured"
APPROVAL_DECIDED = "approval_decided"
BUDGET_EXCEPTION = "BUDGET_EXCEPTION"


class _Kpi(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CycleTime(_Kpi):
    requisitions: int
    p50_hours: float | None
    p90_hours: float | None


class BudgetExceptions(_Kpi):
    requisitions: int
    budget_exceptions: int
    amount: str  # USD, decimal string: the amounts the budgets could not cover


DEFINITIONS = (
    KpiDefinition(
        "requisition_cycle_time",
        "hours",
        "requisitions concluded within the window (any outcome): hours from submission to "
        "the outcome; p50 and p90 by nearest rank; null when none",
        OWNER,
        "audit requisition_measured.detail.cycle_seconds",
        CycleTime,
    ),
    KpiDefinition(
        "approvals_by_level",
        "count",
        "approvers' decisions on the requisitions concluded within the window, by level and "
        "decision (APPROVE, REJECT, RETURN)",
        OWNER,
        "audit approval_decided.detail.level, decision",
        dict[str, dict[str, int]],
    ),
    KpiDefinition(
        "budget_exceptions",
        "count, USD",
        "requisitions concluded within the window, those ended BUDGET_EXCEPTION and their amount",
        OWNER,
        "instance outcome; audit requisition_measured.detail.amount",
        BudgetExceptions,
    ),
)


def values(
    store: StateStore, instances: Sequence[Instance], since: datetime, now: datetime
) -> dict[str, Any]:
    from decimal import Decimal

    hours: list[float] = []
    by_level: dict[str, dict[str, int]] = {}
    count = exceptions = 0
    short = Decimal(0)
    for instance in concluded(instances, since):
        count += 1
        for entry in store.audit_trail(instance.instance_id):
            if entry.action == MEASURED:
                hours.append(int(entry.detail.get("cycle_seconds", 0)) / 3600)
                if instance.outcome == BUDGET_EXCEPTION:
                    short += Decimal(str(entry.detail.get("amount", "0")))
            elif entry.action == APPROVAL_DECIDED:
                level = by_level.setdefault(str(entry.detail.get("level")), {})
                decision = str(entry.detail.get("decision", entry.reason))
                level[decision] = level.get(decision, 0) + 1
        exceptions += instance.outcome == BUDGET_EXCEPTION
    p50, p90 = percentiles(hours)
    return {
        "requisition_cycle_time": {"requisitions": len(hours), "p50_hours": p50, "p90_hours": p90},
        "approvals_by_level": by_level,
        "budget_exceptions": {
            "requisitions": count,
            "budget_exceptions": exceptions,
            "amount": f"{short:.2f}",
        },
    }
