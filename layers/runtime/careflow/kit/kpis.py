"""A workflow's own KPIs, served by ``GET /v1/kpis`` beside the generic ones.

A package declares them on its spec (:attr:`careflow.kit.spec.Workflow.served_kpis`: a
:class:`KpiDefinition` each) and names the function computing their values
(:attr:`~careflow.kit.spec.Workflow.kpi_values`, ``"<module>:<name>"``), a
:data:`KpiValues`: called with the state store, the workflow's instances at the caller's
facilities that were updated within the window (or have not ended), and the window; it
returns ``{name: value}`` for exactly the names it declared. :mod:`careflow.kpis` calls
it and never names a workflow.

The helpers here (:func:`nearest_rank`, :func:`percentiles`, :func:`ratio`,
:func:`concluded`) are the ones the generic KPIs use, so every workflow's numbers are
computed the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from careflow.domain.records import Instance
    from careflow.ports import StateStore

# The enterprise KPIs, named in one place of GET /v1/kpis's answer (its ``enterprise``
# block). Each but the last two is a workflow's own KPI, declared so on its spec
# (KpiDefinition.enterprise, one workflow each); the generic sla_adherence and the triage
# models' override rate are computed by careflow.kpis across every workflow.
ACROSS = "sla_adherence"
MODEL_OVERRIDES = "model_override_rate"
ENTERPRISE: tuple[str, ...] = (
    "authorization_turnaround",
    "discharge_delay_causes",
    "stockout_risk",
    "invoice_exception_aging",
    ACROSS,
    MODEL_OVERRIDES,
)

# (store, instances seen, since, now) -> {name: value}
KpiValues = Callable[["StateStore", "Sequence[Instance]", datetime, datetime], Mapping[str, Any]]


@dataclass(frozen=True)
class KpiDefinition:
    """One KPI as served: its name (the answer's key), unit, definition, owner and
    lineage (the records it reads). ``model``: the value's type in the OpenAPI document
    (a pydantic model, ``int``, ``dict[str, int]``...); ``None`` is any JSON value.
    ``enterprise``: the name of the enterprise KPI this one is, if it is one."""

    name: str
    unit: str
    definition: str
    owner: str
    lineage: str
    model: Any = None
    # the enterprise KPI it is (one of careflow.kpis.ENTERPRISE), served under that name
    # in the answer's ``enterprise`` block too; None: the workflow's alone
    enterprise: str | None = None


def nearest_rank(values: Sequence[float], percent: int) -> float:
    """The ceil(p/100 x n)-th smallest value: one that was observed."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(percent / 100 * len(ordered))) - 1]


def percentiles(values: Sequence[float], *, digits: int = 1) -> tuple[float | None, float | None]:
    """p50 and p90 by nearest rank, rounded; ``(None, None)`` when there are none."""
    if not values:
        return None, None
    return round(nearest_rank(values, 50), digits), round(nearest_rank(values, 90), digits)


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def concluded(instances: Iterable[Instance], since: datetime) -> list[Instance]:
    """The instances COMPLETED within the window (their start may be earlier)."""
    from careflow.domain.records import InstanceStatus

    return [i for i in instances if i.status is InstanceStatus.COMPLETED and i.updated_at >= since]
