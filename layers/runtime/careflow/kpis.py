"""The workflows' KPIs over a window, for a set of facilities, read through the state
store port (no boto3 here): the foundation the KPI catalogue and its dashboards extend.

Each KPI is a :class:`KpiDefinition` (name, unit, definition, owner, lineage), served with
its value so a reader never guesses what a number means; docs/kpis.md is the same
catalogue for people. :data:`CATALOGUE` holds the generic ones every workflow has; a
workflow's own KPIs live in its package, declared on its spec (``served_kpis``, computed
by its ``kpi_values`` function: :mod:`careflow.kit.kpis`), and this module calls them
without naming any workflow. :func:`catalogue` is the whole of it.

What is read: per workflow and status, the instances last updated within the window
(GSI3, a key range), kept to the caller's facilities; for each, its human tasks; then
whatever a workflow's own KPIs read of those instances (milestones, audit entries). The
window is bounded (:data:`MAX_WINDOW`) so the reads are too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, create_model

from careflow.domain.records import HumanTask, Instance, InstanceStatus, TaskStatus
from careflow.kit.kpis import ACROSS, ENTERPRISE, MODEL_OVERRIDES, KpiDefinition, ratio
from careflow.ports import StateStore

DEFAULT_WINDOW = timedelta(days=7)
MAX_WINDOW = timedelta(days=31)

ENDED = frozenset({InstanceStatus.COMPLETED, InstanceStatus.FAILED, InstanceStatus.CANCELLED})
OPEN = frozenset({TaskStatus.OPEN, TaskStatus.CLAIMED})
NO_SERVICE_LINE = "none"  # an instance whose subject has no service line (an invoice, ...)
_DURATION = re.compile(r"^P(?:(\d{1,3})D)?(?:T(?:(\d{1,4})H)?(?:(\d{1,6})M)?)?$")


CATALOGUE: tuple[KpiDefinition, ...] = (
    KpiDefinition(
        "started",
        "count",
        "instances of the workflow started within the window (the cohort)",
        "operations",
        "instance.started_at",
    ),
    KpiDefinition(
        "completed",
        "count",
        "instances of the cohort now COMPLETED (whatever their outcome)",
        "operations",
        "instance.status",
    ),
    KpiDefinition(
        "failed",
        "count",
        "instances of the cohort now FAILED",
        "operations",
        "instance.status",
    ),
    KpiDefinition(
        "cancelled",
        "count",
        "instances of the cohort now CANCELLED (their subject was cancelled)",
        "operations",
        "instance.status",
    ),
    KpiDefinition(
        "running",
        "count",
        "instances of the cohort not ended yet (RUNNING, WAITING, READY, AT_RISK, BLOCKED)",
        "operations",
        "instance.status",
    ),
    KpiDefinition(
        "escalation_rate",
        "ratio",
        "instances of the cohort that raised at least one human task, over started; "
        "null when none started",
        "clinical operations",
        "human_task.instance_id",
    ),
    KpiDefinition(
        "sla_adherence",
        "ratio",
        "human tasks of the cohort that met their due time (completed by due_at), over those "
        "that met or missed it (completed late, still open past due_at, or closed by an "
        "escalation past due_at); tasks open and not yet due are not counted; null when none",
        "clinical operations",
        "human_task.due_at, completed_at, status",
    ),
    KpiDefinition(
        "open_tasks",
        "count, minutes",
        "OPEN or CLAIMED human tasks by queue, with the oldest one's age in whole minutes, "
        "for instances not ended or updated within the window",
        "queue owners",
        "human_task.queue, status, created_at",
    ),
)
DEFINITIONS: dict[str, str] = {k.name: k.definition for k in CATALOGUE}  # the generic ones

# The triage models' override rate, computed across every workflow from the audit entries
# careflow.ml.governance.record_review writes (docs/kpis.md, docs/ai-triage.md).
OVERRIDE_RATE = KpiDefinition(
    MODEL_OVERRIDES,
    "ratio",
    "of the people's answers to a model's suggestion recorded within the window "
    "(model.accepted and model.overridden audit entries), the share that overrode it "
    "(chose another decision than the one that follows the suggestion); by model, by "
    "workflow, by facility, and by model and facility with the counts; null when none",
    "clinical informatics (the models' owners)",
    "audit_entry.action (model.accepted, model.overridden), detail.model_id, at; "
    "instance.workflow_id, facility_id",
)
REVIEWED = frozenset({"model.accepted", "model.overridden"})


def _workflows(workflow_ids: Iterable[str] | None = None) -> list[Any]:
    from careflow.kit.registry import workflows

    wanted = None if workflow_ids is None else set(workflow_ids)
    return [wf for wf in workflows() if wanted is None or wf.id in wanted]


def catalogue(workflow_ids: Iterable[str] | None = None) -> tuple[KpiDefinition, ...]:
    """The generic KPIs, then each registered workflow's own (of ``workflow_ids`` only, if
    given), in workflow order."""
    own = [k for wf in _workflows(workflow_ids) for k in wf.served_kpis]
    generic = {k.name for k in CATALOGUE}
    clash = [k.name for k in own if k.name in generic]
    if clash:
        raise ValueError(f"a workflow's KPI is named like a generic one: {clash}")
    return (*CATALOGUE, *own)


def enterprise_sources(
    workflow_ids: Iterable[str] | None = None,
) -> dict[str, tuple[str, KpiDefinition]]:
    """Each enterprise KPI a workflow declares: ``{enterprise name: (workflow id, its
    KpiDefinition)}``; one workflow at most for each, and only the names of
    :data:`ENTERPRISE` (but :data:`ACROSS`, which is computed across every workflow)."""
    found: dict[str, tuple[str, KpiDefinition]] = {}
    for wf in _workflows(workflow_ids):
        for k in wf.served_kpis:
            if k.enterprise is None:
                continue
            if k.enterprise not in ENTERPRISE or k.enterprise in (ACROSS, MODEL_OVERRIDES):
                raise ValueError(f"{wf.id}: {k.name} is no enterprise KPI: {k.enterprise}")
            if k.enterprise in found:
                raise ValueError(
                    f"{k.enterprise}: declared by {found[k.enterprise][0]} and {wf.id}"
                )
            found[k.enterprise] = (wf.id, k)
    return found


def definitions(workflow_ids: Iterable[str] | None = None) -> dict[str, str]:
    return {k.name: k.definition for k in catalogue(workflow_ids)}


class KpiQuery(BaseModel):
    """``GET /v1/kpis``'s query: ``since`` (ISO time with offset) or ``window`` (``P7D``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    since: datetime | None = None
    window: Annotated[str, StringConstraints(max_length=32)] | None = None
    facility: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")] | None
    ) = None


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QueueLoad(_View):
    queue: str
    count: int
    oldest_age_minutes: int


