"""The DynamoDB store appends milestones and audit entries one conditional PutItem each.

Never BatchWriteItem: IAM cannot tell a batch's puts from its deletes, and no function is
granted it on an instance's partition, where the append-only audit entries live
(stacks/permissions.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from careflow.adapters.dynamodb_state import DynamoStateStore
from careflow.domain.records import AuditEntry, Instance, InstanceStatus, Milestone


class RecordingClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("put_item", kwargs))
        return {}

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> dict[str, Any]:
            self.calls.append((name, kwargs))
            return {}

        return call


def _entries() -> list[Milestone | AuditEntry]:
    at = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    return [
        Milestone(instance_id="i-1", name="registered", at=at),
        AuditEntry(instance_id="i-1", at=at, actor="system:test", action="registered"),
    ]


def test_record_appends_each_entry_with_a_conditional_put_and_never_batches() -> None:
    client = RecordingClient()
    DynamoStateStore(client, "t").record(*_entries())
    assert [name for name, _ in client.calls] == ["put_item", "put_item"]
    for _, kwargs in client.calls:
        assert kwargs["ConditionExpression"] == "attribute_not_exists(PK)"
        assert kwargs["Item"]["PK"] == {"S": "INST#i-1"}
    sort_keys = [kwargs["Item"]["SK"]["S"] for _, kwargs in client.calls]
    assert sort_keys[0].startswith("MS#") and sort_keys[1].startswith("AUDIT#")


def test_single_milestones_and_audit_entries_are_appended_the_same_way() -> None:
    client = RecordingClient()
    store = DynamoStateStore(client, "t")
    milestone, audit = _entries()
    assert isinstance(milestone, Milestone) and isinstance(audit, AuditEntry)
    store.record_milestone(milestone)
    store.record_audit(audit)
    assert [name for name, _ in client.calls] == ["put_item", "put_item"]
    assert all(
        kwargs["ConditionExpression"] == "attribute_not_exists(PK)" for _, kwargs in client.calls
    )


def test_a_census_entry_is_written_only_by_a_newer_event(cloud) -> None:
    """Keyed by encounter, conditional on ``as_of``: a repeated or older ADT event changes
    nothing (moto evaluates the condition as DynamoDB does). A table of its own on the
    suite's cloud: ``mock_aws`` would reset moto's process-wide backends under it."""
    import uuid
    from datetime import timedelta

    from careflow.canonical.workforce import CensusEntry
    from careflow.localcloud.cloud import state_table_definition

    at = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

    def entry(hours: int, present: bool = True) -> CensusEntry:
        return CensusEntry(
            facility_id="fac-north",
            encounter_id="V1",
            unit="4W",
            present=present,
            as_of=at + timedelta(hours=hours),
            event="Encounter.Admitted",
        )

    name = f"census-test-{uuid.uuid4().hex[:8]}"
    db = cloud.client("dynamodb")
    db.create_table(**state_table_definition(name))
    try:
        store = DynamoStateStore(db, name)
        assert store.put_census_entry(entry(0))
        assert not store.put_census_entry(entry(0))  # the same event again
        assert store.put_census_entry(entry(2, present=False))  # discharged
        assert not store.put_census_entry(entry(1))  # an older transfer, late
        assert store.census_entry("fac-north", "V1") == entry(2, present=False)
        assert store.census("fac-north") == [entry(2, present=False)]
    finally:
        db.delete_table(TableName=name)


def test_an_instances_service_line_is_kept_in_its_document_and_read_back() -> None:
    at = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    instance = Instance(
        instance_id="i-1",
        workflow_id="surgical-case-readiness",
        subject_type="case",
        subject_id="appt-1",
        facility_id="fac-north",
        status=InstanceStatus.RUNNING,
        started_at=at,
        updated_at=at,
        correlation_id="c-1",
        execution_name="i-1",
        service_line="orthopedics",
    )
    client = RecordingClient()
    DynamoStateStore(client, "t").put_instance(instance)
    [(_, put)] = client.calls
    item = put["Item"]

    class Reading(RecordingClient):
        def get_item(self, **kwargs: Any) -> dict[str, Any]:
            return {"Item": item}

    assert DynamoStateStore(Reading(), "t").get_instance("i-1") == instance
    # a document written before the field was kept reads as None
    older = instance.model_dump(mode="json", exclude={"service_line"})
    assert Instance.model_validate(older).service_line is None
