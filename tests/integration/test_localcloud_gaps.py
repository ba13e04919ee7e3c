"""careflow.localcloud.moto against a real in-process moto server (moto 5.2.5).

Each test runs real ASL in moto's interpreter with our Python functions as the
Lambdas, the virtual clock driving Wait/Timeout/Retry/Heartbeat, and EventBridge
rules delivering to Step Functions and Lambda targets.
"""

from __future__ import annotations

import inspect
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest

from careflow import clock as process_clock
from careflow.clock import VirtualClock
from careflow.localcloud import moto as patched_moto
from careflow.localcloud.moto import fidelity, patches, shapes, state

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/careflow-test"


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------------------
# Fixtures: one moto server for the module, the patches installed per test
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    saved_env = {k: os.environ.get(k) for k in _ENV}
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        MOTO_PORT=str(port),  # moto's boto_client_for targets localhost:$MOTO_PORT
    )
    saved_config = (
        default_user_config["stepfunctions"].get("execute_state_machine"),
        default_user_config["lambda"].get("use_docker"),
    )
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    default_user_config["lambda"]["use_docker"] = False
    # A session LocalCloud started earlier in this process has the patches installed: these
    # tests install and uninstall them, and hand them back to it at the end.
    running = state.current()
    # every argument install takes (the execution_ended listener too: without it the
    # session cloud stops hearing executions end, and its ExecutionStatus tests time out)
    handed_back = (
        None
        if running is None
        else {
            name: getattr(running, name)
            for name in inspect.signature(patched_moto.install).parameters
        }
    )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        patched_moto.uninstall()
        server.stop()
        if handed_back is not None:  # (install on an installed state swaps these in place)
            patched_moto.install(**handed_back)
        default_user_config["stepfunctions"]["execute_state_machine"] = saved_config[0]
        default_user_config["lambda"]["use_docker"] = saved_config[1]
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "MOTO_PORT")


class PayerUnavailable(Exception):
    """A custom error: Step Functions sees it as errorType 'PayerUnavailable'."""


class Functions:
    """The Lambda dispatcher given to patched_moto.install: name -> Python handler."""

    def __init__(self) -> None:
        self.handlers: dict[str, Callable[[Any], Any]] = {}
        self.calls: list[tuple[str, str, Any]] = []  # (short name, as called, event)
        self._lock = threading.Lock()

    def __call__(self, function: str, payload: bytes) -> tuple[bytes, str | None]:
        name = function.rsplit(":function:", maxsplit=1)[-1].split(":", maxsplit=1)[0]
        event = json.loads(payload)
        with self._lock:
            self.calls.append((name, function, event))
        result = self.handlers[name](event)  # an exception: reported as Unhandled
        return json.dumps(result).encode(), None

    def called(self, name: str) -> list[Any]:
        with self._lock:
            return [event for short, _, event in self.calls if short == name]


@pytest.fixture
def functions() -> Functions:
    return Functions()


@pytest.fixture
def vclock() -> VirtualClock:
    return VirtualClock(speed=1)


@pytest.fixture
def cloud(endpoint: str, functions: Functions, vclock: VirtualClock) -> Iterator[dict[str, Any]]:
    patched_moto.install(clock=vclock, invoke=functions)
    clients = {
        name: boto3.client(name, endpoint_url=endpoint, region_name=REGION)
        for name in ("stepfunctions", "events", "sqs", "lambda", "iam")
    }
    try:
        yield clients
    finally:
        patched_moto.uninstall()


def create_state_machine(sfn: Any, definition: dict[str, Any]) -> str:
    return sfn.create_state_machine(
        name=unique("sm"), definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]


def start(sfn: Any, machine: str, payload: Any = None) -> str:
    return sfn.start_execution(stateMachineArn=machine, input=json.dumps(payload or {}))[
        "executionArn"
    ]


def finish(sfn: Any, execution: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.02)


def eventually(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def failure_of(sfn: Any, execution: str) -> tuple[str, str]:
    events = sfn.get_execution_history(executionArn=execution)["events"]
    failed = [e for e in events if e["type"] == "ExecutionFailed"]
    details = failed[-1]["executionFailedEventDetails"]
    return details.get("error", ""), details.get("cause", "")


# --------------------------------------------------------------------------------------
# 1. Lambda tasks run our Python functions in-process
# --------------------------------------------------------------------------------------


def test_lambda_tasks_run_in_process_in_both_resource_forms(cloud, functions):
    sfn = cloud["stepfunctions"]
    functions.handlers["score"] = lambda event: {"score": event["value"] * 2}
    functions.handlers["label"] = lambda event: {"label": f"score={event['score']}"}
    machine = create_state_machine(
        sfn,
        {
            "StartAt": "Score",
            "States": {
                "Score": {"Type": "Task", "Resource": function_arn("score"), "Next": "Label"},
                "Label": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": function_arn("label"), "Payload.$": "$"},
                    "ResultSelector": {"label.$": "$.Payload.label", "status.$": "$.StatusCode"},
                    "ResultPath": "$.labelled",
                    "End": True,
                },
            },
        },
    )
    described = finish(sfn, start(sfn, machine, {"value": 21}))
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {
        "score": 42,
        "labelled": {"label": "score=42", "status": 200},
    }
    assert functions.called("score") == [{"value": 21}]
    assert functions.called("label") == [{"score": 42}]


