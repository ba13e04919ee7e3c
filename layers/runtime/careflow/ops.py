"""What the operations page reads (``/ops``, through ``/v1``): read models over the state
store, computed from workflow state, never from logs.

- :func:`board`: the instances not yet ended, by workflow and by their latest milestone;
- :func:`queues`: the open human tasks by queue, their depth, how many are overdue, their
  ages in :data:`AGE_BUCKETS`, and whether the caller may work or supervise each queue;
- :func:`series`: per interval, instances started and ended by workflow, tasks opened,
  and the SLA met and missed of the tasks due in the interval (KPI charts over time).

Who sees what: a subject's identifier (a case, an encounter, an invoice number) is shown
only to a person whose roles work or supervise one of that workflow's queues (the
``queue_roles`` table of the policy it pins); anyone else sees the counts, and the
instance by its careflow id only. A token that names no roles (a partner's client) is
judged by its scopes alone, as in the rest of ``/v1``. No patient data is ever read here:
instances and tasks carry identifiers only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from careflow.domain.records import HumanTask, Instance, InstanceStatus, TaskStatus
from careflow.kit.kpis import ratio
from careflow.kpis import ENDED, OPEN, sla_met
from careflow.ports import StateStore

# A task's age, from its creation: hours matter to a charge nurse, days to AP (whose own
# aging, by the invoice's date, is the invoice_exception_aging KPI).
AGE_BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("under 4 h", timedelta(hours=4)),
    ("4-24 h", timedelta(hours=24)),
    ("1-7 d", timedelta(days=7)),
    ("8-30 d", timedelta(days=30)),
    ("over 30 d", None),
)
BOARD_LIMIT = 200  # instances listed per workflow (all are counted)
MAX_POINTS = 60
MIN_INTERVAL = timedelta(hours=1)
MAX_SPAN = timedelta(days=62)
QUEUE_ROLES_TABLE = "queue_roles"


@dataclass(frozen=True)
class QueueAccess:
    """The roles that work and supervise a queue."""

    work: frozenset[str]
    supervise: frozenset[str]


def age_bucket(age: timedelta) -> str:
    for label, below in AGE_BUCKETS:
        if below is None or age < below:
            return label
    return AGE_BUCKETS[-1][0]  # pragma: no cover - the last bucket has no bound


def workflow_roles(
    policy_of: Mapping[str, str], facility_id: str, reader: Any
) -> dict[str, frozenset[str]]:
    """Workflow id -> every role its policy (in force at ``facility_id``) lets work or
    supervise one of its queues. A policy that cannot be read gives no roles."""
    from careflow.policies import PolicyError, resolve

    found: dict[str, frozenset[str]] = {}
    for workflow_id, policy in policy_of.items():
        roles: set[str] = set()
        try:
            table = resolve(policy, facility_id, store=reader).tables[QUEUE_ROLES_TABLE]
        except (PolicyError, KeyError):
            found[workflow_id] = frozenset()
            continue
        for row in table.rows:
            for key in ("work", "supervise"):
                value = row.then.get(key)
                if isinstance(value, list | tuple):
                    roles.update(str(r) for r in value)
        found[workflow_id] = frozenset(roles)
    return found


def sees_subjects(caller_roles: frozenset[str] | None, workflow_roles: frozenset[str]) -> bool:
    """Whether a caller with these roles may see the workflow's subject identifiers."""
    return caller_roles is None or bool(caller_roles & workflow_roles)


class NeedToKnow:
    """Whether a caller may see a workflow's subjects at a facility: :func:`sees_subjects`
    of the caller's roles and the roles the workflow's policy (``policy_of``: workflow id
    -> policy name) lets work or supervise its queues there. Made per request; each
    (workflow, facility) is resolved once."""

    def __init__(
        self, caller_roles: frozenset[str] | None, policy_of: Mapping[str, str], reader: Any
    ) -> None:
        self.roles = caller_roles
        self._policy_of = policy_of
        self._reader = reader
        self._seen: dict[tuple[str, str], bool] = {}

    def sees(self, workflow_id: str, facility_id: str) -> bool:
        if self.roles is None:
            return True
        key = (workflow_id, facility_id)
        if key not in self._seen:
            policy = {workflow_id: self._policy_of.get(workflow_id, "")}
            found = workflow_roles(policy, facility_id, self._reader)[workflow_id]
            self._seen[key] = sees_subjects(self.roles, found)
        return self._seen[key]


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def live_instances(
    store: StateStore, workflow_ids: Iterable[str], facilities: Iterable[str]
) -> list[Instance]:
    """The instances not yet ended at ``facilities``, of ``workflow_ids``."""
    at = frozenset(facilities)
    found: list[Instance] = []
    for workflow_id in workflow_ids:
        for status in InstanceStatus:
            if status in ENDED:
                continue
            found.extend(
                i
                for i in store.instances_by_status(workflow_id, status.value)
                if i.facility_id in at
            )
    return found


