"""HL7 v2 over MLLP (careflow-<env>-hl7): absent by default; enabled, a Fargate service behind
an internal NLB with a TLS listener, reachable only from the interface engine's CIDRs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stacks.compliance import compliance_packs
from stacks.config import HL7_CONTEXT, hl7_config
from stacks.constructs.hl7_alarms import DESCRIPTION_PREFIX
from stacks.constructs.mllp_listener import ENTRY_POINT
from stacks.permissions import HL7_APPOINTMENT_STARTS, HL7_MESSAGE_RECORDS, PARKED
from tests.infrastructure.infra_support import (
    REPO_ROOT,
    Synth,
    as_list,
    policy_statements,
    render,
    synthesize,
)

CFN_LINT = str(Path(sys.executable).with_name("cfn-lint"))
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
CIDRS = ["10.20.30.0/28", "192.0.2.10/32"]
ENABLED = {
    HL7_CONTEXT: {"mllp_enabled": True, "certificate_arn": CERTIFICATE, "allowed_cidrs": CIDRS}
}
LISTENER_TYPES = (
    "AWS::ECS::Service",
    "AWS::ECS::Cluster",
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::EC2::VPC",
)


@pytest.fixture(scope="module")
def mllp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """dev with the MLLP listener enabled."""
    yield synthesize("dev", tmp_path_factory.mktemp("cdk-dev-mllp"), ENABLED)


def _one(synth: Synth, resource_type: str) -> dict[str, Any]:
    (resource,) = synth.resources("hl7", resource_type).values()
    props: dict[str, Any] = resource["Properties"]
    return props


def _logical_id(synth: Synth, resource_type: str, **properties: Any) -> str:
    (found,) = [
        logical_id
        for logical_id, r in synth.resources("hl7", resource_type).items()
        if all(r["Properties"].get(k) == v for k, v in properties.items())
    ]
    return found


# --- off by default -------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_absent_unless_enabled(env: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(env)
    assert synth.stacks.config.hl7.mllp_enabled is False
    assert synth.stacks.hl7 is None
    assert not list(synth.outdir.glob("*-hl7.template.json"))
    for resource_type in LISTENER_TYPES:
        assert synth.all_resources(resource_type) == {}
    assert "-mllp" not in str(synth.templates["events"])


def test_configuration_refuses_an_open_or_incomplete_listener() -> None:
    assert hl7_config({}).mllp_enabled is False
    enabled = {"mllp_enabled": True, "certificate_arn": CERTIFICATE, "allowed_cidrs": CIDRS}
    assert hl7_config(enabled).allowed_cidrs == tuple(CIDRS)
    assert hl7_config({**enabled, "mllp_enabled": "true", "allowed_cidrs": "10.0.0.0/8"}).port == (
        2575
    )
    for broken, message in [
        ({"certificate_arn": None}, "certificate_arn"),
        ({"certificate_arn": "not-an-arn"}, "certificate_arn"),
        ({"allowed_cidrs": []}, "allowed_cidrs"),
        ({"allowed_cidrs": ["0.0.0.0/0"]}, "0.0.0.0/0"),
        ({"allowed_cidrs": ["::/0"]}, "::/0"),
        ({"desired_count": 1}, "desired_count"),
        ({"nat": True}, "unknown"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            hl7_config({**enabled, **broken})
    with pytest.raises(ValueError):
        hl7_config({**enabled, "allowed_cidrs": ["10.0.0.300/32"]})


# --- enabled ---------------------------------------------------------------------------------


def test_tls_listener_on_2575_with_the_certificate_and_a_tls12_policy(mllp: Synth) -> None:
    listener = _one(mllp, "AWS::ElasticLoadBalancingV2::Listener")
    assert listener["Port"] == 2575 and listener["Protocol"] == "TLS"
    assert listener["Certificates"] == [{"CertificateArn": CERTIFICATE}]
    assert listener["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    nlb = _one(mllp, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert nlb["Type"] == "network" and nlb["Scheme"] == "internal"
    attributes = {a["Key"]: render(a["Value"]) for a in nlb["LoadBalancerAttributes"]}
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["deletion_protection.enabled"] == "false"  # dev; prod follows config
    target_group = _one(mllp, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert target_group["Protocol"] == "TCP" and target_group["Port"] == 2575
    assert target_group["TargetType"] == "ip"
    assert target_group["HealthCheckProtocol"] == "TCP"


def test_only_the_configured_cidrs_reach_the_listener(mllp: Synth) -> None:
    groups = mllp.resources("hl7", "AWS::EC2::SecurityGroup")
    rules = [
        (logical_id, rule)
        for logical_id, group in groups.items()
        for rule in group["Properties"].get("SecurityGroupIngress", [])
    ] + [
        (render(rule["Properties"]["GroupId"]), rule["Properties"])
        for rule in mllp.resources("hl7", "AWS::EC2::SecurityGroupIngress").values()
    ]
    cidr_rules = [rule for _, rule in rules if "CidrIp" in rule or "CidrIpv6" in rule]
    assert sorted(rule.get("CidrIp") or rule["CidrIpv6"] for rule in cidr_rules) == sorted(CIDRS)
    assert all(
        (r["FromPort"], r["ToPort"], r["IpProtocol"]) == (2575, 2575, "tcp") for r in cidr_rules
    )
    nlb_group = render(_one(mllp, "AWS::ElasticLoadBalancingV2::LoadBalancer")["SecurityGroups"])
    assert {logical_id for logical_id, rule in rules if "CidrIp" in rule} == {
        group.strip("<>").split(".")[0] for group in nlb_group
    }
    # Every other ingress is from a security group of this stack (NLB -> tasks -> endpoints).
    for _, rule in rules:
        assert "CidrIp" in rule or "SourceSecurityGroupId" in rule
    assert "0.0.0.0/0" not in str([r for _, r in rules]) and "::/0" not in str(rules)


def test_fargate_service_arm64_small_two_tasks_circuit_breaker(mllp: Synth) -> None:
    task = _one(mllp, "AWS::ECS::TaskDefinition")
    assert task["RuntimePlatform"] == {
        "CpuArchitecture": "ARM64",
        "OperatingSystemFamily": "LINUX",
    }
    assert (task["Cpu"], task["Memory"]) == ("256", "512")
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    (container,) = task["ContainerDefinitions"]
    assert container["Command"] == list(ENTRY_POINT)
    assert container["ReadonlyRootFilesystem"] is True
    assert container["PortMappings"][0]["ContainerPort"] == 2575
    service = _one(mllp, "AWS::ECS::Service")
    assert service["LaunchType"] == "FARGATE" and service["DesiredCount"] == 2
    assert service["DeploymentConfiguration"] == {
        "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
        "MaximumPercent": 200,
        "MinimumHealthyPercent": 100,
    }
    network = service["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED" and len(network["Subnets"]) == 2
    cluster = _one(mllp, "AWS::ECS::Cluster")
    assert cluster["ClusterSettings"] == [{"Name": "containerInsights", "Value": "enabled"}]


def test_the_image_is_a_staged_directory_asset_no_docker_at_synth(mllp: Synth) -> None:
    (image,) = [
        entry
        for manifest in mllp.outdir.glob("*-hl7.assets.json")
        for entry in json.loads(manifest.read_text())["dockerImages"].values()
    ]
    assert image["source"]["dockerFile"] == "containers/mllp/Dockerfile"
    assert image["source"]["platform"] == "linux/arm64"
    staged = mllp.outdir / image["source"]["directory"]
    assert (staged / "containers/mllp/Dockerfile").is_file()
    assert (staged / "layers/runtime/careflow").is_dir()
    assert not (staged / ".venv").exists() and not (staged / "tests").exists()
    dockerfile = (REPO_ROOT / "containers/mllp/Dockerfile").read_text()
    assert 'CMD ["python", "-m", "careflow.adapters.hl7v2.mllp_service"]' in dockerfile


def test_no_nat_no_internet_gateway_and_endpoints_for_what_the_tasks_call(mllp: Synth) -> None:
    assert mllp.resources("hl7", "AWS::EC2::NatGateway") == {}
    assert mllp.resources("hl7", "AWS::EC2::InternetGateway") == {}
    endpoints = [
        render(e["Properties"]["ServiceName"])
        for e in mllp.resources("hl7", "AWS::EC2::VPCEndpoint").values()
    ]
    suffixes = sorted(str(e).rsplit(".", 1)[-1] for e in endpoints)
    assert suffixes == sorted(["s3", "dynamodb", "api", "dkr", "logs", "kms", "sts", "events"])
    (flow_log,) = mllp.resources("hl7", "AWS::EC2::FlowLog").values()
    assert flow_log["Properties"]["LogDestinationType"] == "s3"
    (bucket,) = mllp.resources("hl7", "AWS::S3::Bucket").values()
    encryption = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def _role_id(synth: Synth, name: str) -> str:
    return _logical_id(synth, "AWS::IAM::Role", RoleName=name)


def test_task_role_is_least_privilege(mllp: Synth) -> None:
    statements = policy_statements(mllp, _role_id(mllp, "careflow-dev-mllp"), "hl7")
    by_sid = {s["Sid"]: s for s in statements}
    assert set(by_sid) == {
        "Hl7MessageRecords",
        "Hl7AppointmentStarts",
        "ParkedMessages",
        "AuditEntriesAreAppendOnly",
        "StateTableKey",
        "PutEventsOnCareflowBus",
    }
    for statement in statements:
        assert not any("*" in action for action in as_list(statement["Action"]))
        assert "*" not in as_list(statement["Resource"])
    leading = "ForAllValues:StringLike"
    expected = {
        "Hl7MessageRecords": (
            ["dynamodb:GetItem", "dynamodb:PutItem"],
            "SUBJECT#hl7v2-inbound#*",
        ),
        "Hl7AppointmentStarts": (
            ["dynamodb:DeleteItem", "dynamodb:PutItem"],
            "WAIT#hl7v2-start#*",
        ),
        "ParkedMessages": (["dynamodb:GetItem", "dynamodb:PutItem"], f"{PARKED}*"),
    }
    assert HL7_MESSAGE_RECORDS == "SUBJECT#hl7v2-inbound#"
    assert HL7_APPOINTMENT_STARTS == "WAIT#hl7v2-start#"
    for sid, (actions, prefix) in expected.items():
        assert by_sid[sid]["Action"] == actions, sid
        assert by_sid[sid]["Condition"][leading]["dynamodb:LeadingKeys"] == [prefix], sid
    assert by_sid["AuditEntriesAreAppendOnly"]["Effect"] == "Deny"
    assert by_sid["PutEventsOnCareflowBus"]["Condition"] == {
        "StringEquals": {"events:source": ["careflow.ehr", "careflow.scheduling"]}
    }
    # The bus policy lets the listener's role put the HL7 sources (it denies anyone else).
    assert "careflow-dev-mllp" in str(render(mllp.templates["events"]["Resources"]))


def test_execution_role_pulls_the_image_and_writes_its_log_group_only(mllp: Synth) -> None:
    roles = mllp.resources("hl7", "AWS::IAM::Role")
    (execution_id,) = [
        logical_id for logical_id, r in roles.items() if "RoleName" not in r["Properties"]
    ]
    statements = policy_statements(mllp, execution_id, "hl7")
    assert {s["Sid"] for s in statements} == {"PullImage", "EcrAuthorization", "WriteOwnLogGroup"}
    for statement in statements:
        assert not any("*" in action for action in as_list(statement["Action"]))
        if "*" in as_list(statement["Resource"]):
            assert statement["Action"] == "ecr:GetAuthorizationToken"
    assert mllp.resources("hl7", "AWS::IAM::Policy") == {}
    for role in roles.values():
        assert (
            "Policies" not in role["Properties"] and "ManagedPolicyArns" not in role["Properties"]
        )


def test_logs_are_encrypted_with_the_logs_key(mllp: Synth) -> None:
    (log_group,) = mllp.resources("hl7", "AWS::Logs::LogGroup").values()
    assert "Logs" in render(log_group["Properties"]["KmsKeyId"])
    assert log_group["Properties"]["RetentionInDays"] == 30
    (container,) = _one(mllp, "AWS::ECS::TaskDefinition")["ContainerDefinitions"]
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"


def test_alarms_on_unhealthy_targets_and_missing_tasks_page_the_ops_topic(mllp: Synth) -> None:
    (topic_id,) = mllp.resources("observability", "AWS::SNS::Topic")
    alarms = [
        a["Properties"]
        for a in mllp.resources("observability", "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmDescription"].startswith(DESCRIPTION_PREFIX)
    ]
    by_metric = {a["MetricName"]: a for a in alarms}
    assert set(by_metric) == {"UnHealthyHostCount", "RunningTaskCount"}
    assert by_metric["UnHealthyHostCount"]["ComparisonOperator"] == "GreaterThanThreshold"
    assert by_metric["RunningTaskCount"]["ComparisonOperator"] == "LessThanThreshold"
    assert by_metric["RunningTaskCount"]["Threshold"] == 2
    for alarm in alarms:
        assert [render(a) for a in alarm["AlarmActions"]] == [f"<{topic_id}>"]
        assert [render(a) for a in alarm["OKActions"]] == [f"<{topic_id}>"]


@pytest.mark.slow
def test_cdk_nag_reports_no_unacknowledged_finding_with_the_listener(mllp: Synth) -> None:
    findings = [
        f"{violation.rule_name} at {[r.construct_path for r in violation.violating_resources]}"
        for pack in compliance_packs(mllp.app)
        for violation in pack.validate_scope(mllp.app).violations
    ]
    assert findings == [], "\n".join(findings)


def test_its_acknowledgments_give_reasons_and_are_in_the_deploy_guide(mllp: Synth) -> None:
    guide = (REPO_ROOT / "docs" / "deploy.md").read_text()
    rules = [
        rule
        for resource in mllp.templates["hl7"]["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert rules
    for rule in rules:
        assert len(rule["reason"]) > 80, rule["id"]
        assert re.sub(r"\[.*", "", rule["id"]) in guide, f"{rule['id']} is not documented"


@pytest.mark.slow
def test_cfn_lint_passes_with_the_listener(mllp: Synth) -> None:
    templates = sorted(str(p) for p in mllp.outdir.glob("*.template.json"))
    assert len(templates) == 6
    result = subprocess.run([CFN_LINT, *templates], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