@pytest.mark.parametrize("form", ["direct", "integration"])
def test_a_raised_error_is_caught_by_its_error_type(cloud, functions, form):
    sfn = cloud["stepfunctions"]

    def eligibility(event):
        raise PayerUnavailable(f"payer {event['payer']} is down")

    functions.handlers["eligibility"] = eligibility
    task: dict[str, Any] = (
        {"Type": "Task", "Resource": function_arn("eligibility")}
        if form == "direct"
        else {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "eligibility", "Payload.$": "$"},
        }
    )
    task["Catch"] = [
        {"ErrorEquals": ["States.Timeout"], "Next": "Wrong"},
        {"ErrorEquals": ["PayerUnavailable"], "ResultPath": "$.error", "Next": "Manual"},
    ]
    task["End"] = True
    machine = create_state_machine(
        sfn,
        {
            "StartAt": "Check",
            "States": {
                "Check": task,
                "Manual": {
                    "Type": "Pass",
                    "Result": "manual review",
                    "ResultPath": "$.route",
                    "End": True,
                },
                "Wrong": {"Type": "Fail", "Error": "Wrong"},
            },
        },
    )
    described = finish(sfn, start(sfn, machine, {"payer": "acme"}))
    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert output["route"] == "manual review"
    assert output["error"]["Error"] == "PayerUnavailable"
    assert json.loads(output["error"]["Cause"]) == {
        "errorType": "PayerUnavailable",
        "errorMessage": "payer acme is down",
    }


def test_an_uncaught_error_fails_the_execution_with_its_name(cloud, functions):
    sfn = cloud["stepfunctions"]

    def boom(_event):
        raise PayerUnavailable("down")

    functions.handlers["boom"] = boom
    machine = create_state_machine(
        sfn,
        {
            "StartAt": "T",
            "States": {"T": {"Type": "Task", "Resource": function_arn("boom"), "End": True}},
        },
    )
    execution = start(sfn, machine)
    assert finish(sfn, execution)["status"] == "FAILED"
    assert failure_of(sfn, execution)[0] == "PayerUnavailable"


# --------------------------------------------------------------------------------------
# 4. Virtual time: Retry, Wait, Timeout, Heartbeat, state machine TimeoutSeconds
# --------------------------------------------------------------------------------------


def test_retry_interval_passes_on_the_virtual_clock(cloud, functions, vclock):
    sfn = cloud["stepfunctions"]
    attempts: list[float] = []

    def flaky(_event):
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise PayerUnavailable("try again in an hour")
        return {"ok": True}

    functions.handlers["flaky"] = flaky
    machine = create_state_machine(
        sfn,
        {
            "StartAt": "T",
            "States": {
                "T": {
                    "Type": "Task",
                    "Resource": function_arn("flaky"),
                    "Retry": [
                        {
                            "ErrorEquals": ["PayerUnavailable"],
                            "IntervalSeconds": 3600,
                            "MaxAttempts": 2,
                        }
                    ],
                    "End": True,
                }
            },
        },
    )
    execution = start(sfn, machine)
    assert eventually(lambda: len(attempts) == 1)
    assert vclock.wait_for_timer(3500, 3600), "the retry interval runs on the clock"
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    assert len(attempts) == 1, "the retry waits an hour of clock time"
    t0 = time.monotonic()
    vclock.advance(3600)
    described = finish(sfn, execution)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"ok": True}
    assert time.monotonic() - t0 < 2


def test_wait_of_two_days_ends_on_advance(cloud, vclock):
    sfn = cloud["stepfunctions"]
    machine = create_state_machine(
        sfn,
        {
            "StartAt": "Cooling",
            "States": {
                "Cooling": {"Type": "Wait", "Seconds": 2 * 86400, "Next": "Until"},
                "Until": {"Type": "Wait", "TimestampPath": "$.due", "Next": "ForPath"},
                "ForPath": {"Type": "Wait", "SecondsPath": "$.pause", "End": True},
            },
        },
    )
    due = (vclock.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    execution = start(sfn, machine, {"due": due, "pause": 3600})
    assert vclock.wait_for_timer(timedelta(days=1.9), timedelta(days=2))
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    t0 = time.monotonic()
    vclock.advance(timedelta(days=2))  # Cooling ends; Until waits for 'due' (a day more)
    assert vclock.wait_for_timer(timedelta(hours=23), timedelta(days=1))
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    vclock.advance(timedelta(days=1, seconds=1))  # Until ends; ForPath waits an hour
    assert vclock.wait_for_timer(3500, 3600)
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    vclock.advance(3600)
    described = finish(sfn, execution)
    assert described["status"] == "SUCCEEDED"
    assert time.monotonic() - t0 < 2
    # Execution dates are clock dates: three days and an hour passed.
    assert described["stopDate"] - described["startDate"] >= timedelta(days=3, hours=1)


def test_wait_for_task_token_times_out_or_resumes(cloud, functions, vclock):
    sfn = cloud["stepfunctions"]
    tokens: dict[str, str] = {}
    functions.handlers["ask_payer"] = lambda event: (
        tokens.update({event["case"]: event["token"]}) or {}
    )
    ask = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {
            "FunctionName": function_arn("ask_payer"),
            "Payload": {"case.$": "$.case", "token.$": "$$.Task.Token"},
        },
        "TimeoutSeconds": 72 * 3600,
        "End": True,
    }
    machine = create_state_machine(sfn, {"StartAt": "Ask", "States": {"Ask": ask}})
    with_heartbeat = create_state_machine(
        sfn, {"StartAt": "Ask", "States": {"Ask": {**ask, "HeartbeatSeconds": 3600}}}
    )
    silent = start(sfn, machine, {"case": "silent"})
    answered = start(sfn, machine, {"case": "answered"})
    quiet = start(sfn, with_heartbeat, {"case": "quiet"})
    assert eventually(lambda: len(tokens) == 3)

    sfn.send_task_success(taskToken=tokens["answered"], output=json.dumps({"decision": "approved"}))
    described = finish(sfn, answered)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"decision": "approved"}

    assert vclock.wait_for_timer(3500, 3600)  # the heartbeat timer
    vclock.advance(3601)  # past the heartbeat, far from the 72 h timeout
    assert finish(sfn, quiet)["status"] == "FAILED"
    # moto 5.2.5 reports a heartbeat expiry as States.Timeout (AWS: States.HeartbeatTimeout,
    # which States.Timeout also catches), so the ASL catches States.Timeout.
    assert failure_of(sfn, quiet)[0] == "States.Timeout"
    assert sfn.describe_execution(executionArn=silent)["status"] == "RUNNING"

    t0 = time.monotonic()
    vclock.advance(72 * 3600)
    assert finish(sfn, silent)["status"] == "FAILED"
    assert failure_of(sfn, silent)[0] == "States.Timeout"
    assert time.monotonic() - t0 < 2


