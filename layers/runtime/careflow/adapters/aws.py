"""Step Functions, EventBridge and SQS behind their ports."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from careflow.ports import DuplicateExecution, StaleTaskToken


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class StepFunctionsEngine:
    def __init__(self, client: Any) -> None:
        self._sfn = client

    def start(self, state_machine_arn: str, name: str, payload: Mapping[str, Any]) -> str:
        try:
            resp = self._sfn.start_execution(
                stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload)
            )
        except ClientError as exc:
            if _code(exc) == "ExecutionAlreadyExists":
                raise DuplicateExecution(name) from None
            raise
        return str(resp["executionArn"])

    def send_task_success(self, token: str, output: Mapping[str, Any]) -> None:
        try:
            self._sfn.send_task_success(taskToken=token, output=json.dumps(output))
        except ClientError as exc:
            if _code(exc) in ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken"):
                raise StaleTaskToken(_code(exc)) from None
            raise

    def send_task_failure(self, token: str, error: str, cause: str) -> None:
        try:
            self._sfn.send_task_failure(taskToken=token, error=error, cause=cause)
        except ClientError as exc:
            if _code(exc) in ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken"):
                raise StaleTaskToken(_code(exc)) from None
            raise

    def stop(self, execution_arn: str, error: str, cause: str) -> bool:
        try:
            status = self._sfn.describe_execution(executionArn=execution_arn)["status"]
        except ClientError as exc:
            if _code(exc) == "ExecutionDoesNotExist":
                return False
            raise
        if status != "RUNNING":
            return False
        self._sfn.stop_execution(executionArn=execution_arn, error=error, cause=cause)
        return True


class EventBridgePublisher:
    def __init__(self, client: Any, bus_name: str) -> None:
        self._events = client
        self._bus = bus_name

    def publish(self, source: str, detail_type: str, detail: Mapping[str, Any]) -> None:
        resp = self._events.put_events(
            Entries=[
                {
                    "EventBusName": self._bus,
                    "Source": source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, default=str),
                }
            ]
        )
        if resp.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge rejected {detail_type}: {resp['Entries']}")


class SqsParkingLot:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def park(self, event: Mapping[str, Any], reason: str, *, event_id: str = "") -> None:
        attributes = {"reason": {"DataType": "String", "StringValue": reason[:1024]}}
        if event_id:
            attributes["event_id"] = {"DataType": "String", "StringValue": event_id[:256]}
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=json.dumps(event, default=str),
            MessageAttributes=attributes,
        )

    def take(self, event_id: str) -> list[dict[str, Any]]:
        """Reads the queue through once (each message hidden for a minute while it is
        looked at), deleting and returning the messages parked under ``event_id``."""
        found: list[dict[str, Any]] = []
        seen: set[str] = set()
        while True:
            messages = self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                VisibilityTimeout=60,
                WaitTimeSeconds=0,
            ).get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in seen]
            if not fresh:
                return found
            for message in fresh:
                seen.add(message["MessageId"])
                attrs = message.get("MessageAttributes") or {}
                if (attrs.get("event_id") or {}).get("StringValue") == event_id:
                    found.append(json.loads(message["Body"]))
                    self._sqs.delete_message(
                        QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"]
                    )