def board(
    store: StateStore,
    workflows: Sequence[tuple[str, str]],
    facilities: Iterable[str],
    *,
    visible: Mapping[str, bool],
    now: datetime,
    limit: int = BOARD_LIMIT,
) -> dict[str, Any]:
    """``workflows``: (id, title) pairs. Each workflow's live instances grouped by their
    latest milestone (by time; ``started`` when none), the oldest change first, with
    their open tasks' count and whether any is overdue."""
    columns = []
    ids = [w for w, _ in workflows]
    live = live_instances(store, ids, facilities)
    by_workflow: dict[str, list[Instance]] = {w: [] for w in ids}
    for i in live:
        by_workflow.setdefault(i.workflow_id, []).append(i)
    for workflow_id, title in workflows:
        instances = sorted(
            by_workflow.get(workflow_id, []), key=lambda i: (i.updated_at, i.instance_id)
        )
        groups: dict[str, list[dict[str, Any]]] = {}
        for n, instance in enumerate(instances):
            if n >= limit:
                break
            milestones = sorted(store.milestones(instance.instance_id), key=lambda m: m.at)
            latest = milestones[-1] if milestones else None
            tasks = [t for t in store.tasks_for_instance(instance.instance_id) if t.status in OPEN]
            milestone = latest.name if latest else "started"
            card: dict[str, Any] = {
                "instance_id": instance.instance_id,
                "status": instance.status.value,
                "facility_id": instance.facility_id,
                "service_line": instance.service_line,
                "subject_type": instance.subject_type,
                "subject_id": instance.subject_id if visible.get(workflow_id, False) else None,
                "milestone": milestone,
                "milestone_status": latest.status if latest else "DONE",
                "since": _time(latest.at if latest else instance.started_at),
                "started_at": _time(instance.started_at),
                "scheduled_start": _time(instance.scheduled_start),
                "open_tasks": len(tasks),
                "overdue_tasks": sum(1 for t in tasks if t.due_at <= now),
            }
            groups.setdefault(milestone, []).append(card)
        columns.append(
            {
                "workflow_id": workflow_id,
                "title": title,
                "running": len(instances),
                "listed": min(len(instances), limit),
                "subjects_visible": visible.get(workflow_id, False),
                "milestones": [
                    {"milestone": name, "count": len(cards), "instances": cards}
                    for name, cards in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
                ],
            }
        )
    return {"at": now.isoformat(), "workflows": columns}


def inbox_order(task: HumanTask) -> tuple[bool, float, datetime, str]:
    """How every inbox lists tasks: by the task priority model's score, highest first;
    tasks it did not score (the model off or in shadow, or opened before it ran) after
    them, earliest due first."""
    unscored = task.priority is None
    return (unscored, -(task.priority or 0.0), task.due_at, task.task_id)


