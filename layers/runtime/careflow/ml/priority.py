"""Task priority: the chance a task's work goes wrong if it waits, for every inbox.

Learns from every workflow's tasks: a task whose SLA passed (it escalated, or was decided
after its due time) was urgent, one decided in time was routine. It sees the workflow, the
queue, the SLA, how far the subject's own deadline is (the surgery, the expected discharge,
the payment due date), the money at stake and whether a workflow waits on the decision;
never who the patient is. The inbox orders by it and shows its reasons; the baseline it must
beat is today's order, earliest due first.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from careflow.ml.features import Feature
from careflow.ml.history import audited_inputs, predicted_entry
from careflow.ml.registry import Example, HistoryRecord, ModelDef

URGENT, ROUTINE = "urgent", "routine"

FEATURES = (
    Feature("workflow", "category", "the workflow that opened the task"),
    Feature("queue", "category", "the role queue it is in"),
    Feature("sla_hours", "number", "hours from opening to its due time (its SLA)"),
    Feature("hours_to_deadline", "number", "hours from opening to the subject's own deadline"),
    Feature("deadline_within_day", "flag", "the subject's deadline falls within 24 hours"),
    Feature("deadline_within_shift", "flag", "the subject's deadline falls within 6 hours"),
    Feature("value_usd_log10", "number", "log10 of the money at stake (0 when none)"),
    Feature("awaits_decision", "flag", "a workflow waits on the person's decision"),
    Feature("weekend", "flag", "opened on a Saturday or Sunday"),
)


def features_of(
    *,
    workflow_id: str,
    queue: str,
    due_in_seconds: float,
    deadline_at: datetime | None,
    value_usd: float | None,
    awaits_decision: bool,
    now: datetime,
) -> dict[str, Any]:
    hours = round((deadline_at - now).total_seconds() / 3600, 3) if deadline_at else None
    return {
        "workflow": workflow_id,
        "queue": queue,
        "sla_hours": round(due_in_seconds / 3600, 3),
        "hours_to_deadline": hours,
        "deadline_within_day": hours is not None and hours < 24,
        "deadline_within_shift": hours is not None and hours < 6,
        "value_usd_log10": round(math.log10(1 + value_usd), 4) if value_usd else 0.0,
        "awaits_decision": awaits_decision,
        "weekend": now.weekday() >= 5,
    }


def score(
    store: Any,
    predictor: Any,
    *,
    policies: Any,
    instance_id: str,
    task_id: str,
    facility_id: str,
    now: datetime,
    **task: Any,
) -> tuple[float, tuple[str, ...]] | None:
    """The task's priority and reasons, audited on its instance; None when the model is off
    or in shadow (the inbox orders by due time as before). ``policies`` is the step's
    policies port: the ai-models row is read through the container's one store (without it
    every task built a DynamoDB client to read the policy)."""
    from careflow.ml.governance import suggest

    if predictor is None:
        return None
    found = suggest(
        MODEL.id,
        features_of(now=now, **task),
        instance_id=instance_id,
        facility_id=facility_id,
        predictor=predictor,
        store=store,
        now=now,
        policies=policies,
        about=task_id,
    )
    if found is None or found.setting.mode != "on":
        return None
    # the inbox says what makes the task urgent, however urgent it is
    why = found.prediction.risk_reasons or found.prediction.reasons
    return round(MODEL.risk(found.prediction.scores), 4), why


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def examples(history: Sequence[HistoryRecord]) -> list[Example]:
    """Each decided task: its features as scored when it opened (the audit keeps them), or
    as its record tells them for a task opened before the model ran; urgent when its SLA
    passed. Open tasks have no outcome yet and are left out."""
    out: list[Example] = []
    for rec in history:
        scored = audited_inputs(rec, MODEL.id)
        for t in rec.get("tasks", ()):
            created, due = _dt(t.get("created_at")), _dt(t.get("due_at"))
            done = _dt(t.get("completed_at"))
            level = int(t.get("escalation_level", 0))
            if done is None and level == 0:
                continue
            urgent = level > 0 or (done is not None and due is not None and done > due)
            features = scored.get(t["task_id"])
            if features is None:
                if level > 0 or created is None or due is None:
                    continue  # its first due time is gone with the escalation
                features = features_of(
                    workflow_id=t["workflow_id"],
                    queue=t["queue"],
                    due_in_seconds=(due - created).total_seconds(),
                    deadline_at=_dt(t.get("deadline_at")),
                    value_usd=t.get("value_usd"),
                    awaits_decision=bool(t.get("allowed_decisions")),
                    now=created,
                )
            out.append((dict(features), URGENT if urgent else ROUTINE))
    return out


def baseline(features: Mapping[str, Any]) -> dict[str, float]:
    """Today's inbox: earliest due first (the shorter the SLA, the more urgent)."""
    urgency = 1.0 / (1.0 + float(features.get("sla_hours") or 0.0))
    return {URGENT: urgency, ROUTINE: 1.0 - urgency}


