"""The state store on one DynamoDB table.

Keys (access patterns first):

=================  ===================  =========================  ==========================
item               PK / SK              GSI1 (by subject)          GSI2 / GSI3
=================  ===================  =========================  ==========================
instance           INST#id / META       SUBJ#type#id / wf#start    GSI3 WFST#wf#status / upd
milestone          INST#id / MS#at#name
audit entry        INST#id / AUDIT#at#n
human task         TASK#id / META       ITASK#instance / created   GSI2 OPEN#queue#fac / due
payer wait         WAIT#key / TOKEN
early answer       WAIT#key / ANSWER
parked event       PARKED#id / META                                GSI3 PARKED / parked_at
subject            SUBJECT#wf#fac#id / META
census entry       CENSUS#fac / ENC#encounter  (``as_of``: an older event never overwrites)
idempotency        idempotency#fn / h   (Powertools)
=================  ===================  =========================  ==========================

Each item keeps its record as a JSON document in ``doc``; key attributes are
derived from it, so records and indexes cannot drift apart.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel

from careflow.canonical.workforce import CensusEntry
from careflow.domain.records import (
    AuditEntry,
    HumanTask,
    Instance,
    Milestone,
    ParkedEvent,
    SubjectRecord,
    TaskStatus,
)
from careflow.ports import AlreadyRedriven, ConcurrentUpdate

M = TypeVar("M", bound=BaseModel)


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _iso(at: datetime) -> str:
    return at.isoformat()


class DynamoStateStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._db = client
        self._table = table_name

    # -- plumbing ---------------------------------------------------------------------------
    def _put(
        self,
        keys: Mapping[str, str],
        record: BaseModel,
        condition: str | None = None,
        values: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        item = {k: _s(v) for k, v in keys.items()}
        item["doc"] = _s(record.model_dump_json())
        kwargs: dict[str, Any] = {"TableName": self._table, "Item": item}
        if condition:
            kwargs["ConditionExpression"] = condition
        if values:
            kwargs["ExpressionAttributeValues"] = values
        if names:
            kwargs["ExpressionAttributeNames"] = dict(names)
        try:
            self._db.put_item(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConcurrentUpdate(f"{keys['PK']} changed concurrently") from None
            raise

    def _get(self, pk: str, sk: str, model: type[M]) -> M | None:
        resp = self._db.get_item(
            TableName=self._table, Key={"PK": _s(pk), "SK": _s(sk)}, ConsistentRead=True
        )
        item = resp.get("Item")
        return model.model_validate_json(item["doc"]["S"]) if item else None

    def _query(
        self, model: type[M], key_cond: str, values: Mapping[str, Any], index: str | None = None
    ) -> list[M]:
        return [
            model.model_validate_json(i["doc"]["S"])
            for i in self._query_items(key_cond, values, index)
        ]

    def _query_items(
        self, key_cond: str, values: Mapping[str, Any], index: str | None = None
    ) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": key_cond,
            "ExpressionAttributeValues": dict(values),
        }
        if index:
            kwargs["IndexName"] = index
        else:
            kwargs["ConsistentRead"] = True
        out: list[dict[str, Any]] = []
        while True:
            resp = self._db.query(**kwargs)
            out.extend(resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    # -- instances --------------------------------------------------------------------------
    @staticmethod
    def _instance_keys(i: Instance) -> dict[str, str]:
        return {
            "PK": f"INST#{i.instance_id}",
            "SK": "META",
            "GSI1PK": f"SUBJ#{i.subject_type}#{i.subject_id}",
            "GSI1SK": f"{i.workflow_id}#{_iso(i.started_at)}",
            "GSI3PK": f"WFST#{i.workflow_id}#{i.status.value}",
            "GSI3SK": f"{_iso(i.updated_at)}#{i.instance_id}",
            "version": str(i.version),
        }

    def put_instance(
        self, instance: Instance, *, with_entries: Sequence[Milestone | AuditEntry] = ()
    ) -> None:
        # Already registered: a retried step is not a new instance.
        with contextlib.suppress(ConcurrentUpdate):
            self._put(self._instance_keys(instance), instance, condition="attribute_not_exists(PK)")
        self.record(*with_entries)

    def get_instance(self, instance_id: str) -> Instance | None:
        return self._get(f"INST#{instance_id}", "META", Instance)

    def update_instance(
        self, instance: Instance, *, with_entries: Sequence[Milestone | AuditEntry] = ()
    ) -> Instance:
        new = instance.model_copy(update={"version": instance.version + 1})
        self._put(
            self._instance_keys(new),
            new,
            condition="version = :v",
            values={":v": _s(str(instance.version))},
        )
        # After the instance, one PutItem each. Not a transaction: moto's TransactWriteItems
        # copies every table on each call (and races doing it), and nothing reads these
        # entries to decide anything.
        self.record(*with_entries)
        return new

    # -- writing several records at once ----------------------------------------------------
    def _entry_keys(self, entry: Milestone | AuditEntry) -> dict[str, str]:
        if isinstance(entry, Milestone):
            return {
                "PK": f"INST#{entry.instance_id}",
                "SK": f"MS#{_iso(entry.at)}#{entry.name}#{uuid.uuid4().hex[:6]}",
            }
        return {
            "PK": f"INST#{entry.instance_id}",
            "SK": f"AUDIT#{_iso(entry.at)}#{uuid.uuid4().hex[:8]}",
        }

    def record(self, *entries: Milestone | AuditEntry) -> None:
        # One conditional PutItem each, never BatchWriteItem: a batch may also delete, and
        # IAM cannot tell its puts from its deletes, so no function is granted it on an
        # instance's partition, where the append-only audit entries live (stacks/permissions).
        for entry in entries:
            self._put(self._entry_keys(entry), entry, condition="attribute_not_exists(PK)")

    def instances_for_subject(self, subject_type: str, subject_id: str) -> list[Instance]:
        return self._query(
            Instance, "GSI1PK = :p", {":p": _s(f"SUBJ#{subject_type}#{subject_id}")}, index="GSI1"
        )

    def instances_by_status(self, workflow_id: str, status: str) -> list[Instance]:
        return self._query(
            Instance, "GSI3PK = :p", {":p": _s(f"WFST#{workflow_id}#{status}")}, index="GSI3"
        )

    def instances_updated_since(
        self, workflow_id: str, status: str, since: datetime
    ) -> list[Instance]:
        """GSI3's sort key starts with ``updated_at`` in ISO form (UTC): a range on the key."""
        return self._query(
            Instance,
            "GSI3PK = :p AND GSI3SK >= :s",
            {":p": _s(f"WFST#{workflow_id}#{status}"), ":s": _s(_iso(since.astimezone(UTC)))},
            index="GSI3",
        )

    # -- milestones and audit ---------------------------------------------------------------
    def record_milestone(self, milestone: Milestone) -> None:
        self.record(milestone)

    def milestones(self, instance_id: str) -> list[Milestone]:
        return self._query(
            Milestone,
            "PK = :p AND begins_with(SK, :s)",
            {":p": _s(f"INST#{instance_id}"), ":s": _s("MS#")},
        )

    def instance_with_milestones(self, instance_id: str) -> tuple[Instance | None, list[Milestone]]:
        # One consistent Query of the partition rather than a GetItem and a Query: the
        # instance (SK META) and its milestones (MS#...) sort together, after the audit
        # entries (AUDIT# < META < MS# < MS$).
        instance, milestones = None, []
        for item in self._query_items(
            "PK = :p AND SK BETWEEN :a AND :b",
            {":p": _s(f"INST#{instance_id}"), ":a": _s("META"), ":b": _s("MS$")},
        ):
            sk = item["SK"]["S"]
            if sk == "META":
                instance = Instance.model_validate_json(item["doc"]["S"])
            elif sk.startswith("MS#"):
                milestones.append(Milestone.model_validate_json(item["doc"]["S"]))
        return instance, milestones

    def record_audit(self, entry: AuditEntry) -> None:
        self.record(entry)

    def audit_trail(self, instance_id: str) -> list[AuditEntry]:
        return self._query(
            AuditEntry,
            "PK = :p AND begins_with(SK, :s)",
            {":p": _s(f"INST#{instance_id}"), ":s": _s("AUDIT#")},
        )

    # -- human tasks ------------------------------------------------------------------------
    @staticmethod
    def _task_keys(t: HumanTask) -> dict[str, str]:
        keys = {
            "PK": f"TASK#{t.task_id}",
            "SK": "META",
            "GSI1PK": f"ITASK#{t.instance_id}",
            "GSI1SK": _iso(t.created_at),
            "version": str(t.version),
        }
        if t.status in (TaskStatus.OPEN, TaskStatus.CLAIMED):
            keys["GSI2PK"] = f"OPEN#{t.queue}#{t.facility_id}"
            keys["GSI2SK"] = f"{_iso(t.due_at)}#{t.task_id}"
        return keys

    def put_task(self, task: HumanTask) -> None:
        self._put(self._task_keys(task), task)

    def get_task(self, task_id: str) -> HumanTask | None:
        return self._get(f"TASK#{task_id}", "META", HumanTask)

    def update_task(self, task: HumanTask) -> HumanTask:
        new = task.model_copy(update={"version": task.version + 1})
        self._put(
            self._task_keys(new),
            new,
            condition="version = :v",
            values={":v": _s(str(task.version))},
        )
        return new

    def open_tasks(self, queue: str, facility_id: str) -> list[HumanTask]:
        return self._query(
            HumanTask, "GSI2PK = :p", {":p": _s(f"OPEN#{queue}#{facility_id}")}, index="GSI2"
        )

    def tasks_for_instance(self, instance_id: str) -> list[HumanTask]:
        return self._query(
            HumanTask, "GSI1PK = :p", {":p": _s(f"ITASK#{instance_id}")}, index="GSI1"
        )

    # -- waits on outside parties -----------------------------------------------------------
    def put_wait(self, key: str, token: str, instance_id: str, at: datetime) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                "PK": _s(f"WAIT#{key}"),
                "SK": _s("TOKEN"),
                "doc": _s(json.dumps({"token": token, "instance_id": instance_id, "at": _iso(at)})),
            },
        )

    def _take(self, key: str, sk: str) -> dict[str, Any] | None:
        resp = self._db.delete_item(
            TableName=self._table,
            Key={"PK": _s(f"WAIT#{key}"), "SK": _s(sk)},
            ReturnValues="ALL_OLD",
        )
        item = resp.get("Attributes")
        return json.loads(item["doc"]["S"]) if item else None

    def peek_wait(self, key: str) -> tuple[str, str] | None:
        resp = self._db.get_item(
            TableName=self._table,
            Key={"PK": _s(f"WAIT#{key}"), "SK": _s("TOKEN")},
            ConsistentRead=True,
        )
        item = resp.get("Item")
        if not item:
            return None
        doc = json.loads(item["doc"]["S"])
        return doc["token"], doc["instance_id"]

    def take_wait(self, key: str) -> tuple[str, str] | None:
        doc = self._take(key, "TOKEN")
        return (doc["token"], doc["instance_id"]) if doc else None

    def put_early_answer(self, key: str, answer: Mapping[str, Any], at: datetime) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                "PK": _s(f"WAIT#{key}"),
                "SK": _s("ANSWER"),
                "doc": _s(json.dumps({"answer": dict(answer), "at": _iso(at)})),
            },
        )

    def take_early_answer(self, key: str) -> dict[str, Any] | None:
        doc = self._take(key, "ANSWER")
        return dict(doc["answer"]) if doc else None

    # -- parked events ----------------------------------------------------------------------
    @staticmethod
    def _parked_keys(parked: ParkedEvent) -> dict[str, str]:
        return {
            "PK": f"PARKED#{parked.event_id}",
            "SK": "META",
            "GSI3PK": "PARKED",
            "GSI3SK": f"{_iso(parked.parked_at)}#{parked.event_id}",
            "status": parked.status,
        }

    def park_event(self, parked: ParkedEvent) -> None:
        before = self.get_parked(parked.event_id)
        if before is not None:
            parked = parked.model_copy(update={"times_parked": before.times_parked + 1})
        self._put(self._parked_keys(parked), parked)

    def parked_events(self) -> Sequence[ParkedEvent]:
        return self._query(ParkedEvent, "GSI3PK = :p", {":p": _s("PARKED")}, index="GSI3")

    def get_parked(self, event_id: str) -> ParkedEvent | None:
        return self._get(f"PARKED#{event_id}", "META", ParkedEvent)

    def mark_redriven(self, event_id: str, at: datetime) -> ParkedEvent:
        parked = self.get_parked(event_id)
        if parked is None or parked.status != "PARKED":
            raise AlreadyRedriven(event_id)
        new = parked.model_copy(update={"status": "REDRIVEN", "redriven_at": at})
        try:
            self._put(
                self._parked_keys(new),
                new,
                condition="#st = :p",
                values={":p": _s("PARKED")},
                names={"#st": "status"},
            )
        except ConcurrentUpdate:
            raise AlreadyRedriven(event_id) from None
        return new

    # -- one instance per subject -----------------------------------------------------------
    @staticmethod
    def _subject_keys(r: SubjectRecord) -> dict[str, str]:
        return {
            "PK": f"SUBJECT#{r.workflow_id}#{r.facility_id}#{r.subject_id}",
            "SK": "META",
            "version": str(r.version),
        }

    def claim_subject(self, record: SubjectRecord) -> SubjectRecord:
        try:
            self._put(self._subject_keys(record), record, condition="attribute_not_exists(PK)")
        except ConcurrentUpdate:
            existing = self.get_subject(record.workflow_id, record.facility_id, record.subject_id)
            assert existing is not None  # subject records are never deleted
            return existing
        return record

    def get_subject(
        self, workflow_id: str, facility_id: str, subject_id: str
    ) -> SubjectRecord | None:
        return self._get(f"SUBJECT#{workflow_id}#{facility_id}#{subject_id}", "META", SubjectRecord)

    def update_subject(self, record: SubjectRecord) -> SubjectRecord:
        new = record.model_copy(update={"version": record.version + 1})
        self._put(
            self._subject_keys(new),
            new,
            condition="version = :v",
            values={":v": _s(str(record.version))},
        )
        return new

    # -- census (one entry per facility and encounter) ----------------------------------------
    def census_entry(self, facility_id: str, encounter_id: str) -> CensusEntry | None:
        return self._get(f"CENSUS#{facility_id}", f"ENC#{encounter_id}", CensusEntry)

    def put_census_entry(self, entry: CensusEntry) -> bool:
        keys = {
            "PK": f"CENSUS#{entry.facility_id}",
            "SK": f"ENC#{entry.encounter_id}",
            "as_of": _iso(entry.as_of.astimezone(UTC)),
        }
        try:
            self._put(
                keys,
                entry,
                condition="attribute_not_exists(PK) OR as_of < :a",
                values={":a": _s(keys["as_of"])},
            )
        except ConcurrentUpdate:
            return False
        return True

    def census(self, facility_id: str) -> list[CensusEntry]:
        return self._query(CensusEntry, "PK = :p", {":p": _s(f"CENSUS#{facility_id}")})
