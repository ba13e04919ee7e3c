"""Dashboards (one per workflow, one executive) and alarms from cdk-monitoring-constructs;
every alarm in every stack pages the ops topic."""

from __future__ import annotations

import json
from typing import Any

from careflow import observability
from careflow.catalog import CATALOG, all_functions
from stacks.constructs.monitoring import (
    ENDED_BADLY_METRIC,
    METRICS_NAMESPACE,
    SERVICE_NAME,
    SLA_BREACH_METRIC,
    UNROUTED_METRIC,
)
from tests.infrastructure.infra_support import Synth, render


def _alarms(dev: Synth) -> list[dict[str, Any]]:
    return [a["Properties"] for a in dev.all_resources("AWS::CloudWatch::Alarm").values()]


def _metric_names(alarm: dict[str, Any]) -> set[str]:
    if "MetricName" in alarm:
        return {alarm["MetricName"]}
    return {
        m["MetricStat"]["Metric"]["MetricName"]
        for m in alarm.get("Metrics", [])
        if "MetricStat" in m
    }


def _dimensions(alarm: dict[str, Any]) -> list[str]:
    found = [alarm.get("Dimensions", [])] + [
        m["MetricStat"]["Metric"].get("Dimensions", [])
        for m in alarm.get("Metrics", [])
        if "MetricStat" in m
    ]
    return [str(render(d["Value"])) for dims in found for d in dims]


def _dashboards(dev: Synth) -> dict[str, str]:
    return {
        d["Properties"]["DashboardName"]: json.dumps(render(d["Properties"]["DashboardBody"]))
        for d in dev.resources("observability", "AWS::CloudWatch::Dashboard").values()
    }


def _machine_export(dev: Synth, wf_name: str) -> str:
    (logical_id,) = [
        k
        for k, r in dev.resources("workflows", "AWS::StepFunctions::StateMachine").items()
        if r["Properties"]["StateMachineName"] == f"{dev.stacks.config.prefix}-{wf_name}"
    ]
    return logical_id


def test_ops_topic_is_encrypted_and_tls_only(dev: Synth) -> None:
    (topic,) = dev.resources("observability", "AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic["Properties"]
    (policy,) = dev.resources("observability", "AWS::SNS::TopicPolicy").values()
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )


def test_every_alarm_in_every_stack_notifies_the_ops_topic(dev: Synth) -> None:
    (topic_id,) = dev.resources("observability", "AWS::SNS::Topic")
    alarms = _alarms(dev)
    assert len(alarms) > 100
    assert set(dev.all_resources("AWS::CloudWatch::Alarm")) == set(
        dev.resources("observability", "AWS::CloudWatch::Alarm")
    ), "alarms live in the observability stack, beside the topic"
    for alarm in alarms:
        assert alarm.get("ActionsEnabled", True) is True
        assert [render(a) for a in alarm["AlarmActions"]] == [f"<{topic_id}>"], alarm
        assert [render(a) for a in alarm["OKActions"]] == [f"<{topic_id}>"], alarm


def test_every_workflow_has_a_dashboard_naming_its_state_machine(dev: Synth) -> None:
    dashboards = _dashboards(dev)
    prefix = dev.stacks.config.prefix
    for wf in CATALOG:
        body = dashboards[f"{prefix}-{wf.id}"]
        assert _machine_export(dev, wf.name) in body, wf.id
        for fn in wf.functions:
            assert fn.name in body, (wf.id, fn.name)
        for kpi in wf.kpis:
            assert (
                f'[\\"{METRICS_NAMESPACE}\\",\\"{kpi.name}\\",\\"service\\",\\"{SERVICE_NAME}\\"'
                in body
            ), (wf.id, kpi.name)
    assert set(dashboards) == {f"{prefix}-{wf.id}" for wf in CATALOG} | {f"{prefix}-executive"}


def test_executive_dashboard_shows_every_workflow_sla_breaches_and_the_api(dev: Synth) -> None:
    body = _dashboards(dev)[f"{dev.stacks.config.prefix}-executive"]
    for wf in CATALOG:
        assert _machine_export(dev, wf.name) in body
    for metric in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed"):
        assert metric in body
    assert SLA_BREACH_METRIC in body and UNROUTED_METRIC in body and ENDED_BADLY_METRIC in body
    assert "AWS/ApiGateway" in body and "5XXError" in body


def test_every_workflow_alarms_on_failed_timed_out_throttled_and_aborted_executions(
    dev: Synth,
) -> None:
    for wf in CATALOG:
        machine = _machine_export(dev, wf.name)
        on_machine = [a for a in _alarms(dev) if any(machine in d for d in _dimensions(a))]
        names = set().union(*(_metric_names(a) for a in on_machine))
        assert {
            "ExecutionsFailed",
            "ExecutionsTimedOut",
            "ExecutionThrottled",
            "ExecutionsAborted",
        } <= names, wf.id


def test_every_function_alarms_once_on_errors_and_throttles(dev: Synth) -> None:
    counts: dict[str, int] = {}
    for alarm in _alarms(dev):
        for name in _metric_names(alarm) & {"Errors", "Throttles"}:
            counts[name] = counts.get(name, 0) + 1
    # + the API function's own (api_alarms.py)
    assert counts == {"Errors": len(all_functions()) + 1, "Throttles": len(all_functions()) + 1}


def test_queues_unrouted_sla_api_and_table_raise_alarms(dev: Synth) -> None:
    by_metric: dict[str, int] = {}
    for alarm in _alarms(dev):
        for name in _metric_names(alarm):
            by_metric[name] = by_metric.get(name, 0) + 1
    assert by_metric["ApproximateNumberOfMessagesVisible"] == len(
        dev.all_resources("AWS::SQS::Queue")
    )
    assert by_metric[UNROUTED_METRIC] == 1
    assert by_metric[SLA_BREACH_METRIC] == 1
    assert by_metric["5XXError"] >= 1 and by_metric["Latency"] >= 1
    assert by_metric["ReadThrottleEvents"] == by_metric["WriteThrottleEvents"] == 1
    (p99,) = [a for a in _alarms(dev) if _metric_names(a) == {"Latency"}]
    assert p99["ExtendedStatistic"] == "p99"


def test_dashboard_reads_metrics_where_the_runtime_writes_them() -> None:
    assert (METRICS_NAMESPACE, SERVICE_NAME) == (observability.NAMESPACE, observability.SERVICE)
