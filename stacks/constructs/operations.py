"""What operations hear: the ops topic every alarm pages, and where the metrics are.

The dashboards and most alarms are in :mod:`stacks.constructs.monitoring`
(cdk-monitoring-constructs); the API's and the MLLP listener's in ``api_alarms`` and
``hl7_alarms``.
"""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

METRICS_NAMESPACE = "Careflow"  # POWERTOOLS_METRICS_NAMESPACE of every function
SERVICE_NAME = "careflow"  # POWERTOOLS_SERVICE_NAME: Powertools adds it as dimension "service"


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