def test_stop_execution_ends_a_task_token_wait_aborted_without_its_catch(cloud, functions):
    sfn = cloud["stepfunctions"]
    tokens: dict[str, str] = {}
    caught: list[Any] = []
    functions.handlers["ask"] = lambda event: tokens.update({event["case"]: event["token"]}) or {}
    functions.handlers["on_error"] = lambda event: caught.append(event) or {}
    wait = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {
            "FunctionName": function_arn("ask"),
            "Payload": {"case.$": "$.case", "token.$": "$$.Task.Token"},
        },
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "OnError"}],
        "End": True,
    }
    on_error = {"Type": "Task", "Resource": function_arn("on_error"), "End": True}
    for extra in ({}, {"TimeoutSeconds": 3600}):  # inline, and in a thread of its own
        machine = create_state_machine(
            sfn, {"StartAt": "Ask", "States": {"Ask": {**wait, **extra}, "OnError": on_error}}
        )
        case = unique("case")
        execution = start(sfn, machine, {"case": case})
        assert eventually(lambda case=case: case in tokens)
        sfn.stop_execution(executionArn=execution, error="Cancelled", cause="appointment")
        assert finish(sfn, execution)["status"] == "ABORTED"
        assert history_types(sfn, execution)[-1] == "ExecutionAborted"
    assert caught == []  # the stop ran no Catch


def test_stop_execution_right_after_the_start_aborts_it(cloud, functions, monkeypatch):
    """A StopExecution that comes before moto's worker thread has built the program's
    environment (or run its first state) stops the execution, as on AWS: it was an
    InternalFailure (AttributeError) or, a little later, ignored."""
    sfn = cloud["stepfunctions"]
    ran: list[Any] = []
    functions.handlers["step"] = lambda event: ran.append(event) or {}
    machine = create_state_machine(
        sfn,
        {
            "StartAt": "Hold",
            "States": {
                "Hold": {"Type": "Wait", "Seconds": 3600, "Next": "Step"},
                "Step": {"Type": "Task", "Resource": function_arn("step"), "End": True},
            },
        },
    )
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    parse = ExecutionWorker._get_evaluation_entrypoint

    def slow_parse(worker: Any) -> Any:  # the stop comes before the environment exists
        time.sleep(0.1)
        return parse(worker)

    monkeypatch.setattr(ExecutionWorker, "_get_evaluation_entrypoint", slow_parse)
    for _ in range(5):
        execution = start(sfn, machine, {})
        sfn.stop_execution(executionArn=execution, error="Cancelled", cause="rebooked")
        assert finish(sfn, execution)["status"] == "ABORTED"
        assert history_types(sfn, execution)[-1] == "ExecutionAborted"
    assert ran == []


def test_a_task_answer_while_another_execution_is_just_starting_reaches_its_execution(
    cloud, functions, monkeypatch
):
    """SendTaskSuccess/Failure walk every execution; one whose worker had not built its
    environment yet made them fail with AttributeError (InternalFailure), so a person's
    decision was lost whenever another case had just started."""
    sfn = cloud["stepfunctions"]
    tokens: dict[str, str] = {}
    functions.handlers["ask_slow"] = lambda event: (
        tokens.update({event["case"]: event["token"]}) or {}
    )
    machine = create_state_machine(
        sfn,
        {
            "StartAt": "Ask",
            "States": {
                "Ask": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    "Parameters": {
                        "FunctionName": function_arn("ask_slow"),
                        "Payload": {"case.$": "$.case", "token.$": "$$.Task.Token"},
                    },
                    "End": True,
                }
            },
        },
    )
    waiting = [start(sfn, machine, {"case": f"w{i}"}) for i in range(2)]
    assert eventually(lambda: len(tokens) == 2)
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    parse = ExecutionWorker._get_evaluation_entrypoint

    def slow_parse(worker: Any) -> Any:  # the newcomer has no environment for a while
        time.sleep(0.3)
        return parse(worker)

    monkeypatch.setattr(ExecutionWorker, "_get_evaluation_entrypoint", slow_parse)
    start(sfn, machine, {"case": "newcomer"})
    sfn.send_task_success(taskToken=tokens["w0"], output=json.dumps({"ok": True}))
    sfn.send_task_failure(taskToken=tokens["w1"], error="Declined", cause="by a person")
    assert finish(sfn, waiting[0])["status"] == "SUCCEEDED"
    assert finish(sfn, waiting[1])["status"] == "FAILED"
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.send_task_success(taskToken="no-such-token", output="{}")


