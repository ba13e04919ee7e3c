"""The /v1 handler on the DynamoDB state store (a table of its own on the suite's local
cloud): search by workflow and status reads GSI3, the inbox GSI2, an instance's tasks
GSI1, with the table's own keys.

Not ``mock_aws``: moto's backends are process-wide, and ``mock_aws`` resets them on exit,
which wiped the session cloud's bus and table for every test after it on the same worker."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from careflow import clock, wiring
from careflow.adapters.dynamodb_state import DynamoStateStore
from careflow.domain.records import InstanceStatus
from careflow.localcloud.cloud import state_table_definition
from careflow.settings import settings
from tests.fakes import FakeEngine, FakePublisher
from tests.unit.test_api import ARNS, FILES, NOW, call, claims, instance, task_for


@pytest.fixture
def table(cloud, monkeypatch):
    name = f"careflow-api-test-{uuid.uuid4().hex[:8]}"
    client = cloud.client("dynamodb")
    client.create_table(**state_table_definition(name))
    store = DynamoStateStore(client, name)
    monkeypatch.setattr(wiring, "store", lambda: store)
    monkeypatch.setattr(wiring, "engine", FakeEngine)
    monkeypatch.setattr(wiring, "publisher", FakePublisher)
    monkeypatch.setattr(wiring, "policies", lambda: FILES)
    monkeypatch.delenv("CAREFLOW_ACTORS_FILE", raising=False)
    monkeypatch.setenv("TABLE_NAME", name)
    monkeypatch.setenv("EVENT_BUS_NAME", "careflow-test")
    monkeypatch.setenv("STATE_MACHINE_ARNS", json.dumps(ARNS))
    settings.cache_clear()
    monkeypatch.setattr(clock, "now", lambda: NOW)
    try:
        yield store
    finally:
        client.delete_table(TableName=name)
        settings.cache_clear()


def test_search_inbox_and_a_claim_on_the_tables_indexes(table):
    for n in range(1, 6):
        table.put_instance(instance(n))
    table.put_instance(instance(6, status=InstanceStatus.AT_RISK))
    table.put_instance(instance(7, facility="fac-south"))

    query = {"workflow": "surgical-case-readiness", "limit": "4"}
    status, first, _ = call("GET", "/v1/instances", who=claims(), query=query)
    assert status == 200 and first["next"]
    _, second, _ = call(
        "GET", "/v1/instances", who=claims(), query={**query, "next": first["next"]}
    )
    ids = [i["instance_id"] for i in first["items"] + second["items"]]
    assert ids == [f"scr-{n:04d}" for n in range(6, 0, -1)] and second["next"] is None

    _, at_risk, _ = call("GET", "/v1/instances", who=claims(), query={**query, "status": "AT_RISK"})
    assert [i["instance_id"] for i in at_risk["items"]] == ["scr-0006"]

    task = task_for(table, instance(1))
    soon = task_for(table, instance(2))
    table.update_task(soon.model_copy(update={"due_at": NOW + timedelta(minutes=1)}))
    _, inbox, _ = call("GET", "/v1/tasks", who=claims(), query={"queue": "care_coordinator"})
    assert [t["task_id"] for t in inbox["items"]] == [soon.task_id, task.task_id]

    status, claimed, _ = call("POST", f"/v1/tasks/{task.task_id}/claim", who=claims())
    assert status == 200 and claimed["claimed_by"] == "user:coordinator-mdiaz"
    _, shown, _ = call("GET", "/v1/instances/scr-0001", who=claims())
    assert [t["status"] for t in shown["open_tasks"]] == ["CLAIMED"]


def test_kpis_read_gsi3_from_the_windows_start_on(table):
    from careflow.kpis import workflow_kpis

    for n in range(1, 4):  # updated NOW+1, +2, +3 minutes
        table.put_instance(instance(n))
    since = NOW + timedelta(minutes=2)
    found = table.instances_updated_since("surgical-case-readiness", "RUNNING", since)
    assert sorted(i.instance_id for i in found) == ["scr-0002", "scr-0003"]
    later = NOW + timedelta(minutes=10)
    kpis = workflow_kpis(table, "surgical-case-readiness", ["fac-north"], since=NOW, now=later)
    assert (kpis["started"], kpis["running"]) == (3, 3)


def test_an_instance_and_its_milestones_are_read_in_one_query_without_its_audit(table):
    from careflow.domain.records import AuditEntry, Milestone

    inst = instance(1)
    ms = [
        Milestone(
            instance_id=inst.instance_id, name=f"m{i}", status="DONE", at=NOW + timedelta(minutes=i)
        )
        for i in range(3)
    ]
    audit = AuditEntry(
        instance_id=inst.instance_id, at=NOW, actor="system:intake", action="started"
    )
    table.put_instance(inst, with_entries=[*ms, audit])
    table.put_instance(
        instance(2), with_entries=[ms[0].model_copy(update={"instance_id": "scr-0002"})]
    )
    found, milestones = table.instance_with_milestones(inst.instance_id)
    assert found == table.get_instance(inst.instance_id)
    assert sorted(milestones, key=lambda m: m.at) == sorted(
        table.milestones(inst.instance_id), key=lambda m: m.at
    )
    assert [m.name for m in sorted(milestones, key=lambda m: m.at)] == ["m0", "m1", "m2"]
    assert table.instance_with_milestones("scr-9999") == (None, [])
    status, body, _ = call("GET", f"/v1/instances/{inst.instance_id}", who=claims())
    assert status == 200 and [m["name"] for m in body["milestones"]] == ["m0", "m1", "m2"]
