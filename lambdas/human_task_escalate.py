"""EscalateHumanTask: the task's SLA ran out; move it up its escalation chain."""

from typing import Any

from careflow import clock, wiring
from careflow.domain.tasks import escalate_task, task_id_for
from careflow.observability import metrics, step


@step("escalate_human_task")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task_id = task_id_for(event["instance_id"], event["purpose"])
    task = escalate_task(wiring.store(), wiring.publisher(), task_id=task_id, now=clock.now())
    metrics.add_metric(name="HumanTasksEscalated", unit="Count", value=1)
    return {
        "task_id": task.task_id,
        "queue": task.queue,
        "level": task.escalation_level,
        "exhausted": task.escalation_level >= len(task.escalation_chain),
    }
