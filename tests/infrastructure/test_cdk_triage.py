"""The triage models in CDK: a drift alarm per measured model (ModelDriftPsi at the
ai-models policy's drift_alarm_psi) paging the ops topic; the daily schedule of the drift
check; Bedrock IAM only in a deployment that names a Bedrock model."""

from __future__ import annotations

from typing import Any

import pytest

from careflow.catalog import MODEL_DRIFT, all_functions
from careflow.ml import registry
from careflow.ml.drift_check import policy_values
from stacks.constructs.model_drift_alarms import measured_models
from stacks.permissions import uses_predictor
from tests.infrastructure.infra_support import (
    Synth,
    logical_id_of,
    policy_statements,
    render,
    synthesize,
)


def _drift_alarms(dev: Synth) -> dict[str, dict[str, Any]]:
    out = {}
    for a in dev.resources("observability", "AWS::CloudWatch::Alarm").values():
        p = a["Properties"]
        if p.get("MetricName") == "ModelDriftPsi":
            dims = {d["Name"]: render(d["Value"]) for d in p["Dimensions"]}
            out[dims["model_id"]] = p
    return out


def test_each_measured_model_has_its_drift_alarm_paging_the_ops_topic(dev):
    alarms = _drift_alarms(dev)
    with_codes = [
        d.id for d in registry.definitions().values() if any(f.kind != "text" for f in d.features)
    ]
    # every model has one: the attachment model (text) is measured on its resource types
    assert sorted(with_codes) == sorted(registry.definitions())
    assert sorted(alarms) == sorted(measured_models()) == sorted(with_codes)
    line = policy_values()[1]
    (topic,) = dev.resources("observability", "AWS::SNS::Topic")
    for model_id, p in alarms.items():
        assert p["Threshold"] == line
        assert p["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert p["Namespace"] == "Careflow" and p["Statistic"] == "Maximum"
        assert p["TreatMissingData"] == "notBreaching"
        for actions in (p["AlarmActions"], p["OKActions"]):
            assert [render(x) for x in actions] == [f"<{topic}>"], model_id


def test_the_drift_check_runs_daily_and_may_only_read(dev):
    fn = logical_id_of(
        dev, "workflows", "AWS::Lambda::Function", FunctionName="careflow-dev-ModelDrift"
    )
    rules = [
        r["Properties"]
        for r in dev.resources("workflows", "AWS::Events::Rule").values()
        if r["Properties"].get("ScheduleExpression")
    ]
    daily = [r for r in rules if any(fn in str(render(t["Arn"])) for t in r["Targets"])]
    assert [r["ScheduleExpression"] for r in daily] == ["rate(1 day)"]
    props = dev.resources("workflows", "AWS::Lambda::Function")[fn]["Properties"]
    role = render(props["Role"]).strip("<>").split(".")[0]
    actions = {
        a
        for s in policy_statements(dev, role, "workflows")
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        if s["Effect"] == "Allow" and a.startswith("dynamodb:")
    }
    assert actions == {"dynamodb:GetItem", "dynamodb:Query"}
    assert MODEL_DRIFT.name in all_functions()


def _bedrock_statements(synth: Synth) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for name in all_functions():
        fn = logical_id_of(
            synth, "workflows", "AWS::Lambda::Function", FunctionName=f"careflow-dev-{name}"
        )
        props = synth.resources("workflows", "AWS::Lambda::Function")[fn]["Properties"]
        role = render(props["Role"]).strip("<>").split(".")[0]
        found = [
            s for s in policy_statements(synth, role, "workflows") if "bedrock" in str(s["Action"])
        ]
        env = props.get("Environment", {}).get("Variables", {})
        out[name] = found + (
            [{"env": env["CAREFLOW_BEDROCK_MODEL_ID"]}]
            if "CAREFLOW_BEDROCK_MODEL_ID" in env
            else []
        )
    return out


def test_no_bedrock_permission_without_a_named_model(dev):
    assert all(found == [] for found in _bedrock_statements(dev).values())


@pytest.fixture(scope="module")
def with_bedrock(tmp_path_factory):
    return synthesize(
        "dev",
        tmp_path_factory.mktemp("cdk-bedrock"),
        {"bedrock_model_id": "anthropic.claude-3-haiku-20240307-v1:0"},
    )


def test_a_named_bedrock_model_is_granted_to_the_predicting_steps_only(with_bedrock):
    found = _bedrock_statements(with_bedrock)
    predicting = {n for n, spec in all_functions().items() if uses_predictor(spec)}
    assert predicting and {n for n, f in found.items() if f} == predicting
    for name in predicting:
        statement, env = found[name]
        assert statement["Action"] == "bedrock:InvokeModel"
        assert str(render(statement["Resource"])).endswith(
            ":bedrock:<AWS::Region>::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
        ) or "foundation-model/anthropic.claude-3-haiku-20240307-v1:0" in str(
            render(statement["Resource"])
        )
        assert env == {"env": "anthropic.claude-3-haiku-20240307-v1:0"}
