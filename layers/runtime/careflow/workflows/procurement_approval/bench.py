"""``make bench``'s case (careflow.kit.bench) and its driver: a North Valley requisition of
one orthopedic drape pack (NV-20031, $38.50), the cheapest that ends PO_CREATED. Every
requisition waits for an approver (the policy has no auto-approval band): within the
department manager's $5,000, one level, which the driver approves as the manager would.
Each execution is a requisition of its own; at $38.50 the cost center's budget holds
thousands of them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from careflow.kit.bench import poll, running, start_target

WORKFLOW = "procurement-approval"
FACILITY = "fac-north"
COST_CENTER = "cc-fac-north-ortho"
# who decides each approval level's task (careflow.actors; the policy's queue_roles): the
# driver keeps approving until the execution ends, whatever the levels
APPROVERS = {
    "department_manager": "user:dept-mgr-agarcia",
    "department_director": "user:director-rsingh",
    "cfo": "user:cfo-mthompson",
    "capital_committee": "user:capital-cmte-lchen",
}


def case(cloud: Any, key: str) -> dict[str, Any]:
    now = cloud.clock.now()
    return start_target(
        WORKFLOW,
        "careflow.erp",
        "Requisition.Submitted",
        facility_id=FACILITY,
        key=key,
        now=now,
        data={
            "requisition_id": f"req-b-{key}",
            "cost_center_id": COST_CENTER,
            "requested_by": "emp-20417",
            "needed_by": (now + timedelta(days=7)).isoformat(),
            "lines": [{"line_number": 1, "local_code": "NV-20031", "quantity": 1}],
        },
    )


def drive(cloud: Any, key: str, instance_id: str) -> None:
    """As the approvers would: each approval task, once open, claimed and approved by the
    person its queue names, until the requisition's execution ends."""
    from careflow import wiring
    from careflow.domain.tasks import claim_task, complete_task

    store = wiring.store()

    def next_step() -> Any:
        if not running(cloud, WORKFLOW, instance_id):
            return "ended"
        for task in store.tasks_for_instance(instance_id):
            if task.awaits_decision:
                return task
        return None

    while True:
        found = poll(next_step, "an approval task, or the requisition's end")
        if found == "ended":
            outcome = store.get_instance(instance_id).outcome
            if outcome != "PO_CREATED":
                raise RuntimeError(f"the requisition ended {outcome}, not PO_CREATED")
            return
        actor = APPROVERS[found.queue]
        governed: dict[str, Any] = {"now": cloud.clock.now(), "policies": wiring.policies()}
        claim_task(store, task_id=found.task_id, actor=actor, **governed)
        complete_task(
            store,
            wiring.engine(),
            task_id=found.task_id,
            actor=actor,
            decision="APPROVE",
            reason="bench: within budget",
            **governed,
        )
