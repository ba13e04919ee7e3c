"""Policy versions on the state table (the single-table design of
:mod:`careflow.adapters.dynamodb_state`).

=====================  =========================================  ========================
item                   PK                                         SK
=====================  =========================================  ========================
a version (immutable)  POLICY#<name>#ENTERPRISE                   V#<zero-padded version>
                       POLICY#<name>#FAC#<facility_id>
the current version    same PK                                    CURRENT
facilities with an     POLICY#<name>                              FACILITIES
overlay
=====================  =========================================  ========================

A version item is written with ``attribute_not_exists(PK)``, so a published version never
changes. ``CURRENT`` holds a copy of the newest version's document (one read at instance
start) and moves only forward (``sort_key < :new``). The two writes are not one
transaction: if the pointer update loses a race to a newer version, the version item
stays, is loadable, and is not current, which is the outcome the race deserves.

The client is injected (boto3 or the local cloud's); only this module knows botocore.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from careflow.policies.errors import StaleVersion
from careflow.policies.model import Document, document_hash, parse_document
from careflow.policies.store import PublishResult, check_publish
from careflow.policies.versions import sort_key


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def partition(name: str, facility_id: str | None) -> str:
    return (
        f"POLICY#{name}#ENTERPRISE" if facility_id is None else f"POLICY#{name}#FAC#{facility_id}"
    )


def version_sk(version: str) -> str:
    return f"V#{sort_key(version)}"


def _conditional_failed(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class DynamoPolicyStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._db = client
        self._table = table_name

    @classmethod
    def from_settings(cls) -> DynamoPolicyStore:
        """On the table the environment names, with a client of its own (the composition
        root, ``careflow.wiring.policies``, passes its shared client instead)."""
        import boto3

        from careflow.settings import settings

        s = settings()
        return cls(
            boto3.client("dynamodb", region_name=s.region, endpoint_url=s.endpoint_url),
            s.table_name,
        )

    @property
    def table_name(self) -> str:
        return self._table

    def _doc(self, item: dict[str, Any] | None, pk: str) -> Document | None:
        if not item:
            return None
        return parse_document(json.loads(item["doc"]["S"]), f"{self._table} {pk}")

    def _get_item(self, pk: str, sk: str) -> dict[str, Any] | None:
        resp = self._db.get_item(
            TableName=self._table, Key={"PK": _s(pk), "SK": _s(sk)}, ConsistentRead=True
        )
        item: dict[str, Any] | None = resp.get("Item")
        return item

    def current(self, name: str, facility_id: str | None) -> Document | None:
        pk = partition(name, facility_id)
        return self._doc(self._get_item(pk, "CURRENT"), pk)

    def get(self, name: str, facility_id: str | None, version: str) -> Document | None:
        pk = partition(name, facility_id)
        return self._doc(self._get_item(pk, version_sk(version)), pk)

    def history(self, name: str, facility_id: str | None) -> list[Document]:
        pk = partition(name, facility_id)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :p AND begins_with(SK, :v)",
            "ExpressionAttributeValues": {":p": _s(pk), ":v": _s("V#")},
            "ConsistentRead": True,
        }
        out: list[Document] = []
        while True:
            resp = self._db.query(**kwargs)
            out.extend(d for i in resp.get("Items", []) if (d := self._doc(i, pk)) is not None)
            if "LastEvaluatedKey" not in resp:
                return out  # SK order is version order
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def overlay_facilities(self, name: str) -> list[str]:
        item = self._get_item(f"POLICY#{name}", "FACILITIES")
        return sorted(item["facilities"]["SS"]) if item else []

    def publish(self, document: Document) -> PublishResult:
        name, facility_id, version = document.name, document.facility_id, document.version
        pk = partition(name, facility_id)
        outcome = check_publish(
            document, self.get(name, facility_id, version), self.current(name, facility_id)
        )
        if outcome is not None:
            return outcome
        doc = _s(document.model_dump_json())
        common = {"version": _s(version), "sort": _s(sort_key(version)), "doc": doc}
        common["hash"] = _s(document_hash(document))
        try:
            self._db.put_item(
                TableName=self._table,
                Item={"PK": _s(pk), "SK": _s(version_sk(version)), **common},
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            # Published by someone else between our read and our write: same rules again.
            again = check_publish(document, self.get(name, facility_id, version), None)
            if again is not None:
                return again
            raise  # pragma: no cover - the item exists, so check_publish returned or raised
        try:
            self._db.put_item(
                TableName=self._table,
                Item={"PK": _s(pk), "SK": _s("CURRENT"), **common},
                ConditionExpression="attribute_not_exists(PK) OR #sort < :sort",
                ExpressionAttributeNames={"#sort": "sort"},
                ExpressionAttributeValues={":sort": common["sort"]},
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                raise StaleVersion(
                    f"{name} version {version} was stored, but a newer version became "
                    "current meanwhile"
                ) from None
            raise
        if facility_id is not None:
            self._db.update_item(
                TableName=self._table,
                Key={"PK": _s(f"POLICY#{name}"), "SK": _s("FACILITIES")},
                UpdateExpression="ADD facilities :f",
                ExpressionAttributeValues={":f": {"SS": [facility_id]}},
            )
        return "published"
