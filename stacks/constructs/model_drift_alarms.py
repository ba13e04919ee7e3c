"""One CloudWatch alarm per triage model on its drift (``ModelDriftPsi``, emitted daily by
the ModelDrift function), at the ai-models policy's ``drift_alarm_psi``, paging the ops
topic (alarm and OK). A model with free-text features is measured on its other features
(the audit never keeps text); one with text alone could not be, and would get no alarm."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from careflow.observability import MODEL_DRIFT_METRIC, NAMESPACE, SERVICE

DESCRIPTION_PREFIX = "Model drift: "


def measured_models() -> list[str]:
    """The models the drift check measures: every registered one with a non-text feature."""
    from careflow.ml import registry
    from careflow.ml.drift_check import measurable

    return [d.id for d in registry.definitions().values() if measurable(d)]


def alarm_line() -> float:
    """The enterprise ai-models policy's drift_alarm_psi, as packaged."""
    from careflow.ml.drift_check import policy_values

    return policy_values()[1]


class ModelDriftAlarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        action = cloudwatch_actions.SnsAction(topic)
        line = alarm_line()
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for model_id in measured_models():
            metric = cloudwatch.Metric(
                namespace=NAMESPACE,
                metric_name=MODEL_DRIFT_METRIC,
                dimensions_map={"service": SERVICE, "model_id": model_id},
                statistic=cloudwatch.Stats.MAXIMUM,
                period=Duration.days(1),
            )
            alarm = cloudwatch.Alarm(
                self,
                f"Drift-{model_id}",
                alarm_description=(
                    f"{DESCRIPTION_PREFIX}{model_id}'s recent inputs moved from its training "
                    f"inputs (PSI >= {line}): docs/runbook.md, a drift alarm fired"
                ),
                metric=metric,
                threshold=line,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            self.alarms[model_id] = alarm