def test_task_timeout_seconds_path_and_machine_timeout(cloud, functions, vclock):
    sfn = cloud["stepfunctions"]
    release = threading.Event()
    functions.handlers["slow"] = lambda _event: release.wait(10) and {}
    task_timeout = create_state_machine(
        sfn,
        {
            "StartAt": "T",
            "States": {
                "T": {
                    "Type": "Task",
                    "Resource": function_arn("slow"),
                    "TimeoutSecondsPath": "$.limit",
                    "End": True,
                }
            },
        },
    )
    machine_timeout = create_state_machine(
        sfn,
        {
            "TimeoutSeconds": 3600,
            "StartAt": "W",
            "States": {"W": {"Type": "Wait", "Seconds": 7200, "End": True}},
        },
    )
    try:
        slow = start(sfn, task_timeout, {"limit": 600})
        long_wait = start(sfn, machine_timeout)
        assert eventually(lambda: functions.called("slow"))
        assert vclock.wait_for_timer(590, 600)  # TimeoutSecondsPath
        assert vclock.wait_for_timer(3500, 3600)  # the state machine's TimeoutSeconds
        vclock.advance(601)
        assert finish(sfn, slow)["status"] == "FAILED"
        assert failure_of(sfn, slow)[0] == "States.Timeout"
        vclock.advance(3000)
        assert finish(sfn, long_wait)["status"] == "TIMED_OUT"
    finally:
        release.set()


def test_timestamps_as_aws_writes_and_reads_them(cloud, vclock):
    """moto 5.2.5: $$.Execution.StartTime is a datetime (DescribeExecution then fails
    with a 500), $$.State.EnteredTime is not a valid Wait timestamp, and Choice/Wait
    only accept '...:SSZ'. The patches make them behave like AWS."""
    sfn = cloud["stepfunctions"]
    machine = create_state_machine(
        sfn,
        {
            "StartAt": "Stamp",
            "States": {
                "Stamp": {
                    "Type": "Pass",
                    "Parameters": {
                        "started.$": "$$.Execution.StartTime",
                        "entered.$": "$$.State.EnteredTime",
                        "name.$": "$$.Execution.Name",
                        "due.$": "$.due",
                    },
                    "Next": "Late?",
                },
                "Late?": {
                    "Type": "Choice",
                    "Choices": [
                        {
                            "Variable": "$.due",
                            "TimestampLessThanEqualsPath": "$.entered",
                            "Next": "Late",
                        }
                    ],
                    "Default": "UntilEntered",
                },
                "UntilEntered": {"Type": "Wait", "TimestampPath": "$.entered", "Next": "Offset"},
                "Offset": {"Type": "Wait", "Timestamp": "2000-01-01T01:00:00+01:00", "End": True},
                "Late": {"Type": "Fail", "Error": "Late"},
            },
        },
    )
    due = (vclock.now() + timedelta(hours=1)).isoformat()  # '+00:00' offset, microseconds
    first = start(sfn, machine, {"due": due})
    second = start(sfn, machine, {"due": due})  # no name either: moto would call both 'None'
    assert first != second
    for execution in (first, second):
        described = finish(sfn, execution)
        assert described["status"] == "SUCCEEDED", failure_of(sfn, execution)
        output = json.loads(described["output"])
        assert output["name"] == execution.rsplit(":", 1)[1]
        for key in ("started", "entered"):
            assert fidelity.parse_timestamp(output[key]) is not None
            assert output[key].endswith("Z")
            assert len(output[key]) == len("2030-01-01T08:00:00.000Z")
    # A due date an hour ago (offset form, with microseconds) compares as a timestamp.
    overdue = start(sfn, machine, {"due": (vclock.now() - timedelta(hours=1)).isoformat()})
    assert finish(sfn, overdue)["status"] == "FAILED"
    assert failure_of(sfn, overdue)[0] == "Late"


# --------------------------------------------------------------------------------------
# 3. EventBridge targets
# --------------------------------------------------------------------------------------


def put_rule(events: Any, source: str) -> str:
    name = unique("rule")
    events.put_rule(Name=name, EventPattern=json.dumps({"source": [source]}))
    return name


def put_event(events: Any, source: str, detail: dict[str, Any]) -> dict[str, Any]:
    response = events.put_events(
        Entries=[{"Source": source, "DetailType": "CaseOpened", "Detail": json.dumps(detail)}]
    )
    assert response["FailedEntryCount"] == 0
    return response


def executions_of(sfn: Any, machine: str) -> list[dict[str, Any]]:
    return sfn.list_executions(stateMachineArn=machine)["executions"]


