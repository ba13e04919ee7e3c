"""What operations watch: the ops topic, alarms that page it, and the dashboard."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from careflow.catalog import Kpi, Workflow

METRICS_NAMESPACE = "Careflow"  # POWERTOOLS_METRICS_NAMESPACE of every function
SERVICE_NAME = "careflow"  # POWERTOOLS_SERVICE_NAME: Powertools adds it as dimension "service"
PERIOD = Duration.minutes(5)
KPI_STATISTIC = {
    "Count": cloudwatch.Stats.SUM,
    "Seconds": cloudwatch.Stats.AVERAGE,
    "Percent": cloudwatch.Stats.AVERAGE,
}


@dataclass(frozen=True)
class Monitored:
    workflows: Mapping[str, tuple[Workflow, sfn.IStateMachine]]  # by workflow id
    functions: Mapping[str, lambda_.IFunction]  # by logical name
    queues: Mapping[str, sqs.IQueue]  # DLQs and the parking queue, by label

    def kpis(self) -> list[tuple[Workflow, Kpi]]:
        return [(wf, kpi) for wf, _ in self.workflows.values() for kpi in wf.kpis]


def kpi_metric(kpi: Kpi) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=kpi.name,
        dimensions_map={"service": SERVICE_NAME},
        statistic=KPI_STATISTIC[kpi.unit],
        period=Duration.hours(1),
        label=kpi.name,
    )


class OpsTopic(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        key: kms.IKey,
        email: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=name,
            display_name="careflow operations",
            master_key=key,
            enforce_ssl=True,
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))


class OpsAlarms(Construct):
    """Anything failing, anything dead-lettered, any function error: the ops topic hears it."""

    def __init__(
        self, scope: Construct, construct_id: str, *, topic: sns.ITopic, monitored: Monitored
    ) -> None:
        super().__init__(scope, construct_id)
        self._action = cloudwatch_actions.SnsAction(topic)
        self.alarms: list[cloudwatch.Alarm] = []
        for wf_id, (wf, machine) in monitored.workflows.items():
            self._alarm(
                f"{wf.name}Failed",
                machine.metric_failed(period=PERIOD),
                f"{wf_id}: executions failed",
            )
            self._alarm(
                f"{wf.name}TimedOut",
                machine.metric_timed_out(period=PERIOD),
                f"{wf_id}: executions timed out",
            )
        for label, queue in monitored.queues.items():
            depth = queue.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic=cloudwatch.Stats.MAXIMUM
            )
            self._alarm(f"{_id(label)}Depth", depth, f"{label}: messages waiting for an operator")
        for name, function in monitored.functions.items():
            self._alarm(
                f"{name}Errors", function.metric_errors(period=PERIOD), f"{name}: function errors"
            )

    def _alarm(self, alarm_id: str, metric: cloudwatch.IMetric, description: str) -> None:
        alarm = cloudwatch.Alarm(
            self,
            alarm_id,
            alarm_description=description,
            metric=metric,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms.append(alarm)


class OpsDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        monitored: Monitored,
        alarms: Sequence[cloudwatch.IAlarm],
    ) -> None:
        super().__init__(scope, construct_id)
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=name)
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24, height=4)
        )
        for wf_id, (_, machine) in monitored.workflows.items():
            dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title=f"{wf_id}: executions",
                    width=12,
                    left=[
                        machine.metric_started(period=PERIOD, label="started"),
                        machine.metric_succeeded(period=PERIOD, label="succeeded"),
                        machine.metric_failed(period=PERIOD, label="failed"),
                        machine.metric_timed_out(period=PERIOD, label="timed out"),
                    ],
                ),
                cloudwatch.GraphWidget(
                    title=f"{wf_id}: KPIs",
                    width=12,
                    left=[kpi_metric(kpi) for wf, kpi in monitored.kpis() if wf.id == wf_id],
                ),
            )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Dead-letter and parked queues: messages waiting",
                width=12,
                left=[
                    q.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic=cloudwatch.Stats.MAXIMUM, label=label
                    )
                    for label, q in monitored.queues.items()
                ],
            ),
            cloudwatch.GraphWidget(
                title="Function errors",
                width=12,
                left=[
                    fn.metric_errors(period=PERIOD, label=name)
                    for name, fn in monitored.functions.items()
                ],
            ),
        )


def _id(label: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in label.replace("-", " ").split())
