"""Subject records on the DynamoDB state store (a table of its own on the suite's local
cloud): the cancellation's time and the reopened flag round-trip in the item's document, a
record stored before they were kept still reads, and the write that reopens a subject is
conditional on the version read (two racing starts: one wins).

Not ``mock_aws``: see tests/integration/test_api_on_dynamodb.py."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from careflow.adapters.dynamodb_state import DynamoStateStore
from careflow.domain import intake
from careflow.domain.records import SubjectRecord
from careflow.localcloud.cloud import state_table_definition
from careflow.ports import ConcurrentUpdate
from tests.fakes import FakeEngine

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
WF = "discharge-coordination"
ARN = "arn:aws:states:us-east-1:1:stateMachine:DischargeCoordination"


@pytest.fixture
def table(cloud):
    name = f"careflow-subject-test-{uuid.uuid4().hex[:8]}"
    client = cloud.client("dynamodb")
    client.create_table(**state_table_definition(name))
    try:
        yield client, name, DynamoStateStore(client, name)
    finally:
        client.delete_table(TableName=name)


def cancelled(**more) -> SubjectRecord:
    return SubjectRecord(
        workflow_id=WF,
        facility_id="fac-north",
        subject_id="V7001",
        instance_id="dc-first",
        status="CANCELLED",
        event_id="e-a13",
        at=NOW,
        **more,
    )


def test_the_cancellation_time_and_the_reopened_flag_round_trip(table):
    _, _, store = table
    at = NOW - timedelta(hours=1)
    assert store.claim_subject(cancelled(occurred_at=at)).occurred_at == at
    stored = store.get_subject(WF, "fac-north", "V7001")
    assert stored is not None and stored.occurred_at == at and not stored.reopened
    reopened = store.update_subject(
        stored.model_copy(update={"status": "STARTED", "instance_id": "dc-2", "reopened": True})
    )
    assert store.get_subject(WF, "fac-north", "V7001") == reopened
    assert reopened.reopened and reopened.version == 1


def test_a_record_stored_before_the_fields_were_kept_still_reads(table):
    client, name, store = table
    doc = cancelled().model_dump(mode="json")
    del doc["occurred_at"], doc["reopened"]
    client.put_item(
        TableName=name,
        Item={
            "PK": {"S": f"SUBJECT#{WF}#fac-north#V7001"},
            "SK": {"S": "META"},
            "version": {"S": "0"},
            "doc": {"S": json.dumps(doc)},
        },
    )
    old = store.get_subject(WF, "fac-north", "V7001")
    assert old is not None and old.occurred_at is None and old.reopened is False


def test_of_two_reopening_writes_from_the_same_read_one_wins(table):
    _, _, store = table
    store.claim_subject(cancelled(occurred_at=NOW - timedelta(hours=1)))
    read = store.get_subject(WF, "fac-north", "V7001")
    assert read is not None
    store.update_subject(read.model_copy(update={"status": "STARTED", "instance_id": "dc-a"}))
    with pytest.raises(ConcurrentUpdate):
        store.update_subject(read.model_copy(update={"status": "STARTED", "instance_id": "dc-b"}))
    stored = store.get_subject(WF, "fac-north", "V7001")
    assert stored is not None and stored.instance_id == "dc-a"


def test_intake_reopens_a_cancelled_subject_on_the_table(table):
    _, _, store = table
    store.claim_subject(cancelled(occurred_at=NOW - timedelta(hours=1)))
    engine = FakeEngine()
    request = intake.StartRequest(
        workflow_id=WF,
        state_machine_arn=ARN,
        instance_id="dc-second",
        idempotency_key="a16-2",
        input={},
        event_id="e-a16-2",
        facility_id="fac-north",
        subject_id="V7001",
        occurred_at=NOW,
        reopens=True,
    )
    assert intake.start(request, engine=engine, store=store, now=NOW)["status"] == "started"
    assert intake.start(request, engine=engine, store=store, now=NOW)["status"] == "duplicate"
    stored = store.get_subject(WF, "fac-north", "V7001")
    assert stored is not None
    assert (stored.status, stored.instance_id, stored.reopened) == ("STARTED", "dc-second", True)
    (audit,) = store.audit_trail("dc-second")
    assert audit.action == "reopened" and audit.detail["previous_instance_id"] == "dc-first"