def test_rule_starts_state_machines_with_the_transformed_input(cloud, vclock):
    sfn, events = cloud["stepfunctions"], cloud["events"]
    echo = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    transformed, by_path, constant, whole = (create_state_machine(sfn, echo) for _ in range(4))
    source = unique("careflow.test")
    rule = put_rule(events, source)
    events.put_targets(
        Rule=rule,
        Targets=[
            {
                "Id": "transformed",
                "Arn": transformed,
                "InputTransformer": {
                    "InputPathsMap": {"patient": "$.detail.patient", "evt": "$"},
                    "InputTemplate": '{"patient": "<patient>", "event": <evt>}',
                },
            },
            {"Id": "by-path", "Arn": by_path, "InputPath": "$.detail"},
            {"Id": "constant", "Arn": constant, "Input": '{"fixed": true}'},
            {"Id": "whole", "Arn": whole},
        ],
    )
    put_event(events, source, {"patient": "p-1", "urgent": True})

    def input_of(machine: str) -> Any:
        found = eventually(lambda: executions_of(sfn, machine))
        assert found, f"no execution of {machine}"
        return json.loads(sfn.describe_execution(executionArn=found[0]["executionArn"])["input"])

    document = input_of(transformed)
    assert document["patient"] == "p-1"
    assert document["event"]["detail"] == {"patient": "p-1", "urgent": True}
    assert document["event"]["source"] == source
    assert document["event"]["detail-type"] == "CaseOpened"
    assert "ingestion-time" not in document["event"]
    assert input_of(by_path) == {"patient": "p-1", "urgent": True}
    assert input_of(constant) == {"fixed": True}
    event = input_of(whole)
    assert event["account"] == ACCOUNT
    assert event["detail"] == {"patient": "p-1", "urgent": True}
    # The event's time is on the local cloud's clock, as ISO-8601 like AWS.
    vclock.advance(timedelta(days=30))
    put_event(events, source, {"patient": "p-2"})
    later = eventually(lambda: len(executions_of(sfn, whole)) == 2 and executions_of(sfn, whole))
    newest = max(later, key=lambda e: e["startDate"])
    second = json.loads(sfn.describe_execution(executionArn=newest["executionArn"])["input"])
    assert second["time"][:10] == vclock.now().strftime("%Y-%m-%d")
    assert second["time"].endswith("Z")


def test_rule_invokes_a_lambda_target_asynchronously(cloud, functions):
    events = cloud["events"]
    functions.handlers["notify"] = lambda event: {"notified": event["patient"]}
    source = unique("careflow.test")
    rule = put_rule(events, source)
    events.put_targets(
        Rule=rule,
        Targets=[{"Id": "notify", "Arn": function_arn("notify"), "InputPath": "$.detail"}],
    )
    put_event(events, source, {"patient": "p-7"})
    assert eventually(lambda: functions.called("notify")) == [{"patient": "p-7"}]


