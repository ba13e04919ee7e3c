"""``careflow up --seed-demo``'s work left waiting (careflow.localcloud.demo.seed_open_work):
every workflow's ``waiting`` case (careflow.kit.bench.load_waiting) stops at an open human
task in its queue and stays there, its execution running. No clock moves: the session's
cloud is shared with the other tests of the worker."""

from __future__ import annotations

import time

import pytest

from careflow import wiring
from careflow.domain.intake import instance_id_for
from careflow.kit import bench
from careflow.kit.registry import workflows
from careflow.localcloud.demo import seed_open_work

# the queue each workflow's waiting case opens its task in
QUEUES = {
    "invoice-exceptions": "ap_pricing",
    "prior-authorization": "utilization_review_imaging",
    "surgical-case-readiness": "care_coordinator",
    "revenue-cycle": "charge_capture",
    "staffing-gaps": "staffing_coordinator",
}


def _waiting_workflows() -> set[str]:
    return {
        wf.id
        for wf in workflows()
        if wf.bench is not None and bench.load_waiting(wf.bench) is not None
    }


def test_the_workflows_with_a_bench_waiting_case_are_the_expected_ones():
    assert _waiting_workflows() == set(QUEUES)


@pytest.fixture
def started(cloud):
    """seed_open_work's starts, one per workflow; stopped afterwards, so that no task's
    timer outlives the test (the virtual clock's timers are the worker's)."""
    began = time.monotonic()
    ids = seed_open_work(cloud, per_workflow=1)
    yield ids, time.monotonic() - began
    sfn = cloud.client("stepfunctions")
    for workflow_id in cloud.state_machine_arns:
        instance_id = instance_id_for(workflow_id, f"open-work-{workflow_id}-0")
        if instance_id in ids and bench.running(cloud, workflow_id, instance_id):
            sfn.stop_execution(executionArn=cloud.execution_arn(instance_id, workflow_id))


def test_each_bench_waiting_case_stops_at_an_open_task_in_its_queue(cloud, started):
    ids, seeding = started
    store = wiring.store()
    began = time.monotonic()
    for workflow_id, queue in QUEUES.items():
        instance_id = instance_id_for(workflow_id, f"open-work-{workflow_id}-0")
        assert instance_id in ids

        def open_task(instance_id=instance_id):
            return next(
                (t for t in store.tasks_for_instance(instance_id) if t.awaits_decision), None
            )

        task = cloud.wait_for(open_task, 30, f"an open task of {workflow_id}")
        assert task.queue == queue, (workflow_id, task.queue)
        assert bench.running(cloud, workflow_id, instance_id), workflow_id
    waited = time.monotonic() - began
    print(f"seeded in {seeding:.1f} s, every task open {waited:.1f} s later")
