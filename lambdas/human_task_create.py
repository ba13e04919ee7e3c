"""CreateHumanTask: opens (or re-opens after escalation) a task that an execution waits on.

Invoked with ``.waitForTaskToken``: the execution resumes when a person completes it.
"""

from typing import Any

from careflow import clock, wiring
from careflow.domain.tasks import open_task
from careflow.observability import step


@step("create_human_task")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    spec = event["task"]
    task = open_task(
        wiring.store(),
        wiring.publisher(),
        instance_id=event["instance_id"],
        workflow_id=event["workflow_id"],
        facility_id=spec["facility_id"],
        purpose=spec["purpose"],
        title=spec["title"],
        reasons=spec.get("reasons", ()),
        subject_ref=spec["subject_ref"],
        escalation_chain=spec.get("escalation_chain", ()),
        due_in_seconds=int(event["due_in_seconds"]),
        token=event["token"],
        allowed_decisions=spec.get("allowed_decisions", ()),
        now=clock.now(),
    )
    return {"task_id": task.task_id, "queue": task.queue}