# (workflow, queue, SLA hours, deadline hours range or None, value range or None, decides)
_TASKS = (
    ("surgical-readiness", "care_coordinator", 4, (6, 240), (4000, 60000), True),
    ("prior-authorization", "utilization_review_nurse", 24, (24, 480), (2000, 40000), True),
    ("prior-authorization", "utilization_review_imaging", 24, (24, 480), (800, 6000), True),
    ("discharge-coordination", "case_manager", 1, (1, 30), None, True),
    ("invoice-exceptions", "ap_pricing", 48, (72, 1200), (100, 90000), True),
    ("invoice-exceptions", "ap_receiving", 48, (72, 1200), (100, 40000), True),
    ("procurement-approval", "department_manager", 24, None, (500, 250000), True),
    ("revenue-cycle", "charge_capture", 24, (48, 720), (1000, 80000), True),
    ("staffing-gaps", "staffing_coordinator", 1, (2, 24), None, True),
    ("supply-replenishment", "supply_chain_buyer", 8, (12, 168), (200, 30000), True),
)
# Assumed effects behind the generated history (see docs/models/task_priority.md): a near
# deadline and money at stake make a late answer likelier to hurt; two queues run short.
_QUEUE_EFFECT = {"ap_pricing": 0.7, "utilization_review_imaging": 0.6, "case_manager": -0.2}


def generate(rng: random.Random, count: int) -> list[HistoryRecord]:
    """Tasks of every workflow, urgent with a chance that rises as the subject's deadline
    nears (sharply under a day), with log value and on weekends, in the two short-staffed
    queues, and falls with a longer SLA; decided ones only. Times from 2026-01-01."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[HistoryRecord] = []
    for n in range(count):
        wf, queue, sla, deadline, value, decides = _TASKS[rng.randrange(len(_TASKS))]
        created = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 330))
        hours = rng.uniform(*deadline) if deadline and rng.random() < 0.9 else None
        usd = (
            round(math.exp(rng.uniform(math.log(value[0]), math.log(value[1]))), 2)
            if value
            else None
        )
        logit = -1.4 + _QUEUE_EFFECT.get(queue, 0.0) - 0.005 * sla
        if hours is not None:
            logit += 1.6 * (hours < 24) + 1.0 * (hours < 6) - 0.002 * hours
        logit += 0.45 * (math.log10(1 + usd) - 3) if usd else 0.0
        logit += 0.5 * (created.weekday() >= 5)
        urgent = rng.random() < 1 / (1 + math.exp(-logit))
        due = created + timedelta(hours=sla)
        done = (
            due + timedelta(hours=rng.uniform(0.1, 6))
            if urgent
            else created + timedelta(hours=rng.uniform(0.05, sla * 0.95))
        )
        iid = f"gen-{n:05d}"
        task = {
            "task_id": f"task-{iid}",
            "instance_id": iid,
            "workflow_id": wf,
            "facility_id": "fac-north" if rng.random() < 0.6 else "fac-south",
            "queue": queue,
            "created_at": created.isoformat(),
            "due_at": due.isoformat(),
            "completed_at": done.isoformat(),
            "escalation_level": 1 if urgent and rng.random() < 0.7 else 0,
            "deadline_at": (created + timedelta(hours=hours)).isoformat() if hours else None,
            "value_usd": usd,
            "allowed_decisions": ["DECIDE"] if decides else [],
        }
        if task["escalation_level"]:
            task["due_at"] = (due + timedelta(hours=sla)).isoformat()  # moved on escalation
            scored = features_of(
                workflow_id=wf,
                queue=queue,
                due_in_seconds=sla * 3600,
                deadline_at=created + timedelta(hours=hours) if hours else None,
                value_usd=usd,
                awaits_decision=decides,
                now=created,
            )
            audit = [predicted_entry("task_priority", str(task["task_id"]), scored)]
        else:
            audit = []
        out.append(
            {
                "workflow": wf,
                "facility_id": task["facility_id"],
                "instance": {
                    "instance_id": iid,
                    "workflow_id": wf,
                    "facility_id": task["facility_id"],
                },
                "milestones": [],
                "tasks": [task],
                "audit": audit,
            }
        )
    return out


MODEL = ModelDef(
    id="task_priority",
    title="Task priority by service risk",
    workflow="*",
    owner="Operations (the ops page's owner)",
    features=FEATURES,
    classes=(URGENT, ROUTINE),
    examples=examples,
    baseline=baseline,
    baseline_name="earliest due first (today's inbox order)",
    metric="auc",
    margin=0.05,
    generate=generate,
    history_size=4000,
    ok_class=ROUTINE,
)
