"""Alarms page the ops topic for every failure path; the dashboard shows the catalog's KPIs."""

from __future__ import annotations

import json

from careflow import observability
from careflow.catalog import CATALOG, all_functions
from stacks.constructs.api_alarms import DESCRIPTION_PREFIX
from stacks.constructs.operations import METRICS_NAMESPACE, SERVICE_NAME
from tests.infrastructure.infra_support import Synth, render


def _all_alarms(dev: Synth) -> list[dict]:
    return [
        a["Properties"] for a in dev.resources("observability", "AWS::CloudWatch::Alarm").values()
    ]


def _alarms(dev: Synth) -> list[dict]:
    """The workflows' alarms (the API's have thresholds of their own: test_cdk_api)."""
    return [a for a in _all_alarms(dev) if not a["AlarmDescription"].startswith(DESCRIPTION_PREFIX)]


def test_ops_topic_is_encrypted_and_tls_only(dev: Synth) -> None:
    (topic,) = dev.resources("observability", "AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic["Properties"]
    (policy,) = dev.resources("observability", "AWS::SNS::TopicPolicy").values()
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )


def test_every_alarm_notifies_the_ops_topic(dev: Synth) -> None:
    (topic_id,) = dev.resources("observability", "AWS::SNS::Topic")
    for alarm in _all_alarms(dev):
        assert [render(a) for a in alarm["AlarmActions"]] == [f"<{topic_id}>"]
        assert [render(a) for a in alarm["OKActions"]] == [f"<{topic_id}>"]
    for alarm in _alarms(dev):
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == 0


def test_failed_executions_function_errors_and_waiting_messages_raise_alarms(dev: Synth) -> None:
    by_metric: dict[str, int] = {}
    for alarm in _alarms(dev):
        by_metric[alarm["MetricName"]] = by_metric.get(alarm["MetricName"], 0) + 1
    queues = dev.all_resources("AWS::SQS::Queue")
    assert by_metric == {
        "ExecutionsFailed": len(CATALOG),
        "ExecutionsTimedOut": len(CATALOG),
        "Errors": len(all_functions()),
        "ApproximateNumberOfMessagesVisible": len(queues),
    }


def test_dashboard_shows_every_kpi_and_every_state_machine(dev: Synth) -> None:
    (dashboard,) = dev.resources("observability", "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(render(dashboard["Properties"]["DashboardBody"]))
    for wf in CATALOG:
        assert f"{wf.id}: executions" in body
        for kpi in wf.kpis:
            assert (
                f'[\\"{METRICS_NAMESPACE}\\",\\"{kpi.name}\\",\\"service\\",\\"{SERVICE_NAME}\\"'
                in body
            )


def test_dashboard_reads_metrics_where_the_runtime_writes_them() -> None:
    assert (METRICS_NAMESPACE, SERVICE_NAME) == (observability.NAMESPACE, observability.SERVICE)