class GenericKpis(_View):
    workflow_id: str
    started: int
    completed: int
    failed: int
    cancelled: int
    running: int
    escalation_rate: float | None
    sla_adherence: float | None
    open_tasks: list[QueueLoad]


class SlaCell(_View):
    """Tasks that met and missed their due time, and met over both (null when neither)."""

    met: int
    missed: int
    ratio: float | None


class ReviewCell(_View):
    """People's answers to a model's suggestions: accepted, overridden, and overridden over
    both (null when neither)."""

    accepted: int
    overridden: int
    ratio: float | None


class EnterpriseKpi(_View):
    """One enterprise KPI: what it means, who owns it, where it comes from, and its value
    (the source workflow's, or across every workflow), with the breakdowns it has."""

    unit: str
    definition: str
    owner: str
    lineage: str
    sources: list[str]  # the workflows it is computed from
    kpi: str  # its name in each source workflow's row of ``workflows``
    value: Any = None  # null when no source workflow is registered
    by_workflow: dict[str, Any] = {}
    by_facility: dict[str, float | None] | None = None  # sla_adherence's
    # sla_adherence's: {facility: {service line ("none": the subject has none): counts}}
    by_facility_service_line: dict[str, dict[str, SlaCell]] | None = None
    by_model: dict[str, float | None] | None = None  # model_override_rate's
    # model_override_rate's: {model id: {facility: counts}}
    by_model_facility: dict[str, dict[str, ReviewCell]] | None = None


EnterpriseKpis: type[BaseModel] = create_model(
    "EnterpriseKpis",
    __base__=_View,
    __module__=__name__,
    __doc__="The enterprise KPIs (careflow.kit.kpis.ENTERPRISE), each by its name.",
    **dict.fromkeys(ENTERPRISE, (EnterpriseKpi, ...)),  # type: ignore[call-overload]
)


class KpiWindow(_View):
    since: datetime
    until: datetime


class _Report(_View):
    window: KpiWindow
    facilities: list[str]
    definitions: dict[str, str]
    enterprise: EnterpriseKpis