def test_a_failing_lambda_target_lands_in_its_dlq(cloud, functions, vclock):
    events, sqs = cloud["events"], cloud["sqs"]
    calls: list[float] = []

    def broken(_event):
        calls.append(time.monotonic())
        raise PayerUnavailable("the payer gateway refused the request")

    functions.handlers["broken"] = broken
    dlq_url = sqs.create_queue(QueueName=unique("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    audit_url = sqs.create_queue(QueueName=unique("audit"))["QueueUrl"]
    audit_arn = sqs.get_queue_attributes(QueueUrl=audit_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    source = unique("careflow.test")
    rule = put_rule(events, source)
    events.put_targets(
        Rule=rule,
        Targets=[
            {"Id": "broken", "Arn": function_arn("broken"), "DeadLetterConfig": {"Arn": dlq_arn}},
            # moto raises NotImplementedError for an SNS target: it must not break the rest.
            {"Id": "unsupported", "Arn": f"arn:aws:sns:{REGION}:{ACCOUNT}:nowhere"},
            {"Id": "audit", "Arn": audit_arn},  # moto's own SQS delivery keeps working
        ],
    )
    put_event(events, source, {"patient": "p-9"})

    audit = sqs.receive_message(QueueUrl=audit_url, WaitTimeSeconds=1)["Messages"]
    assert json.loads(audit[0]["Body"])["detail"] == {"patient": "p-9"}

    def dead_letters() -> list[dict[str, Any]]:
        if len(calls) < 3:
            vclock.advance(120)  # Lambda retries async failures after ~1 and ~2 minutes
            return []
        return sqs.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"]).get(
            "Messages", []
        )

    messages = eventually(dead_letters, timeout=10)
    assert messages, "the failed event never reached the DLQ"
    assert len(calls) == 3, "one attempt and two retries"
    attributes = {k: v["StringValue"] for k, v in messages[0]["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "PayerUnavailable"
    assert attributes["ERROR_MESSAGE"] == "the payer gateway refused the request"
    assert attributes["TARGET_ARN"] == function_arn("broken")
    assert attributes["RULE_ARN"].endswith(f"rule/{rule}")
    assert json.loads(messages[0]["Body"])["detail"] == {"patient": "p-9"}


def test_state_machine_target_failures_and_the_start_execution_hook(cloud, functions, vclock):
    events, sqs = cloud["events"], cloud["sqs"]
    dlq_url = sqs.create_queue(QueueName=unique("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    missing = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{unique('gone')}"
    source = unique("careflow.test")
    rule = put_rule(events, source)
    events.put_targets(
        Rule=rule, Targets=[{"Id": "gone", "Arn": missing, "DeadLetterConfig": {"Arn": dlq_arn}}]
    )
    put_event(events, source, {"patient": "p-3"})
    messages = sqs.receive_message(
        QueueUrl=dlq_url, MessageAttributeNames=["All"], WaitTimeSeconds=1
    )["Messages"]
    attributes = {k: v["StringValue"] for k, v in messages[0]["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "StateMachineDoesNotExist"
    assert attributes["TARGET_ARN"] == missing

    started: list[tuple[str, Any]] = []
    patched_moto.install(
        clock=vclock,
        invoke=functions,
        start_execution=lambda arn, document: started.append((arn, json.loads(document))),
    )
    put_event(events, source, {"patient": "p-4"})
    assert started and started[0][0] == missing
    assert started[0][1]["detail"] == {"patient": "p-4"}


# --------------------------------------------------------------------------------------
# 2. Lambda through the HTTP API
# --------------------------------------------------------------------------------------


def test_http_invoke_runs_the_function(cloud, functions):
    lam = cloud["lambda"]
    name = unique("fn")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = cloud["iam"].create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="app.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},  # an empty zip
    )
    functions.handlers[name] = lambda event: {"hello": event["who"]}
    response = lam.invoke(FunctionName=name, Payload=json.dumps({"who": "ward 3"}))
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"hello": "ward 3"}

    def fail(_event):
        raise PayerUnavailable("nope")

    functions.handlers[name] = fail
    response = lam.invoke(FunctionName=name, Payload=b"{}")
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "PayerUnavailable"

    functions.handlers[name] = lambda event: {"async": event}
    assert (
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"a": 1}')["StatusCode"]
        == 202
    )
    assert eventually(lambda: {"a": 1} in functions.called(name))


# --------------------------------------------------------------------------------------
# 1. Client cache
# --------------------------------------------------------------------------------------


@pytest.fixture
def count_clients(monkeypatch) -> list[str]:
    built: list[str] = []
    real = boto3.client

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(kwargs.get("service_name") or args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(boto3, "client", counting)
    return built


def test_clients_are_cached_across_executions(endpoint, functions, vclock, count_clients):
    sfn = boto3.client("stepfunctions", endpoint_url=endpoint, region_name=REGION)
    functions.handlers["step"] = lambda event: event
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Task", "Resource": function_arn("step"), "Next": "Publish"},
            "Publish": {
                "Type": "Task",
                "Resource": "arn:aws:states:::events:putEvents",
                "Parameters": {
                    "Entries": [{"Source": "careflow.cache", "DetailType": "T", "Detail.$": "$"}]
                },
                "End": True,
            },
        },
    }
    machine = create_state_machine(sfn, definition)

    def run(n: int) -> None:
        for arn in [start(sfn, machine, {"n": i}) for i in range(n)]:
            assert finish(sfn, arn)["status"] == "SUCCEEDED"

    patched_moto.install(clock=vclock, invoke=functions)
    try:
        run(1)
        after_first = len(count_clients)
        run(6)
        assert len(count_clients) == after_first, count_clients
        assert patched_moto.clients_built() <= 3  # events, and lambda (in-process)
    finally:
        patched_moto.uninstall()
    # Stock moto builds one client per call: the cache is what makes the difference.
    before = len(count_clients)
    execution = start(
        sfn,
        create_state_machine(
            sfn, {"StartAt": "Publish", "States": {"Publish": definition["States"]["Publish"]}}
        ),
        {"n": 0},
    )
    assert finish(sfn, execution)["status"] == "SUCCEEDED"
    assert len(count_clients) > before


# --------------------------------------------------------------------------------------
# Child workflow executions (states:startExecution, .sync, .sync:2)
# --------------------------------------------------------------------------------------

START_CHILD = "arn:aws:states:::states:startExecution"


def parent_of(sfn: Any, child: str, resource: str, **task: Any) -> str:
    """A parent whose Task starts ``child`` with the case and the parent's execution id."""
    return create_state_machine(
        sfn,
        {
            "StartAt": "Child",
            "States": {
                "Child": {
                    "Type": "Task",
                    "Resource": resource,
                    "Parameters": {
                        "StateMachineArn": child,
                        "Name.$": "$.run",
                        "Input": {
                            "case.$": "$.case",
                            "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id",
                        },
                    },
                    "ResultPath": "$.child",
                    "End": True,
                    **task,
                }
            },
        },
    )


def history_types(sfn: Any, execution: str) -> list[str]:
    return [e["type"] for e in sfn.get_execution_history(executionArn=execution)["events"]]


def test_a_parent_runs_a_child_to_its_end_and_gets_its_output_object(cloud, functions):
    sfn = cloud["stepfunctions"]
    functions.handlers["assess"] = lambda event: {"case": event["case"], "risk": "low"}
    child = create_state_machine(
        sfn,
        {
            "StartAt": "Assess",
            "States": {"Assess": {"Type": "Task", "Resource": function_arn("assess"), "End": True}},
        },
    )
    parent = parent_of(sfn, child, f"{START_CHILD}.sync:2")
    run = unique("run")
    execution = start(sfn, parent, {"case": "c-1", "run": run})
    described = finish(sfn, execution)
    assert described["status"] == "SUCCEEDED", failure_of(sfn, execution)
    result = json.loads(described["output"])["child"]
    assert result["Status"] == "SUCCEEDED"
    assert result["Output"] == {"case": "c-1", "risk": "low"}  # an object, not a string
    assert result["Input"] == {
        "case": "c-1",
        "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": execution,
    }
    assert result["ExecutionArn"].endswith(f":{run}")
    assert result["StateMachineArn"] == child
    assert result["OutputDetails"] == {"Included": True}
    assert isinstance(result["StartDate"], int) and result["StopDate"] >= result["StartDate"]
    child_execution = sfn.describe_execution(executionArn=result["ExecutionArn"])
    assert json.loads(child_execution["input"])["AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"] == (
        execution
    )
    # The parent's history, as moto writes it for any .sync integration.
    events = sfn.get_execution_history(executionArn=execution)["events"]
    task_events = [e for e in events if e["type"].startswith("Task") and "State" not in e["type"]]
    assert [e["type"] for e in task_events] == [
        "TaskScheduled",
        "TaskStarted",
        "TaskSubmitted",
        "TaskSucceeded",
    ]
    scheduled = task_events[0]["taskScheduledEventDetails"]
    assert (scheduled["resourceType"], scheduled["resource"]) == ("states", "startExecution.sync:2")
    submitted = json.loads(task_events[2]["taskSubmittedEventDetails"]["output"])
    assert submitted["ExecutionArn"] == result["ExecutionArn"]
    succeeded = json.loads(task_events[3]["taskSucceededEventDetails"]["output"])
    assert succeeded["Output"] == {"case": "c-1", "risk": "low"}


def test_sync_gives_the_childs_output_as_a_string(cloud):
    sfn = cloud["stepfunctions"]
    child = create_state_machine(
        sfn, {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ok": 1}, "End": True}}}
    )
    execution = start(
        sfn, parent_of(sfn, child, f"{START_CHILD}.sync"), {"case": "c", "run": unique("r")}
    )
    described = finish(sfn, execution)
    assert described["status"] == "SUCCEEDED", failure_of(sfn, execution)
    result = json.loads(described["output"])["child"]
    assert json.loads(result["Output"]) == {"ok": 1}
    assert isinstance(result["Output"], str) and isinstance(result["Input"], str)
    assert "TaskSubmitted" in history_types(sfn, execution)


def test_plain_start_execution_returns_at_once_with_the_execution_arn(cloud, vclock):
    sfn = cloud["stepfunctions"]
    child = create_state_machine(
        sfn, {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 86400, "End": True}}}
    )
    run = unique("run")
    execution = start(sfn, parent_of(sfn, child, START_CHILD), {"case": "c", "run": run})
    described = finish(sfn, execution)
    assert described["status"] == "SUCCEEDED", failure_of(sfn, execution)
    result = json.loads(described["output"])["child"]
    assert set(result) == {"ExecutionArn", "StartDate"}
    assert result["ExecutionArn"].endswith(f":{run}") and isinstance(result["StartDate"], int)
    assert sfn.describe_execution(executionArn=result["ExecutionArn"])["status"] == "RUNNING"
    types = history_types(sfn, execution)
    assert "TaskSucceeded" in types and "TaskSubmitted" not in types  # no integration pattern
    sfn.stop_execution(executionArn=result["ExecutionArn"])
    assert finish(sfn, result["ExecutionArn"])["status"] == "ABORTED"


def test_a_failed_child_fails_the_parents_task_with_states_task_failed(cloud):
    sfn = cloud["stepfunctions"]
    child = create_state_machine(
        sfn,
        {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "PayerDown", "Cause": "503"}}},
    )
    catch = [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Recover"}]
    parent = create_state_machine(
        sfn,
        {
            "StartAt": "Child",
            "States": {
                "Child": {
                    "Type": "Task",
                    "Resource": f"{START_CHILD}.sync:2",
                    "Parameters": {"StateMachineArn": child, "Input": {"case.$": "$.case"}},
                    "Catch": catch,
                    "End": True,
                },
                "Recover": {"Type": "Pass", "End": True},
            },
        },
    )
    execution = start(sfn, parent, {"case": "c-2"})
    described = finish(sfn, execution)
    assert described["status"] == "SUCCEEDED", failure_of(sfn, execution)
    error = json.loads(described["output"])["error"]
    assert error["Error"] == "States.TaskFailed"
    cause = json.loads(error["Cause"])  # the child's DescribeExecution, as on AWS
    assert (cause["Status"], cause["Error"], cause["Cause"]) == ("FAILED", "PayerDown", "503")
    assert "TaskFailed" in history_types(sfn, execution)


def test_an_aborted_child_fails_an_uncaught_parent(cloud, vclock):
    sfn = cloud["stepfunctions"]
    child = create_state_machine(
        sfn, {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    )
    run = unique("run")
    execution = start(
        sfn, parent_of(sfn, child, f"{START_CHILD}.sync:2"), {"case": "c", "run": run}
    )
    assert vclock.wait_for_timer(3500, 3600)  # the child's Wait
    arns = [e["executionArn"] for e in executions_of(sfn, child) if e["name"] == run]
    assert len(arns) == 1
    sfn.stop_execution(executionArn=arns[0])
    assert finish(sfn, execution)["status"] == "FAILED"
    error, cause = failure_of(sfn, execution)
    assert error == "States.TaskFailed"
    assert "ABORTED" in cause


def test_a_child_waiting_on_a_task_token_resumes_its_parent(cloud, functions, vclock):
    sfn = cloud["stepfunctions"]
    tokens: list[str] = []
    functions.handlers["ask"] = lambda event: tokens.append(event["token"]) or {}
    child = create_state_machine(
        sfn,
        {
            "StartAt": "Ask",
            "States": {
                "Ask": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    "Parameters": {
                        "FunctionName": function_arn("ask"),
                        "Payload": {"token.$": "$$.Task.Token"},
                    },
                    "TimeoutSeconds": 72 * 3600,
                    "End": True,
                }
            },
        },
    )
    execution = start(
        sfn, parent_of(sfn, child, f"{START_CHILD}.sync:2"), {"case": "c", "run": unique("r")}
    )
    assert eventually(lambda: tokens)
    assert vclock.wait_for_timer(71 * 3600, 72 * 3600)  # the child's task timeout
    vclock.advance(3600 * 24)  # a day passes: the child still waits, and so does its parent
    time.sleep(0.3)
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    t0 = time.monotonic()
    sfn.send_task_success(taskToken=tokens[0], output=json.dumps({"decision": "approved"}))
    described = finish(sfn, execution)
    assert described["status"] == "SUCCEEDED", failure_of(sfn, execution)
    assert json.loads(described["output"])["child"]["Output"] == {"decision": "approved"}
    assert time.monotonic() - t0 < 2


def test_a_child_waiting_three_days_ends_on_the_virtual_clock(cloud, vclock):
    sfn = cloud["stepfunctions"]
    child = create_state_machine(
        sfn,
        {
            "StartAt": "Cool",
            "States": {
                "Cool": {"Type": "Wait", "Seconds": 3 * 86400, "Next": "Done"},
                "Done": {"Type": "Pass", "Result": {"cooled": True}, "End": True},
            },
        },
    )
    t0 = time.monotonic()
    execution = start(
        sfn, parent_of(sfn, child, f"{START_CHILD}.sync:2"), {"case": "c", "run": unique("r")}
    )
    assert vclock.wait_for_timer(timedelta(days=2.9), timedelta(days=3))
    vclock.advance(timedelta(days=3))
    described = finish(sfn, execution)
    assert described["status"] == "SUCCEEDED", failure_of(sfn, execution)
    assert json.loads(described["output"])["child"]["Output"] == {"cooled": True}
    assert time.monotonic() - t0 < 3
    assert described["stopDate"] - described["startDate"] >= timedelta(days=3)


# --------------------------------------------------------------------------------------
# install / uninstall
# --------------------------------------------------------------------------------------


def _patched_values() -> dict[tuple[str, str], Any]:
    values = {}
    for patch in patches.all_patches():
        if patch.replacement is None:
            continue  # checked, not patched
        owner = shapes.resolve(patch.owner)
        values[(patch.owner, patch.attribute)] = owner.__dict__.get(patch.attribute)
    return values


def test_what_is_only_checked_is_left_as_moto_has_it(endpoint, functions):
    checked = [p for p in patches.all_patches() if p.replacement is None]
    assert checked  # the DynamoDB lane relies on these, as moto has them
    patched_moto.uninstall()
    before = {p.target: getattr(shapes.resolve(p.owner), p.attribute) for p in checked}
    patched_moto.install(clock=VirtualClock(), invoke=functions)
    during = {p.target: getattr(shapes.resolve(p.owner), p.attribute) for p in checked}
    assert during == before


def test_uninstall_restores_moto_exactly(endpoint, functions):
    import sys

    patched_moto.uninstall()
    before = _patched_values()
    clock_before = process_clock.get_clock()
    holders_before = {
        name: module.boto_client_for
        for name, module in sys.modules.items()
        if name.startswith("moto.stepfunctions.parser") and hasattr(module, "boto_client_for")
    }
    first = VirtualClock()
    patched_moto.install(clock=first, invoke=functions)
    during = _patched_values()
    assert all(during[key] is not before[key] for key in before), [
        key for key in before if during[key] is before[key]
    ]
    assert process_clock.get_clock() is first
    # Idempotent: a second install swaps clock and invoke, not the patches.
    second = VirtualClock()
    patched_moto.install(clock=second, invoke=lambda _f, _p: (b"{}", None))
    assert _patched_values() == during
    assert process_clock.get_clock() is second
    patched_moto.uninstall()
    after = _patched_values()
    assert all(after[key] is before[key] for key in before)
    assert process_clock.get_clock() is clock_before
    for name, original in holders_before.items():
        assert sys.modules[name].boto_client_for is original
    patched_moto.uninstall()  # a no-op


def test_install_refuses_an_unexpected_moto_shape(endpoint, functions, monkeypatch):
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.stepfunctions.parser.asl.component.state.exec import execute_state
    from moto.stepfunctions.parser.asl.utils import boto_client

    patched_moto.uninstall()
    original_client_for = boto_client.boto_client_for
    monkeypatch.setattr(LambdaSimpleBackend, "invoke", lambda self, function_name, body: b"")
    monkeypatch.setattr(execute_state, "threading", object())
    with pytest.raises(patched_moto.MotoShapeError) as raised:
        patched_moto.install(clock=VirtualClock(), invoke=functions)
    message = str(raised.value)
    assert "LambdaSimpleBackend.invoke" in message
    assert "execute_state.threading" in message
    assert "5.2.5" in message
    assert not patched_moto.is_installed()
    assert boto_client.boto_client_for is original_client_for  # nothing was patched
