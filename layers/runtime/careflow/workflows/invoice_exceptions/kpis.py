"""Invoice exception handling's own KPIs, served by ``GET /v1/kpis`` (see careflow.kit.kpis).

Read from the audit trail: ``invoice_measured`` (finalize: the outcome, first pass or not,
the days to resolve) for the invoices concluded within the window, and
``invoice_exception_raised`` (match: the invoice date) for the exceptions still open.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from careflow.kit.kpis import KpiDefinition, concluded, percentiles, ratio
from careflow.workflows.invoice_exceptions.rules import BUCKETS, age_days, bucket

if TYPE_CHECKING:
    from careflow.domain.records import Instance
    from careflow.ports import StateStore

DUPLICATE = "DUPLICATE"  # not a new invoice: left out of the match rate


class _Kpi(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FirstPassMatch(_Kpi):
    invoices: int
    matched_first_pass: int
    rate: float | None


class DaysToResolve(_Kpi):
    resolved: int
    p50_days: float | None
    p90_days: float | None


OWNER = "accounts payable"
DEFINITIONS = (
    KpiDefinition(
        "first_pass_match_rate",
        "count, ratio",
        "invoices concluded within the window (duplicates left out), those approved for "
        "payment by the three-way match with no exception, and their share; null when none",
        OWNER,
        "audit invoice_measured.detail.first_pass",
        FirstPassMatch,
    ),
    KpiDefinition(
        "exception_aging",
        "count",
        "open invoice exceptions (raised, not yet decided) by aging bucket, in days from the "
        "invoice date to today in the facility's time zone: 0-7, 8-30, 31-60, 60+ (every "
        "bucket, 0 when none)",
        OWNER,
        "audit invoice_exception_raised.detail.invoice_date, facility time zone",
        dict[str, int],
        enterprise="invoice_exception_aging",
    ),
    KpiDefinition(
        "days_to_resolve",
        "days",
        "invoice exceptions resolved by AP within the window (accepted, credit memo "
        "requested, returned): whole days from the exception to the decision; p50 and p90 "
        "by nearest rank; null when none",
        OWNER,
        "audit invoice_measured.detail.days_to_resolve",
        DaysToResolve,
    ),
)


def _today(facility_id: str, now: datetime) -> date:
    from careflow.facilities import zone_of

    return now.astimezone(zone_of(facility_id)).date()


def values(
    store: StateStore, instances: Sequence[Instance], since: datetime, now: datetime
) -> dict[str, Any]:
    from careflow.domain.records import InstanceStatus
    from careflow.workflows.invoice_exceptions.steps import MEASURED, RAISED

    ENDED = (InstanceStatus.COMPLETED, InstanceStatus.CANCELLED, InstanceStatus.FAILED)

    invoices = first_pass = 0
    days: list[float] = []
    for instance in concluded(instances, since):
        if instance.outcome == DUPLICATE:
            continue
        invoices += 1
        for entry in store.audit_trail(instance.instance_id):
            if entry.action == MEASURED:
                first_pass += bool(entry.detail.get("first_pass"))
                if entry.detail.get("days_to_resolve") is not None:
                    days.append(float(entry.detail["days_to_resolve"]))
    aging = {label: 0 for label, _, _ in BUCKETS}
    for instance in instances:
        if instance.status in ENDED:
            continue
        raised = [e for e in store.audit_trail(instance.instance_id) if e.action == RAISED]
        if raised and raised[-1].detail.get("invoice_date"):
            invoice_date = date.fromisoformat(str(raised[-1].detail["invoice_date"]))
            aging[bucket(age_days(invoice_date, _today(instance.facility_id, now)))] += 1
    p50, p90 = percentiles(days)
    return {
        "first_pass_match_rate": {
            "invoices": invoices,
            "matched_first_pass": first_pass,
            "rate": ratio(first_pass, invoices),
        },
        "exception_aging": aging,
        "days_to_resolve": {"resolved": len(days), "p50_days": p50, "p90_days": p90},
    }
