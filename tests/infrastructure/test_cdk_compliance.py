"""cdk-nag (AwsSolutions, HIPAA Security), CDK annotations and cfn-lint: all clean."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk.assertions import Annotations, Match

from stacks.compliance import compliance_packs
from tests.infrastructure.infra_support import REPO_ROOT, Synth, as_list

pytestmark = pytest.mark.slow
CFN_LINT = str(Path(sys.executable).with_name("cfn-lint"))
ENVIRONMENTS = ["dev", "prod"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cdk_nag_reports_no_unacknowledged_finding(
    env: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(env)
    findings = [
        f"{violation.rule_name} ({violation.severity}) at "
        f"{[r.construct_path for r in violation.violating_resources]}: {violation.description}"
        for pack in compliance_packs(synth.app)
        for violation in pack.validate_scope(synth.app).violations
    ]
    assert findings == [], "\n".join(findings)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cdk_reports_no_error_or_warning(env: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(env)
    for stack in synth.stacks.all:
        annotations = Annotations.from_stack(stack)
        errors = annotations.find_error("*", Match.string_like_regexp(".*"))
        warnings = annotations.find_warning("*", Match.string_like_regexp(".*"))
        assert errors == [], [(e.id, e.entry.data) for e in errors]
        assert warnings == [], [(w.id, w.entry.data) for w in warnings]


def _acknowledgments(synth: Synth) -> dict[str, set[str]]:
    """Rule id -> reasons, from the ``cdk_nag`` audit metadata written into the templates."""
    found: dict[str, set[str]] = {}
    for template in synth.templates.values():
        for resource in template["Resources"].values():
            for rule in (
                resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
            ):
                found.setdefault(rule["id"], set()).add(rule["reason"])
    return found


def test_every_acknowledgment_gives_a_reason_and_is_in_the_deploy_guide(
    dev: Synth, prod: Synth
) -> None:
    guide = (REPO_ROOT / "docs" / "deploy.md").read_text()
    acknowledged = {**_acknowledgments(dev), **_acknowledgments(prod)}
    assert acknowledged, "the audit metadata is missing from the templates"
    for rule_id, reasons in acknowledged.items():
        assert all(len(reason) > 80 for reason in reasons), rule_id
        assert re.sub(r"\[.*", "", rule_id) in guide, f"{rule_id} is not documented"


def test_wildcard_resources_appear_only_where_acknowledged(dev: Synth) -> None:
    for logical_id, policy in dev.all_resources("AWS::IAM::ManagedPolicy").items():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        acknowledged = {
            rule["id"]
            for rule in policy.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
        }
        for statement in statements:
            if "*" in as_list(statement["Resource"]):
                assert "AwsSolutions-IAM5[Resource::*]" in acknowledged, logical_id
                assert statement["Sid"] in {"XRayTracing", "LogDelivery"}, logical_id
            assert not any("*" in action for action in as_list(statement["Action"])), logical_id


def test_no_inline_iam_policies(dev: Synth, prod: Synth) -> None:
    for synth in (dev, prod):
        assert synth.all_resources("AWS::IAM::Policy") == {}
        for role in synth.all_resources("AWS::IAM::Role").values():
            assert "Policies" not in role["Properties"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cfn_lint_passes_on_the_synthesized_templates(
    env: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(env)
    templates = sorted(str(p) for p in synth.outdir.glob("*.template.json"))
    assert len(templates) == 5
    result = subprocess.run([CFN_LINT, *templates], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_app_py_synthesizes_with_the_compliance_packs_enforced(tmp_path) -> None:
    """The real entry point: an unacknowledged finding would fail this synth."""
    result = subprocess.run(
        [sys.executable, "app.py", "-c", "layer_build=skip", "-o", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in tmp_path.glob("*.template.json")) == [
        f"careflow-dev-{role}.template.json"
        for role in ("api", "data", "events", "observability", "workflows")
    ]
