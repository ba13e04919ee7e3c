"""PHI out of archives and logs: customer-managed keys on the state machines, the bus, its
archive and every log group; key policies that keep administration apart from use; log
and audit retention per environment."""

from __future__ import annotations

from typing import Any

from careflow.catalog import CATALOG, INTAKE, all_functions
from careflow.kit.registry import workflow as registry_workflow
from stacks.constructs.keys import CRYPTOGRAPHIC, KEY_ADMINISTRATION
from tests.infrastructure.infra_support import (
    Synth,
    as_list,
    logical_id_of,
    policy_statements,
    render,
)


def _key_id_by_alias(synth: Synth, alias: str) -> str:
    (found,) = [
        render(a["Properties"]["TargetKeyId"]).strip("<>").split(".")[0]
        for a in synth.resources("data", "AWS::KMS::Alias").values()
        if a["Properties"]["AliasName"] == f"alias/careflow-dev-{alias}"
    ]
    return str(found)


def _refers_to(value: Any, key_logical_id: str) -> bool:
    """``value`` names the key (a local ref, or an import of the data stack's key ARN)."""
    text = str(render(value))
    return f"<{key_logical_id}." in text or (
        text.startswith("<import:careflow-dev-data:") and key_logical_id in text
    )


def test_state_machines_encrypt_execution_data_with_the_workflows_key(dev: Synth) -> None:
    key = _key_id_by_alias(dev, "workflows")
    for wf in CATALOG:
        logical_id = logical_id_of(
            dev,
            "workflows",
            "AWS::StepFunctions::StateMachine",
            StateMachineName=f"careflow-dev-{wf.name}",
        )
        props = dev.templates["workflows"]["Resources"][logical_id]["Properties"]
        encryption = props["EncryptionConfiguration"]
        assert encryption["Type"] == "CUSTOMER_MANAGED_KMS_KEY"
        assert _refers_to(encryption["KmsKeyId"], key), encryption
        assert encryption["KmsDataKeyReusePeriodSeconds"] == 300


def test_bus_and_archive_are_encrypted_with_the_events_key(dev: Synth) -> None:
    key = _key_id_by_alias(dev, "events")
    (bus,) = dev.resources("events", "AWS::Events::EventBus").values()
    assert _refers_to(bus["Properties"]["KmsKeyIdentifier"], key)
    (archive,) = dev.resources("events", "AWS::Events::Archive").values()
    assert _refers_to(archive["Properties"]["KmsKeyIdentifier"], key)
    assert archive["Properties"]["RetentionDays"] == 365


def test_every_log_group_is_encrypted_with_the_logs_key(dev: Synth, prod: Synth) -> None:
    key = _key_id_by_alias(dev, "logs")
    groups = dev.all_resources("AWS::Logs::LogGroup")
    # ...and the partner API's: its function, the token claims trigger, the stage's access
    # log, the WAF log.
    assert len(groups) == len(all_functions()) + len(CATALOG) + 4
    for group in groups.values():
        assert _refers_to(group["Properties"]["KmsKeyId"], key)


def test_log_retention_is_short_in_dev_and_longer_in_prod(dev: Synth, prod: Synth) -> None:
    assert {
        g["Properties"]["RetentionInDays"]
        for g in dev.all_resources("AWS::Logs::LogGroup").values()
    } == {30}
    assert {
        g["Properties"]["RetentionInDays"]
        for g in prod.all_resources("AWS::Logs::LogGroup").values()
    } == {365}


def test_audit_entries_are_kept_six_years_in_prod(dev: Synth, prod: Synth) -> None:
    assert prod.stacks.config.audit_retention_days == 2192  # six years
    assert dev.stacks.config.audit_retention_days is None  # dev: no backups at all
    (plan,) = prod.resources("data", "AWS::Backup::BackupPlan").values()
    rules = {r["RuleName"]: r for r in plan["Properties"]["BackupPlan"]["BackupPlanRule"]}
    assert rules["MonthlyAuditRetention"]["Lifecycle"]["DeleteAfterDays"] == 2192
    assert rules["Daily"]["Lifecycle"]["DeleteAfterDays"] == 35
    # The audit items themselves never expire: the table's TTL attribute is not theirs.
    (table,) = prod.resources("data", "AWS::DynamoDB::Table").values()
    assert table["Properties"]["TimeToLiveSpecification"]["AttributeName"] == "expiration"
    assert table["DeletionPolicy"] == "Retain"
    assert table["Properties"]["DeletionProtectionEnabled"] is True


def _key_statements(synth: Synth) -> dict[str, list[dict[str, Any]]]:
    return {
        logical_id: key["Properties"]["KeyPolicy"]["Statement"]
        for logical_id, key in synth.resources("data", "AWS::KMS::Key").items()
    }


