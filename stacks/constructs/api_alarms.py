"""The ``/v1`` API's alarms, each with an action on the ops topic (alarm and OK).

Hand-written with ``aws_cloudwatch``, not cdk-monitoring-constructs (docs/decisions.md 29
and 30): the executive dashboard shows the API through the library, without alarms.
Thresholds are :data:`THRESHOLDS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

PERIOD = Duration.minutes(5)
DESCRIPTION_PREFIX = "/v1 API: "


@dataclass(frozen=True)
class Threshold:
    value: float
    periods: int  # consecutive 5-minute periods over ``value``
    description: str


THRESHOLDS: dict[str, Threshold] = {
    "ServerErrors": Threshold(0, 1, "5XX answers (the handler or the gateway failed)"),
    "LatencyP99": Threshold(3000, 3, "p99 latency over 3 s (ms), three periods running"),
    "IntegrationLatencyP99": Threshold(
        2500, 3, "p99 integration (Lambda) latency over 2.5 s (ms), three periods running"
    ),
    "ClientErrorRate": Threshold(
        0.25, 3, "over a quarter of requests answered 4XX (a broken client or a probe)"
    ),
    "Throttled": Threshold(50, 1, "over 50 requests answered 429 in 5 minutes"),
    "WafBlocked": Threshold(100, 1, "over 100 requests blocked by WAF in 5 minutes"),
    "FunctionErrors": Threshold(0, 1, "the API function's invocations failed"),
    "FunctionThrottles": Threshold(0, 1, "the API function was throttled (concurrency)"),
}


class ApiAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic: sns.ITopic,
        stage: apigw.Stage,
        function: lambda_.IFunction,
        throttled: cloudwatch.IMetric,
        web_acl_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self._action = cloudwatch_actions.SnsAction(topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        waf_blocked = cloudwatch.Metric(
            namespace="AWS/WAFV2",
            metric_name="BlockedRequests",
            dimensions_map={
                "WebACL": web_acl_name,
                "Region": Stack.of(self).region,
                "Rule": "ALL",
            },
            statistic=cloudwatch.Stats.SUM,
            period=PERIOD,
        )
        p99 = cloudwatch.Stats.percentile(99)
        metrics: dict[str, cloudwatch.IMetric] = {
            "ServerErrors": stage.metric_server_error(period=PERIOD),
            "LatencyP99": stage.metric_latency(period=PERIOD, statistic=p99),
            "IntegrationLatencyP99": stage.metric_integration_latency(period=PERIOD, statistic=p99),
            # 4XXError's Average is the share of requests answered 4XX.
            "ClientErrorRate": stage.metric_client_error(
                period=PERIOD, statistic=cloudwatch.Stats.AVERAGE
            ),
            "Throttled": throttled,
            "WafBlocked": waf_blocked,
            "FunctionErrors": function.metric_errors(period=PERIOD),
            "FunctionThrottles": function.metric_throttles(period=PERIOD),
        }
        for name, metric in metrics.items():
            self._alarm(name, metric, THRESHOLDS[name])

    def _alarm(self, name: str, metric: cloudwatch.IMetric, threshold: Threshold) -> None:
        alarm = cloudwatch.Alarm(
            self,
            name,
            alarm_description=DESCRIPTION_PREFIX + threshold.description,
            metric=metric,
            threshold=threshold.value,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=threshold.periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms[name] = alarm
