"""The cost section of ``make bench``: what a history counts, and what a case costs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from careflow.localcloud import cost


def ev(i: int, prev: int, kind: str, **details: Any) -> dict[str, Any]:
    return {"id": i, "previousEventId": prev, "type": kind, **details}


def lambda_scheduled(i: int, prev: int, name: str) -> dict[str, Any]:
    return ev(
        i,
        prev,
        "LambdaFunctionScheduled",
        lambdaFunctionScheduledEventDetails={
            "resource": f"arn:aws:lambda:us-east-1:123456789012:function:careflow-{name}"
        },
    )


def task_scheduled(i: int, prev: int, rtype: str, resource: str, params: Any) -> dict[str, Any]:
    return ev(
        i,
        prev,
        "TaskScheduled",
        taskScheduledEventDetails={
            "resourceType": rtype,
            "resource": resource,
            "parameters": json.dumps(params),
        },
    )


# A Parallel of two branches: a Lambda task retried twice, and a Pass (the local cloud's
# own history of that machine, ids and previous ids included).
RETRIED_IN_PARALLEL = [
    ev(1, 0, "ExecutionStarted"),
    ev(2, 0, "ParallelStateEntered"),
    ev(3, 2, "ParallelStateStarted"),
    ev(4, 3, "TaskStateEntered"),
    lambda_scheduled(5, 4, "VerifyBenefits"),
    ev(6, 5, "LambdaFunctionStarted"),
    ev(7, 6, "LambdaFunctionFailed"),
    ev(8, 3, "PassStateEntered"),
    ev(9, 8, "PassStateExited"),
    lambda_scheduled(10, 7, "VerifyBenefits"),
    ev(11, 10, "LambdaFunctionStarted"),
    ev(12, 11, "LambdaFunctionFailed"),
    lambda_scheduled(13, 12, "VerifyBenefits"),
    ev(14, 13, "LambdaFunctionStarted"),
    ev(15, 14, "LambdaFunctionSucceeded"),
    ev(16, 15, "TaskStateExited"),
    ev(17, 16, "ParallelStateSucceeded"),
    ev(18, 16, "ParallelStateExited"),
    ev(19, 18, "ExecutionSucceeded"),
]


def test_every_state_entered_and_every_retry_is_a_transition():
    counted = cost.count_history(RETRIED_IN_PARALLEL)
    assert counted.states_entered == 3  # the Parallel, the Task and the branch's Pass
    assert counted.retries == 2
    assert counted.transitions == 5
    assert counted.lambda_invocations == {"VerifyBenefits": 3}  # each attempt is invoked
    assert counted.children == []


def test_integrations_lambda_invoke_put_events_and_child_executions():
    child = "arn:aws:states:us-east-1:123456789012:execution:PriorAuthorization:child-1"
    events = [
        ev(1, 0, "ExecutionStarted"),
        ev(2, 0, "TaskStateEntered"),
        task_scheduled(
            3,
            2,
            "lambda",
            "invoke.waitForTaskToken",
            {"FunctionName": "arn:aws:lambda:us-east-1:1:function:careflow-AwaitPayerDecision"},
        ),
        ev(4, 3, "TaskTimedOut"),
        task_scheduled(5, 4, "lambda", "invoke.waitForTaskToken", {"FunctionName": "x-Await"}),
        ev(6, 5, "TaskSucceeded"),
        ev(7, 6, "TaskStateEntered"),
        task_scheduled(8, 7, "events", "putEvents", {"Entries": [{}, {}]}),
        ev(9, 8, "TaskSucceeded"),
        ev(10, 9, "TaskStateEntered"),
        task_scheduled(11, 10, "states", "startExecution.sync:2", {"StateMachineArn": "sm"}),
        ev(
            12,
            11,
            "TaskSubmitted",
            taskSubmittedEventDetails={
                "resourceType": "states",
                "resource": "startExecution.sync:2",
                "output": json.dumps({"ExecutionArn": child, "StartDate": 1}),
            },
        ),
        ev(
            13,
            12,
            "TaskSucceeded",
            taskSucceededEventDetails={
                "resourceType": "states",
                "resource": "startExecution.sync:2",
                "output": json.dumps({"ExecutionArn": child, "Output": {}}),
            },
        ),
        ev(14, 13, "SucceedStateEntered"),
    ]
    counted = cost.count_history(events)
    assert counted.states_entered == 4
    assert counted.retries == 1  # the second wait after the time-out
    assert counted.lambda_invocations == {"AwaitPayerDecision": 1, "x-Await": 1}
    assert counted.put_events == 2
    assert counted.children == [child]


def test_a_case_is_its_executions_and_its_invocations_outside_step_functions():
    child = [ev(1, 0, "ExecutionStarted"), ev(2, 0, "PassStateEntered")]
    log = [
        cost.Invocation("Intake", "i-1", 0.01, 0, True),
        cost.Invocation("VerifyBenefits", "i-1", 0.01, 0, False),
        cost.Invocation("VerifyBenefits", "i-1", 0.01, 0, False),
        cost.Invocation("VerifyBenefits", "i-1", 0.01, 1, False),
        cost.Invocation("PayerDecision", "child-1", 0.01, 0, True),
        cost.Invocation("Intake", "someone-else", 0.01, 0, True),
    ]
    case = cost.case_cost(
        "wf",
        "case-1",
        {"root": RETRIED_IN_PARALLEL, "child": child},
        {"i-1", "child-1"},
        log,
        {"VerifyBenefits": 1024, "Intake": 512, "PayerDecision": 512},
        lambda_ms=100,
    )
    assert case.executions == 2
    assert case.transitions == 6
    assert case.lambda_invocations == {"VerifyBenefits": 3}
    assert case.outside_invocations == {"Intake": 1, "PayerDecision": 1}
    assert case.invocations == 5
    assert case.put_events == 3  # the handler's own, the trigger, the callback's event
    assert case.lambda_gb_seconds == pytest.approx(3 * 1.0 * 0.1 + 2 * 0.5 * 0.1)
    usd = case.usd()
    assert usd["step_functions"] == pytest.approx(6 * 0.000025)
    assert usd["lambda_requests"] == pytest.approx(5 * 0.2e-6)
    assert usd["lambda_duration"] == pytest.approx(0.4 * 0.0000133334)
    assert usd["eventbridge"] == pytest.approx(3e-6)
    assert case.total_usd() == pytest.approx(sum(usd.values()))


def test_lines_one_per_workflow_and_the_happy_path():
    cases = [
        cost.CaseCost(cost.HAPPY_PATH_WORKFLOW, cost.HAPPY_PATH_CASE, 1, 16),
        cost.CaseCost(cost.HAPPY_PATH_WORKFLOW, "appt-2", 1, 20),
        cost.CaseCost("other", "o-1", 1, 4),
    ]
    out = cost.lines(cost.Run(cases, [], []))
    mains = [line for line in out if line.startswith("cost workflow=")]
    assert mains == [
        f"cost workflow={cost.HAPPY_PATH_WORKFLOW} transitions=18.0 lambda_invocations=0.0 "
        "usd_per_1000=0.4500",
        "cost workflow=other transitions=4.0 lambda_invocations=0.0 usd_per_1000=0.1000",
        f"cost workflow={cost.HAPPY_PATH_WORKFLOW} case={cost.HAPPY_PATH_CASE} transitions=16 "
        "lambda_invocations=0 usd_per_1000=0.4000",
    ]