def test_five_keys_one_per_data_class_all_rotating(dev: Synth) -> None:
    keys = dev.resources("data", "AWS::KMS::Key")
    aliases = {
        a["Properties"]["AliasName"] for a in dev.resources("data", "AWS::KMS::Alias").values()
    }
    assert aliases == {
        f"alias/careflow-dev-{name}"
        for name in ("state", "messaging", "logs", "events", "workflows")
    }
    assert len(keys) == 5
    assert all(k["Properties"]["EnableKeyRotation"] for k in keys.values())


def test_no_key_policy_lets_the_account_use_a_key_except_through_its_service(dev: Synth) -> None:
    for logical_id, statements in _key_statements(dev).items():
        sids = {s.get("Sid") for s in statements}
        assert "KeyAdministration" in sids, logical_id
        for statement in statements:
            principal = statement["Principal"]
            actions = set(as_list(statement["Action"]))
            assert not any(a in {"kms:*", "*"} for a in actions), (logical_id, statement)
            if "AWS" in principal and actions & CRYPTOGRAPHIC:
                via = statement["Condition"]["StringEquals"]["kms:ViaService"]
                assert via and all(".amazonaws.com" in str(render(v)) for v in as_list(via))
                assert statement["Sid"] == "UseThroughServiceOnly"
            assert "Sid" in statement, (logical_id, statement)  # all written in keys.py
            if statement["Sid"] == "KeyAdministration":
                assert not actions & CRYPTOGRAPHIC
                assert actions == set(KEY_ADMINISTRATION)
            if "Service" in principal:
                assert "Condition" in statement, (logical_id, statement)


def test_key_admin_role_manages_but_cannot_use_the_keys(dev: Synth) -> None:
    role_id = logical_id_of(dev, "data", "AWS::IAM::Role", RoleName="careflow-dev-key-admin")
    (statement,) = policy_statements(dev, role_id, "data")
    assert set(as_list(statement["Action"])) == set(KEY_ADMINISTRATION)
    assert not set(as_list(statement["Action"])) & CRYPTOGRAPHIC
    assert len(as_list(statement["Resource"])) == 5


def test_via_service_per_key(dev: Synth) -> None:
    expected = {
        "state": {"dynamodb", "backup"},
        "messaging": {"sqs", "sns"},
        "logs": set(),
        "events": {"events"},
        "workflows": {"states"},
    }
    statements = _key_statements(dev)
    for alias, services in expected.items():
        key = _key_id_by_alias(dev, alias)
        via = [
            as_list(s["Condition"]["StringEquals"]["kms:ViaService"])
            for s in statements[key]
            if s["Sid"] == "UseThroughServiceOnly"
        ]
        found = {str(render(v)).split(".")[0] for vs in via for v in vs}
        assert found == services, alias


def test_who_may_use_the_execution_data_key(dev: Synth) -> None:
    """The state machines, and the functions that start or answer executions."""
    key = _key_id_by_alias(dev, "workflows")

    def uses(statements: list[dict[str, Any]]) -> bool:
        return any(
            any(_refers_to(r, key) for r in as_list(s["Resource"]))
            for s in statements
            if "kms:GenerateDataKey" in as_list(s["Action"])
        )

    for name, spec in all_functions().items():
        function_id = logical_id_of(
            dev, "workflows", "AWS::Lambda::Function", FunctionName=f"careflow-dev-{name}"
        )
        props = dev.templates["workflows"]["Resources"][function_id]["Properties"]
        role = str(render(props["Role"])).strip("<>").split(".")[0]
        expected = name == INTAKE.name or spec.answers_task_tokens
        assert uses(policy_statements(dev, role, "workflows")) == expected, name


def test_each_state_machine_role_uses_the_key_for_its_own_and_its_childrens_executions(
    dev: Synth,
) -> None:
    key = _key_id_by_alias(dev, "workflows")
    for wf in CATALOG:
        logical_id = logical_id_of(
            dev,
            "workflows",
            "AWS::StepFunctions::StateMachine",
            StateMachineName=f"careflow-dev-{wf.name}",
        )
        props = dev.templates["workflows"]["Resources"][logical_id]["Properties"]
        role = str(render(props["RoleArn"])).strip("<>").split(".")[0]
        statements = {s["Sid"]: s for s in policy_statements(dev, role, "workflows")}
        data_key = statements["ExecutionDataKey"]
        assert _refers_to(data_key["Resource"], key)
        arns = as_list(
            render(data_key["Condition"]["StringEquals"])[
                "kms:EncryptionContext:aws:states:stateMachineArn"
            ]
        )
        names = {str(arn).rsplit(":", 1)[-1] for arn in arns}
        expected = {f"careflow-dev-{wf.name}"}
        expected |= {f"careflow-dev-{registry_workflow(c).name}" for c in wf.children}
        assert names == expected
        delivery = statements["LogDeliveryDataKey"]
        assert as_list(delivery["Action"]) == ["kms:GenerateDataKey"]
        assert "kms:EncryptionContext:SourceArn" in delivery["Condition"]["StringEquals"]
