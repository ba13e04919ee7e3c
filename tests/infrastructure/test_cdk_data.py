"""The state table, the keys and the queues: encrypted, recoverable, as the design says."""

from __future__ import annotations

from aws_cdk.assertions import Match

from stacks.constructs.state_table import GLOBAL_SECONDARY_INDEXES
from tests.infrastructure.infra_support import Synth, render


def _table(synth: Synth) -> dict:
    (table,) = synth.resources("data", "AWS::DynamoDB::Table").values()
    return table


def test_table_keys_billing_stream_and_ttl(dev: Synth) -> None:
    dev.template("data").has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
            "BillingMode": "PAY_PER_REQUEST",
            "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
            "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        },
    )


def test_table_is_encrypted_with_the_customer_managed_state_key(dev: Synth) -> None:
    sse = _table(dev)["Properties"]["SSESpecification"]
    assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS"
    key_id = render(sse["KMSMasterKeyId"]).strip("<>").split(".")[0]
    key = dev.templates["data"]["Resources"][key_id]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True


def test_table_has_the_three_access_pattern_indexes(dev: Synth) -> None:
    indexes = {gsi["IndexName"]: gsi for gsi in _table(dev)["Properties"]["GlobalSecondaryIndexes"]}
    assert indexes.keys() == GLOBAL_SECONDARY_INDEXES.keys() == {"GSI1", "GSI2", "GSI3"}
    for name, gsi in indexes.items():
        assert gsi["KeySchema"] == [
            {"AttributeName": f"{name}PK", "KeyType": "HASH"},
            {"AttributeName": f"{name}SK", "KeyType": "RANGE"},
        ]
        assert gsi["Projection"] == {"ProjectionType": "ALL"}


def test_prod_table_is_protected_and_backed_up_dev_is_disposable(dev: Synth, prod: Synth) -> None:
    prod_table, dev_table = _table(prod), _table(dev)
    assert prod_table["Properties"]["DeletionProtectionEnabled"] is True
    assert prod_table["DeletionPolicy"] == "Retain"
    assert dev_table["Properties"].get("DeletionProtectionEnabled", False) is False
    assert dev_table["DeletionPolicy"] == "Delete"
    assert len(prod.resources("data", "AWS::Backup::BackupSelection")) == 1
    assert dev.resources("data", "AWS::Backup::BackupSelection") == {}


def test_every_key_rotates(dev: Synth) -> None:
    keys = dev.all_resources("AWS::KMS::Key")
    assert len(keys) == 5  # state, messaging, logs, events, workflows
    assert all(k["Properties"]["EnableKeyRotation"] for k in keys.values())


def test_every_queue_is_kms_encrypted_and_tls_only(dev: Synth) -> None:
    queues = dev.all_resources("AWS::SQS::Queue")
    assert queues
    policies = [
        render(p["Properties"]) for p in dev.all_resources("AWS::SQS::QueuePolicy").values()
    ]
    for logical_id, queue in queues.items():
        assert "KmsMasterKeyId" in queue["Properties"], logical_id
        assert any(
            f"<{logical_id}>" in policy["Queues"]
            and any(
                s["Effect"] == "Deny"
                and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
                for s in policy["PolicyDocument"]["Statement"]
            )
            for policy in policies
        ), f"{logical_id} accepts plain HTTP"


def test_parked_queue_has_its_own_dead_letter_queue(dev: Synth) -> None:
    dev.template("data").has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": "careflow-dev-parked",
            "RedrivePolicy": {"deadLetterTargetArn": Match.any_value(), "maxReceiveCount": 5},
        },
    )
