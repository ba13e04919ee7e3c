"""SQS queues: KMS-encrypted with the messaging key, TLS-only, 14-day retention."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.compliance import acknowledge

RETENTION = Duration.days(14)  # the SQS maximum: time for an operator to look and redrive


def encrypted_queue(
    scope: Construct,
    construct_id: str,
    *,
    queue_name: str,
    key: kms.IKey,
    dead_letter_queue: sqs.IQueue | None = None,
    max_receive_count: int = 5,
) -> sqs.Queue:
    return sqs.Queue(
        scope,
        construct_id,
        queue_name=queue_name,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        data_key_reuse=Duration.minutes(15),
        enforce_ssl=True,
        retention_period=RETENTION,
        dead_letter_queue=(
            sqs.DeadLetterQueue(queue=dead_letter_queue, max_receive_count=max_receive_count)
            if dead_letter_queue
            else None
        ),
    )


class QueueWithDeadLetter(Construct):
    """A queue that is consumed, and the DLQ its poison messages go to."""

    def __init__(
        self, scope: Construct, construct_id: str, *, queue_name: str, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = encrypted_queue(
            self, "DeadLetterQueue", queue_name=f"{queue_name}-dlq", key=key
        )
        self.queue = encrypted_queue(
            self, "Queue", queue_name=queue_name, key=key, dead_letter_queue=self.dead_letter_queue
        )


def event_target_dead_letter_queue(
    scope: Construct, construct_id: str, *, queue_name: str, key: kms.IKey
) -> sqs.Queue:
    """The DLQ of one EventBridge rule target."""
    queue = encrypted_queue(scope, construct_id, queue_name=queue_name, key=key)
    acknowledge(
        queue,
        "AwsSolutions-SQS3",
        "This queue is itself a dead-letter queue: the DeadLetterConfig of an EventBridge rule "
        "target, which cdk-nag does not recognise (it only sees SQS redrive and Lambda DLQs). "
        "A DLQ of a DLQ adds nothing: an alarm fires on depth > 0 and an operator inspects and "
        "redrives the events.",
    )
    return queue