def queues(
    tasks: Iterable[HumanTask],
    *,
    access: Callable[[HumanTask], QueueAccess],
    caller_roles: frozenset[str] | None,
    now: datetime,
) -> dict[str, Any]:
    """The open tasks by (facility, queue): depth, claimed, overdue, escalated, the oldest
    task's age in minutes, the ages by :data:`AGE_BUCKETS`, and whether the caller may work
    (``may_work``) or supervise (``may_supervise``) it by its roles (None: not said), and
    its most urgent task's priority (``top_priority``, 0 when none is scored): the queues
    with the most urgent work first."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for t in tasks:
        if t.status not in OPEN:
            continue
        key = (t.facility_id, t.queue)
        row = rows.get(key)
        if row is None:
            roles = access(t)
            row = rows[key] = {
                "queue": t.queue,
                "facility_id": t.facility_id,
                "workflow_ids": set(),
                "open": 0,
                "claimed": 0,
                "overdue": 0,
                "escalated": 0,
                "oldest_age_minutes": 0,
                "aging": {label: 0 for label, _ in AGE_BUCKETS},
                "top_priority": 0.0,
                "may_work": None if caller_roles is None else bool(caller_roles & roles.work),
                "may_supervise": (
                    None if caller_roles is None else bool(caller_roles & roles.supervise)
                ),
            }
        age = max(now - t.created_at, timedelta(0))
        row["workflow_ids"].add(t.workflow_id)
        row["open"] += 1
        row["claimed"] += t.status is TaskStatus.CLAIMED
        row["overdue"] += t.due_at <= now
        row["escalated"] += t.escalation_level > 0
        row["oldest_age_minutes"] = max(row["oldest_age_minutes"], int(age.total_seconds()) // 60)
        row["aging"][age_bucket(age)] += 1
        row["top_priority"] = max(row["top_priority"], t.priority or 0.0)
    out = []
    for key in sorted(rows, key=lambda k: (-rows[k]["top_priority"], k)):
        row = rows[key]
        row["workflow_ids"] = sorted(row["workflow_ids"])
        out.append(row)
    return {
        "at": now.isoformat(),
        "buckets": [label for label, _ in AGE_BUCKETS],
        "queues": out,
    }


def series(
    store: StateStore,
    workflow_ids: Sequence[str],
    facilities: Iterable[str],
    *,
    interval: timedelta,
    points: int,
    now: datetime,
) -> dict[str, Any]:
    """``points`` intervals of ``interval`` ending at ``now``, the oldest first. In each:
    instances started (by ``started_at``) and ended (COMPLETED, FAILED or CANCELLED, by
    their last change) per workflow; human tasks opened; and of the tasks due within it,
    those completed by their due time (met) and those not (missed), with the ratio."""
    if interval < MIN_INTERVAL:
        raise ValueError(
            f"the interval is at least {int(MIN_INTERVAL.total_seconds() // 60)} minutes"
        )
    if not 1 <= points <= MAX_POINTS:
        raise ValueError(f"points is from 1 to {MAX_POINTS}")
    if interval * points > MAX_SPAN:
        raise ValueError(f"interval times points is at most {MAX_SPAN.days} days")
    start = now - interval * points
    at = frozenset(facilities)
    seen: dict[str, Instance] = {}
    for workflow_id in workflow_ids:
        for status in InstanceStatus:
            for i in store.instances_updated_since(workflow_id, status.value, start):
                if i.facility_id in at:
                    seen[i.instance_id] = i
        for i in live_instances(store, [workflow_id], at):
            seen[i.instance_id] = i
    started = [dict.fromkeys(workflow_ids, 0) for _ in range(points)]
    ended = [dict.fromkeys(workflow_ids, 0) for _ in range(points)]
    opened, met, missed = [0] * points, [0] * points, [0] * points

    def index(when: datetime) -> int | None:
        if when < start or when > now:
            return None
        return min(int((when - start) / interval), points - 1)

    for i in seen.values():
        k = index(i.started_at)
        if k is not None:
            started[k][i.workflow_id] = started[k].get(i.workflow_id, 0) + 1
        k = index(i.updated_at) if i.status in ENDED else None
        if k is not None:
            ended[k][i.workflow_id] = ended[k].get(i.workflow_id, 0) + 1
        for t in store.tasks_for_instance(i.instance_id):
            k = index(t.created_at)
            if k is not None:
                opened[k] += 1
            k = index(t.due_at)
            outcome = sla_met(t, now) if k is not None else None
            if k is not None and outcome is not None:
                (met if outcome else missed)[k] += 1
    buckets = [
        {
            "since": (start + interval * k).isoformat(),
            "until": (start + interval * (k + 1)).isoformat(),
            "started": started[k],
            "ended": ended[k],
            "tasks_opened": opened[k],
            "sla_met": met[k],
            "sla_missed": missed[k],
            "sla_adherence": ratio(met[k], met[k] + missed[k]),
        }
        for k in range(points)
    ]
    return {
        "interval_seconds": int(interval.total_seconds()),
        "since": start.isoformat(),
        "until": now.isoformat(),
        "facilities": sorted(at),
        "workflow_ids": list(workflow_ids),
        "points": buckets,
    }
