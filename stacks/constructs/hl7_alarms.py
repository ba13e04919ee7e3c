"""The MLLP listener's alarms (careflow-<env>-hl7), each with an action on the ops topic."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.constructs.mllp_listener import MllpListener

PERIOD = Duration.minutes(1)
DESCRIPTION_PREFIX = "MLLP listener: "


class Hl7Alarms(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, topic: sns.ITopic, listener: MllpListener
    ) -> None:
        super().__init__(scope, construct_id)
        action = cloudwatch_actions.SnsAction(topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        unhealthy = listener.target_group.metrics.un_healthy_host_count(
            period=PERIOD, statistic=cloudwatch.Stats.MAXIMUM
        )
        # Container Insights (on for the cluster) publishes the service's running tasks.
        running = cloudwatch.Metric(
            namespace="ECS/ContainerInsights",
            metric_name="RunningTaskCount",
            dimensions_map={
                "ClusterName": listener.cluster.cluster_name,
                "ServiceName": listener.service.service_name,
            },
            statistic=cloudwatch.Stats.MINIMUM,
            period=PERIOD,
        )
        specs = {
            "UnhealthyTargets": (
                unhealthy,
                0,
                cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                cloudwatch.TreatMissingData.NOT_BREACHING,
                "a task fails the NLB's TCP health check, three minutes running",
            ),
            "TasksBelowDesired": (
                running,
                listener.desired_count,
                cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                # No data is no service: Container Insights reports while tasks run.
                cloudwatch.TreatMissingData.BREACHING,
                f"fewer than {listener.desired_count} tasks running, three minutes running",
            ),
        }
        for name, (metric, threshold, operator, missing, description) in specs.items():
            alarm = cloudwatch.Alarm(
                self,
                name,
                alarm_description=DESCRIPTION_PREFIX + description,
                metric=metric,
                threshold=threshold,
                comparison_operator=operator,
                evaluation_periods=3,
                treat_missing_data=missing,
            )
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            self.alarms[name] = alarm