def report_model() -> type[BaseModel]:
    """``GET /v1/kpis``'s answer (the OpenAPI document's model of it): per workflow, the
    generic KPIs and every registered workflow's own, each optional (a workflow's row
    carries its own only)."""
    own: dict[str, Any] = {
        k.name: ((Any if k.model is None else k.model | None), None) for k in catalogue()
    }
    for name in DEFINITIONS:
        own.pop(name)
    row = create_model(
        "WorkflowKpis",
        __base__=GenericKpis,
        __module__=__name__,
        **own,
    )
    report: type[BaseModel] = create_model(
        "KpiReport",
        __base__=_Report,
        __module__=__name__,
        __doc__="``GET /v1/kpis``'s answer (the OpenAPI document's model of it).",
        workflows=(list[row], ...),
    )
    return report


KpiReport = report_model()


class WindowError(ValueError):
    """The window asked for cannot be served; ``field`` is the query field at fault."""

    def __init__(self, field: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration of days, hours and minutes (``P7D``, ``PT12H``, ``P1DT6H``)."""
    found = _DURATION.match(text)
    if found is None or text in ("P", "PT") or text.endswith("T"):
        raise WindowError("query.window", "duration_invalid", "window is not like P7D or PT12H.")
    days, hours, minutes = (int(part or 0) for part in found.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


def window_start(since: datetime | None, window: str | None, now: datetime) -> datetime:
    """Where the window starts: ``since``, or ``now - window``, or seven days back."""
    if since is not None and window is not None:
        raise WindowError("query.window", "conflict", "Give since or window, not both.")
    if since is not None:
        if since.tzinfo is None:
            raise WindowError("query.since", "timezone_missing", "since needs a UTC offset.")
        start = since.astimezone(UTC)
        field = "query.since"
    else:
        span = parse_duration(window) if window is not None else DEFAULT_WINDOW
        if span <= timedelta(0):
            raise WindowError("query.window", "too_short", "window must be longer than zero.")
        start = now - span
        field = "query.window"
    if start > now:
        raise WindowError(field, "in_future", "The window cannot start in the future.")
    if now - start > MAX_WINDOW:
        raise WindowError(field, "too_long", f"The window is at most {MAX_WINDOW.days} days.")
    return start


def _sla(tasks: Iterable[HumanTask], now: datetime) -> float | None:
    met, missed = _sla_counts(tasks, now)
    return ratio(met, met + missed)


def sla_met(task: HumanTask, now: datetime) -> bool | None:
    """A task against its SLA at ``now``: True met (completed by its due time), False
    missed (completed late; or open past due, or closed (escalated) once due), None not
    yet counted (open and not yet due)."""
    if task.status is TaskStatus.COMPLETED and task.completed_at is not None:
        return task.completed_at <= task.due_at
    return False if task.due_at <= now else None


def _sla_counts(tasks: Iterable[HumanTask], now: datetime) -> tuple[int, int]:
    """(met, missed) of :func:`_sla`."""
    met = missed = 0
    for t in tasks:
        outcome = sla_met(t, now)
        met += outcome is True
        missed += outcome is False
    return met, missed


def _open_by_queue(tasks: Iterable[HumanTask], now: datetime) -> list[dict[str, Any]]:
    queues: dict[str, list[HumanTask]] = {}
    for t in tasks:
        if t.status in OPEN:
            queues.setdefault(t.queue, []).append(t)
    return [
        {
            "queue": queue,
            "count": len(found),
            "oldest_age_minutes": int((now - min(t.created_at for t in found)).total_seconds())
            // 60,
        }
        for queue, found in sorted(queues.items())
    ]


def workflow_kpis(
    store: StateStore,
    workflow_id: str,
    facilities: Iterable[str],
    *,
    since: datetime,
    now: datetime,
) -> dict[str, Any]:
    """One workflow's KPIs at ``facilities`` over [``since``, ``now``]."""
    return _workflow_kpis(store, workflow_id, facilities, since=since, now=now)[0]


Counts = dict[tuple[str, str], tuple[int, int]]


def _workflow_kpis(
    store: StateStore,
    workflow_id: str,
    facilities: Iterable[str],
    *,
    since: datetime,
    now: datetime,
) -> tuple[dict[str, Any], Counts, Counts]:
    """The workflow's KPIs, the SLA's (met, missed) by (facility, service line) (for
    the enterprise sla_adherence, across workflows; :data:`NO_SERVICE_LINE` for an instance
    without one), and the models' (accepted, overridden) by (model, facility) (for
    model_override_rate)."""
    at = frozenset(facilities)
    seen: list[Instance] = []  # last updated within the window
    for status in InstanceStatus:
        for i in store.instances_updated_since(workflow_id, status.value, since):
            if i.facility_id in at and i.updated_at <= now:
                seen.append(i)
    for status in InstanceStatus:  # not ended, however long ago they last changed
        if status not in ENDED:
            for i in store.instances_by_status(workflow_id, status.value):
                if i.facility_id in at and i.updated_at < since:
                    seen.append(i)
    cohort = [i for i in seen if since <= i.started_at <= now]
    tasks = {i.instance_id: list(store.tasks_for_instance(i.instance_id)) for i in seen}
    by_status = {s: sum(1 for i in cohort if i.status is s) for s in InstanceStatus}
    escalated = sum(1 for i in cohort if tasks[i.instance_id])
    found: dict[str, Any] = {
        "workflow_id": workflow_id,
        "started": len(cohort),
        "completed": by_status[InstanceStatus.COMPLETED],
        "failed": by_status[InstanceStatus.FAILED],
        "cancelled": by_status[InstanceStatus.CANCELLED],
        "running": sum(n for s, n in by_status.items() if s not in ENDED),
        "escalation_rate": ratio(escalated, len(cohort)),
        "sla_adherence": _sla((t for i in cohort for t in tasks[i.instance_id]), now),
        "open_tasks": _open_by_queue(
            (
                t
                for i in seen
                if i.status not in ENDED or i.updated_at >= since
                for t in tasks[i.instance_id]
            ),
            now,
        ),
    }
    found.update(_own_kpis(store, workflow_id, seen, since=since, now=now))
    sla: dict[tuple[str, str], tuple[int, int]] = {}
    for i in cohort:
        met, missed = _sla_counts(tasks[i.instance_id], now)
        key = (i.facility_id, i.service_line or NO_SERVICE_LINE)
        was = sla.get(key, (0, 0))
        sla[key] = (was[0] + met, was[1] + missed)
    return found, sla, _reviews(store, seen, since=since, now=now)


def _reviews(
    store: StateStore, seen: Sequence[Instance], *, since: datetime, now: datetime
) -> Counts:
    """(accepted, overridden) by (model id, facility): the review audit entries recorded
    within [``since``, ``now``] on the instances seen."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for i in seen:
        for entry in store.audit_trail(i.instance_id):
            if entry.action not in REVIEWED or not since <= entry.at <= now:
                continue
            key = (str(entry.detail.get("model_id") or "-"), i.facility_id)
            was = out.get(key, (0, 0))
            overridden = entry.action == "model.overridden"
            out[key] = (was[0] + (not overridden), was[1] + overridden)
    return out


def _own_kpis(
    store: StateStore, workflow_id: str, seen: Sequence[Instance], *, since: datetime, now: datetime
) -> dict[str, Any]:
    """What the workflow's package computes of its own KPIs (nothing if it declares none),
    checked against what it declared."""
    from careflow.kit.registry import workflows

    wf = next((w for w in workflows() if w.id == workflow_id), None)
    fn = wf.kpi_function() if wf is not None else None
    if wf is None or fn is None:
        return {}
    values = dict(fn(store, seen, since, now))
    declared = {k.name for k in wf.served_kpis}
    if set(values) != declared:
        raise ValueError(
            f"{workflow_id}: its KPI function answered {sorted(values)}, "
            f"it declares {sorted(declared)}"
        )
    return values


def kpis(
    store: StateStore,
    workflow_ids: Iterable[str],
    facilities: Iterable[str],
    *,
    since: datetime,
    now: datetime,
) -> dict[str, Any]:
    """The KPIs of each workflow at ``facilities``, with the window and each definition."""
    at, ids = sorted(set(facilities)), sorted(workflow_ids)
    rows, sla, reviews = [], {}, {}
    for wf in ids:
        row, counts, reviewed = _workflow_kpis(store, wf, at, since=since, now=now)
        rows.append(row)
        sla[wf] = counts
        reviews[wf] = reviewed
    return {
        "window": {"since": since.isoformat(), "until": now.isoformat()},
        "facilities": at,
        "definitions": definitions(ids),
        "enterprise": enterprise(rows, sla, at, ids, reviews),
        "workflows": rows,
    }


def enterprise(
    rows: Sequence[dict[str, Any]],
    sla: dict[str, dict[tuple[str, str], tuple[int, int]]],
    facilities: Sequence[str],
    workflow_ids: Sequence[str],
    reviews: dict[str, Counts] | None = None,
) -> dict[str, Any]:
    """The ``enterprise`` block: each of :data:`ENTERPRISE` with its definition, owner,
    lineage, source workflows and value. A declared one is its source workflow's value (null
    when no workflow declares it); sla_adherence is met over met-or-missed summed across
    every workflow's tasks, with its ratio by workflow and by facility, and its counts and
    ratio by facility and service line (``sla``: each workflow's (met, missed) by
    (facility, service line))."""
    by_id = {row["workflow_id"]: row for row in rows}
    declared = enterprise_sources(workflow_ids)
    block: dict[str, Any] = {}
    for name in ENTERPRISE:
        if name in (ACROSS, MODEL_OVERRIDES):
            continue
        if name not in declared:
            block[name] = {
                "unit": "-",
                "definition": "no registered workflow computes it",
                "owner": "-",
                "lineage": "-",
                "sources": [],
                "kpi": name,
                "value": None,
                "by_workflow": {},
            }
            continue
        wf, k = declared[name]
        value = by_id[wf].get(k.name) if wf in by_id else None
        block[name] = {
            "unit": k.unit,
            "definition": k.definition,
            "owner": k.owner,
            "lineage": f"{wf}: {k.lineage}",
            "sources": [wf],
            "kpi": k.name,
            "value": value,
            "by_workflow": {wf: value},
        }
    generic = next(k for k in CATALOGUE if k.name == ACROSS)
    met = missed = 0
    per_facility: dict[str, list[int]] = {f: [0, 0] for f in facilities}
    per_line: dict[str, dict[str, list[int]]] = {f: {} for f in facilities}
    for counts in sla.values():
        for (facility_id, line), (m, x) in counts.items():
            met, missed = met + m, missed + x
            for cell in (
                per_facility.setdefault(facility_id, [0, 0]),
                per_line.setdefault(facility_id, {}).setdefault(line, [0, 0]),
            ):
                cell[0] += m
                cell[1] += x
    block[ACROSS] = {
        "unit": generic.unit,
        "definition": f"across every workflow: {generic.definition}",
        "owner": generic.owner,
        "lineage": f"every workflow: {generic.lineage}",
        "sources": list(workflow_ids),
        "kpi": ACROSS,
        "value": ratio(met, met + missed),
        "by_workflow": {row["workflow_id"]: row[ACROSS] for row in rows},
        "by_facility": {f: ratio(m, m + x) for f, (m, x) in sorted(per_facility.items())},
        "by_facility_service_line": {
            f: {
                line: {"met": m, "missed": x, "ratio": ratio(m, m + x)}
                for line, (m, x) in sorted(lines.items())
            }
            for f, lines in sorted(per_line.items())
        },
    }
    block[MODEL_OVERRIDES] = override_rate(reviews or {}, facilities, workflow_ids)
    return {name: block[name] for name in ENTERPRISE}


def override_rate(
    reviews: dict[str, Counts], facilities: Sequence[str], workflow_ids: Sequence[str]
) -> dict[str, Any]:
    """model_override_rate: overridden over accepted-or-overridden, across every workflow;
    by model, by workflow, by facility, and by model and facility with the counts
    (``reviews``: each workflow's (accepted, overridden) by (model id, facility))."""

    def add(cell: list[int], a: int, o: int) -> None:
        cell[0] += a
        cell[1] += o

    total = [0, 0]
    per_workflow = {wf: [0, 0] for wf in workflow_ids}
    per_facility: dict[str, list[int]] = {f: [0, 0] for f in facilities}
    per_model: dict[str, dict[str, list[int]]] = {}
    for wf, counts in reviews.items():
        for (model_id, facility_id), (a, o) in counts.items():
            for cell in (
                total,
                per_workflow.setdefault(wf, [0, 0]),
                per_facility.setdefault(facility_id, [0, 0]),
                per_model.setdefault(model_id, {}).setdefault(facility_id, [0, 0]),
            ):
                add(cell, a, o)
    by_model = {}
    for model_id, cells in sorted(per_model.items()):
        a = sum(c[0] for c in cells.values())
        o = sum(c[1] for c in cells.values())
        by_model[model_id] = ratio(o, a + o)
    k = OVERRIDE_RATE
    return {
        "unit": k.unit,
        "definition": k.definition,
        "owner": k.owner,
        "lineage": f"every workflow: {k.lineage}",
        "sources": list(workflow_ids),
        "kpi": k.name,
        "value": ratio(total[1], total[0] + total[1]),
        "by_workflow": {wf: ratio(o, a + o) for wf, (a, o) in sorted(per_workflow.items())},
        "by_facility": {f: ratio(o, a + o) for f, (a, o) in sorted(per_facility.items())},
        "by_model": by_model,
        "by_model_facility": {
            m: {
                f: {"accepted": a, "overridden": o, "ratio": ratio(o, a + o)}
                for f, (a, o) in sorted(cells.items())
            }
            for m, cells in sorted(per_model.items())
        },
    }
