"""Policy versions on DynamoDB (moto, through the test process's local cloud).

Each test gets its own table beside the cloud's, so publishing here never changes what
the workflows running on the cloud resolve.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from careflow.localcloud.cloud import TABLE_NAME
from careflow.policies import (
    StaleVersion,
    VersionConflict,
    load,
    parse_document,
    publish,
    resolve,
    seed,
)
from careflow.policies.store import FilePolicyStore
from careflow.policies.store_dynamodb import DynamoPolicyStore

FILES = FilePolicyStore()


def create_table(client: Any) -> str:
    name = f"policies-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
    )
    return name


@pytest.fixture
def ddb(cloud):
    return cloud.client("dynamodb")


@pytest.fixture
def store(ddb):
    table = create_table(ddb)
    yield DynamoPolicyStore(ddb, table)
    ddb.delete_table(TableName=table)


def overlay(version: str, seconds: int):
    doc = FILES.current("surgical-readiness", "fac-south")
    assert doc is not None
    data = doc.model_dump(mode="json")
    data["version"] = version
    data["values"]["coordinator_task_seconds"]["value"] = seconds
    return parse_document(data, "test")


def test_items_follow_the_single_table_key_conventions(store, ddb):
    seed(store, FILES)
    keys = {(i["PK"]["S"], i["SK"]["S"]) for i in ddb.scan(TableName=store.table_name)["Items"]}
    assert {
        ("POLICY#surgical-readiness#ENTERPRISE", "V#002026.000012.000001"),
        ("POLICY#surgical-readiness#ENTERPRISE", "CURRENT"),
        ("POLICY#surgical-readiness#FAC#fac-south", "V#000003"),
        ("POLICY#surgical-readiness#FAC#fac-south", "CURRENT"),
        ("POLICY#surgical-readiness", "FACILITIES"),
    } <= keys
    assert store.overlay_facilities("surgical-readiness") == ["fac-south"]


def test_publishing_a_new_version_keeps_every_pinned_version_loadable(store):
    seed(store, FILES)
    started = resolve("surgical-readiness", "fac-south", store=store)
    assert started == resolve("surgical-readiness", "fac-south", store=FILES)

    assert publish(store, overlay("4", 3600)) == "published"
    assert publish(store, overlay("5", 1800)) == "published"

    assert load("surgical-readiness", "fac-south", started.version, store=store) == started
    now = resolve("surgical-readiness", "fac-south", store=store)
    assert now.version == "surgical-readiness@2026.12.1+fac-south@5"
    assert [d.version for d in store.history("surgical-readiness", "fac-south")] == ["3", "4", "5"]


def test_a_version_is_immutable_and_current_only_moves_forward(store):
    seed(store, FILES)
    assert store.publish(overlay("4", 3600)) == "published"
    assert store.publish(overlay("4", 3600)) == "unchanged"
    with pytest.raises(VersionConflict):
        store.publish(overlay("4", 60))
    with pytest.raises(StaleVersion):
        store.publish(overlay("3.5", 60))
    assert (
        store.get("surgical-readiness", "fac-south", "4")
        .values[  # type: ignore[union-attr]
            "coordinator_task_seconds"
        ]
        .value
        == 3600
    )


def test_the_version_item_itself_refuses_an_overwrite(store, ddb):
    """Even a writer that skips the store's checks cannot change a published version."""
    from botocore.exceptions import ClientError

    seed(store, FILES)
    item = ddb.get_item(
        TableName=store.table_name,
        Key={"PK": {"S": "POLICY#surgical-readiness#FAC#fac-south"}, "SK": {"S": "V#000003"}},
    )["Item"]
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        ddb.put_item(
            TableName=store.table_name,
            Item={**item, "doc": {"S": "{}"}},
            ConditionExpression="attribute_not_exists(PK)",
        )


def test_the_local_cloud_seeds_its_table_with_the_packaged_policies(ddb):
    on_cloud = DynamoPolicyStore(ddb, TABLE_NAME)
    for name in FILES.names():
        assert on_cloud.get(name, None, FILES.current(name, None).version) is not None  # type: ignore[union-attr]
    assert on_cloud.get("surgical-readiness", "fac-south", "3") is not None


def test_careflow_policy_publish_writes_to_a_running_cloud_and_show_reads_it(
    cloud, store, tmp_path
):
    import json
    import subprocess
    import sys

    from tests.unit.test_policies_cli import ENV, ROOT

    seed(store, FILES)
    newer = tmp_path / "surgical-readiness.json"
    newer.write_text(json.dumps(overlay("4", 5400).model_dump(mode="json")), encoding="utf-8")

    def careflow(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "careflow.cli", "policy", *args],
            check=False,
            cwd=ROOT,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
        return proc

    target = ["--port", str(cloud.port), "--table", store.table_name]
    args = ["publish", "surgical-readiness", "--facility", "fac-south", "--file", str(newer)]
    first = careflow(*args, *target)
    assert first.returncode == 0, first.stderr
    assert "published surgical-readiness fac-south overlay 4" in first.stdout
    assert "start with surgical-readiness@2026.12.1+fac-south@4" in first.stdout
    assert careflow(*args, *target).stdout.startswith("unchanged:")

    newer.write_text(json.dumps(overlay("4", 60).model_dump(mode="json")), encoding="utf-8")
    refused = careflow(*args, *target)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: surgical-readiness fac-south overlay version 4 is already published with "
        "other content; versions are immutable: publish a new version"
    ]
    assert store.current("surgical-readiness", "fac-south").version == "4"  # type: ignore[union-attr]
