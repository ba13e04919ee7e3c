"""Dashboards and alarms from cdk-monitoring-constructs: one dashboard per workflow, one
executive dashboard, and the alarms each facade creates, all with the ops topic as alarm
and OK action (docs/deploy.md, "Observability").

What the library does not do and is written here: the ``Careflow`` metrics (Powertools EMF
with the ``service`` dimension) are plain ``cloudwatch.Metric`` objects handed to
``monitor_custom``; the API's alarms stay in :mod:`stacks.constructs.api_alarms`
(the executive dashboard shows the API through ``monitor_api_gateway`` without alarms).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cdk_monitoring_constructs as mc
from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from careflow.catalog import SHARED_FUNCTIONS, Kpi, Workflow
from stacks.constructs.operations import METRICS_NAMESPACE, SERVICE_NAME

KPI_STATISTIC = {
    "Count": cloudwatch.Stats.SUM,
    "Seconds": cloudwatch.Stats.AVERAGE,
    "Percent": cloudwatch.Stats.AVERAGE,
}
UNROUTED_METRIC = "EventsUnrouted"  # lambdas/intake.py
ENDED_BADLY_METRIC = "ExecutionsEndedBadly"  # lambdas/execution_status.py
SLA_BREACH_METRIC = "HumanTasksEscalated"  # careflow.kit.human_tasks.escalate_human_task
# Escalations per hour before the ops topic hears of it: one escalation is the workflow
# doing its job, a run of them is a team (or a rule) not keeping up.
SLA_BREACHES_PER_HOUR = 5
PERIOD = Duration.minutes(5)
NOT_BREACHING = cloudwatch.TreatMissingData.NOT_BREACHING


@dataclass(frozen=True)
class Monitored:
    workflows: Mapping[str, tuple[Workflow, sfn.IStateMachine]]  # by workflow id
    functions: Mapping[str, lambda_.IFunction]  # by logical name
    queues: Mapping[str, sqs.IQueue]  # DLQs and the parking queue, by label
    table: dynamodb.ITable | None = None
    api_stage: apigw.Stage | None = None


def careflow_metric(
    name: str, statistic: str = cloudwatch.Stats.SUM, period: Duration = PERIOD
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE_NAME},
        statistic=statistic,
        period=period,
        label=name,
    )


def kpi_metric(kpi: Kpi) -> cloudwatch.Metric:
    return careflow_metric(kpi.name, KPI_STATISTIC[kpi.unit], Duration.hours(1))


def _any(description: str) -> mc.ErrorCountThreshold:
    return mc.ErrorCountThreshold(
        max_error_count=0,
        alarm_description_override=description,
        treat_missing_data_override=NOT_BREACHING,
    )


class CareflowMonitoring(Construct):
    """A facade per workflow (its dashboard and alarms) and an executive facade."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        topic: sns.ITopic,
        monitored: Monitored,
    ) -> None:
        super().__init__(scope, construct_id)
        action = mc.SnsAlarmActionStrategy(on_alarm_topic=topic, on_ok_topic=topic)
        self._prefix = prefix
        self._action = action
        self.facades: dict[str, mc.MonitoringFacade] = {}
        self.dashboard_names: dict[str, str] = {}
        alarmed: set[str] = set()

        for wf_id, (wf, machine) in monitored.workflows.items():
            facade = self._facade(wf_id)
            facade.add_large_header(f"{wf.name} ({wf_id})")
            facade.monitor_step_function(
                state_machine=machine,
                human_readable_name=f"{wf_id} executions",
                alarm_friendly_name="executions",
                add_failed_execution_count_alarm={"Failed": _any(f"{wf_id}: executions failed")},
                add_timed_out_execution_count_alarm={
                    "TimedOut": _any(f"{wf_id}: executions timed out")
                },
                add_throttled_execution_count_alarm={
                    "Throttled": _any(f"{wf_id}: executions throttled")
                },
                add_aborted_execution_count_alarm={"Aborted": _any(f"{wf_id}: executions aborted")},
            )
            if wf.kpis:
                facade.monitor_custom(
                    human_readable_name=f"{wf_id} KPIs",
                    alarm_friendly_name="kpis",
                    metric_groups=[
                        mc.CustomMetricGroup(
                            title=f"{wf_id}: KPIs",
                            metrics=[kpi_metric(kpi) for kpi in wf.kpis],
                        )
                    ],
                )
            for spec in wf.functions:
                function = monitored.functions.get(spec.name)
                if function is None:
                    continue
                # A kit function serves several workflows: it shows on each dashboard,
                # its alarms are created once.
                self._function(facade, spec.name, function, alarm=spec.name not in alarmed)
                alarmed.add(spec.name)

        executive = self._facade("executive")
        self.executive = executive
        executive.add_large_header("careflow: all workflows")
        machines = [(wf_id, machine) for wf_id, (_, machine) in monitored.workflows.items()]
        period = Duration.hours(1)
        executive.monitor_custom(
            human_readable_name="Executions by workflow",
            alarm_friendly_name="executions",
            metric_groups=[
                mc.CustomMetricGroup(
                    title="Executions started",
                    metrics=[m.metric_started(period=period, label=w) for w, m in machines],
                ),
                mc.CustomMetricGroup(
                    title="Executions succeeded",
                    metrics=[m.metric_succeeded(period=period, label=w) for w, m in machines],
                ),
                mc.CustomMetricGroup(
                    title="Executions failed",
                    metrics=[m.metric_failed(period=period, label=w) for w, m in machines],
                ),
            ],
        )
        executive.monitor_custom(
            human_readable_name="SLA breaches and unrouted events",
            alarm_friendly_name="careflow",
            metric_groups=[
                mc.CustomMetricGroup(
                    title="SLA breaches (human tasks escalated, per hour)",
                    metrics=[
                        mc.CustomMetricWithAlarm(
                            metric=careflow_metric(SLA_BREACH_METRIC, period=period),
                            alarm_friendly_name="SlaBreaches",
                            add_alarm={
                                "Breaches": mc.CustomThreshold(
                                    threshold=SLA_BREACHES_PER_HOUR,
                                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                                    treat_missing_data_override=NOT_BREACHING,
                                    alarm_description_override=(
                                        f"SLA breaches: over {SLA_BREACHES_PER_HOUR} human tasks"
                                        " escalated in an hour"
                                    ),
                                )
                            },
                        )
                    ],
                ),
                mc.CustomMetricGroup(
                    # Every workflow's bad ends (failed, timed out, aborted), as ExecutionStatus
                    # marks them on the instances; the per-machine alarms page for them.
                    title="Executions ended badly (marked by ExecutionStatus)",
                    metrics=[careflow_metric(ENDED_BADLY_METRIC, period=period)],
                ),
                mc.CustomMetricGroup(
                    title="Unrouted events",
                    metrics=[
                        mc.CustomMetricWithAlarm(
                            metric=careflow_metric(UNROUTED_METRIC),
                            alarm_friendly_name="Unrouted",
                            add_alarm={
                                "Unrouted": mc.CustomThreshold(
                                    threshold=0,
                                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                                    treat_missing_data_override=NOT_BREACHING,
                                    alarm_description_override=(
                                        "intake: events no workflow routes (parked as unrouted)"
                                    ),
                                )
                            },
                        )
                    ],
                ),
            ],
        )
        # Dozens of DLQs: their alarms from the library, one graph of all their depths
        # instead of a row of widgets each (the template's 1 MB limit).
        executive.monitor_custom(
            human_readable_name="Dead-letter and parked queues",
            alarm_friendly_name="queues",
            metric_groups=[
                mc.CustomMetricGroup(
                    title="Messages waiting",
                    metrics=[
                        q.metric_approximate_number_of_messages_visible(
                            statistic=cloudwatch.Stats.MAXIMUM, label=label
                        )
                        for label, q in monitored.queues.items()
                    ],
                )
            ],
        )
        for label, queue in monitored.queues.items():
            executive.monitor_sqs_queue(
                queue=queue,
                human_readable_name=label,
                alarm_friendly_name=_id(label),
                add_to_detail_dashboard=False,
                add_to_summary_dashboard=False,
                add_queue_max_size_alarm={
                    "Depth": mc.MaxMessageCountThreshold(
                        max_message_count=0,
                        alarm_description_override=f"{label}: messages waiting for an operator",
                        treat_missing_data_override=NOT_BREACHING,
                    )
                },
            )
        for spec in SHARED_FUNCTIONS:
            function = monitored.functions.get(spec.name)
            if function is not None and spec.name not in alarmed:
                self._function(executive, spec.name, function, alarm=True)
                alarmed.add(spec.name)
        for name, function in monitored.functions.items():
            if name not in alarmed:
                self._function(executive, name, function, alarm=True)
                alarmed.add(name)
        if monitored.table is not None:
            executive.monitor_dynamo_table(
                table=monitored.table,
                human_readable_name="workflow state table",
                alarm_friendly_name="state-table",
                add_read_throttled_events_count_alarm={
                    "ReadThrottled": mc.ThrottledEventsThreshold(
                        max_throttled_events_threshold=0,
                        alarm_description_override="state table: reads throttled",
                        treat_missing_data_override=NOT_BREACHING,
                    )
                },
                add_write_throttled_events_count_alarm={
                    "WriteThrottled": mc.ThrottledEventsThreshold(
                        max_throttled_events_threshold=0,
                        alarm_description_override="state table: writes throttled",
                        treat_missing_data_override=NOT_BREACHING,
                    )
                },
            )
        if monitored.api_stage is not None:
            # The API's alarms are hand-written (api_alarms.py): the dashboard only.
            executive.monitor_api_gateway(
                api=monitored.api_stage.rest_api,
                api_stage=monitored.api_stage.stage_name,
                human_readable_name="/v1 API",
                alarm_friendly_name="api",
            )

    def _facade(self, name: str) -> mc.MonitoringFacade:
        dashboard_name = f"{self._prefix}-{name}"
        facade = mc.MonitoringFacade(
            self,
            _id(name),
            alarm_factory_defaults=mc.AlarmFactoryDefaults(
                actions_enabled=True,
                alarm_name_prefix=dashboard_name,
                # One bad period pages: a failed execution or a dead letter is news at once.
                evaluation_periods=1,
                datapoints_to_alarm=1,
                action=self._action,
            ),
            metric_factory_defaults=mc.MetricFactoryDefaults(),
            dashboard_factory=mc.DefaultDashboardFactory(
                self,
                f"{_id(name)}Dashboards",
                dashboard_name_prefix=dashboard_name,
                create_dashboard=True,
                create_summary_dashboard=False,
                create_alarm_dashboard=False,
            ),
        )
        self.facades[name] = facade
        self.dashboard_names[name] = dashboard_name
        return facade

    def _function(
        self, facade: mc.MonitoringFacade, name: str, function: lambda_.IFunction, *, alarm: bool
    ) -> None:
        facade.monitor_lambda_function(
            lambda_function=function,
            human_readable_name=name,
            alarm_friendly_name=name,
            add_fault_count_alarm={"Errors": _any(f"{name}: function errors")} if alarm else {},
            add_throttles_count_alarm=(
                {"Throttles": _any(f"{name}: function throttled")} if alarm else {}
            ),
        )


def _id(label: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in label.replace("-", " ").split())
