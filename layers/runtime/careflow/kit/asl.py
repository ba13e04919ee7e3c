"""The one render function: the kit's ASL macros expanded, then placeholders filled.

What every definition would otherwise repeat is written here once:

- **Default Retry** on every Lambda task (a ``${...FunctionArn}`` resource or an
  ``arn:aws:states:::lambda:invoke*`` integration) that has no ``Retry`` of its own:
  Lambda's transient errors, then ``ConnectorUnavailable`` with backoff and jitter.
  ``"Retry": []`` opts a task out.
- **Catch shorthand**: ``"Catch": "StateName"`` is ``States.ALL`` into ``StateName`` with
  the error kept at ``$.error``.
- **The human-task loop**: a state of ``"Type": "careflow:HumanTask"`` becomes the task
  (``.waitForTaskToken`` on ``CreateHumanTask``, timing out after the task's SLA), its
  escalation (``EscalateHumanTask``), a Choice that repeats until the escalation chain is
  exhausted, and a Pass that records the exhaustion::

      "CoordinatorTask": {
        "Type": "careflow:HumanTask",
        "Task.$": "$.evaluation.task",        # the task's spec (purpose, title, chain...)
        "Purpose": "coordinator",             # the same purpose: the escalation finds it
        "DueInSecondsPath": "$.policy.coordinator_task_s",
        "ResultPath": "$.coordinator",
        "Next": "ApplyCoordinatorDecision",
        "Exhausted": {"ResultPath": "$.escalation_exhausted", "Next": "FinalizeCase"}
      }

The result is plain ASL (JSONPath) that the Step Functions console opens.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9]*)\}")

LAMBDA_TRANSIENT = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
DEFAULT_RETRY: list[dict[str, Any]] = [
    {
        "ErrorEquals": LAMBDA_TRANSIENT,
        "IntervalSeconds": 1,
        "MaxAttempts": 3,
        "BackoffRate": 2,
        "JitterStrategy": "FULL",
    },
    {
        "ErrorEquals": ["ConnectorUnavailable"],
        "IntervalSeconds": 5,
        "MaxAttempts": 3,
        "BackoffRate": 3,
        "MaxDelaySeconds": 60,
        "JitterStrategy": "FULL",
    },
]
HUMAN_TASK = "careflow:HumanTask"
_MACRO_KEYS = {
    "Type",
    "Task.$",
    "Purpose",
    "DueInSecondsPath",
    "ResultPath",
    "Next",
    "End",
    "Exhausted",
    "Comment",
}


class AslError(ValueError):
    """A definition uses a macro wrongly, or a placeholder has no value."""


def is_lambda_task(state: Mapping[str, Any]) -> bool:
    if state.get("Type") != "Task":
        return False
    resource = str(state.get("Resource", ""))
    return (
        resource.startswith("arn:aws:states:::lambda:invoke")
        or resource.startswith("arn:aws:lambda:")
        or bool(PLACEHOLDER.fullmatch(resource) and resource.endswith("FunctionArn}"))
    )


def _catch_all(next_state: str) -> list[dict[str, Any]]:
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": next_state}]


def _task_defaults(state: dict[str, Any]) -> dict[str, Any]:
    if is_lambda_task(state):
        if "Retry" not in state:
            state["Retry"] = copy.deepcopy(DEFAULT_RETRY)
        elif state["Retry"] == []:
            del state["Retry"]
    if isinstance(state.get("Catch"), str):
        state["Catch"] = _catch_all(state["Catch"])
    return state


def _human_task(name: str, macro: Mapping[str, Any], names: set[str]) -> dict[str, Any]:
    unknown = set(macro) - _MACRO_KEYS
    missing = {"Task.$", "Purpose", "DueInSecondsPath", "Exhausted"} - set(macro)
    if unknown or missing:
        raise AslError(
            f"{name}: {HUMAN_TASK} "
            + (f"does not take {sorted(unknown)}" if unknown else f"needs {sorted(missing)}")
        )
    exhausted = macro["Exhausted"]
    if not isinstance(exhausted, Mapping) or "Next" not in exhausted:
        raise AslError(f"{name}: Exhausted needs a Next")
    escalate, check, done = (
        f"Escalate{name}",
        f"Is{name}EscalationExhausted",
        f"{name}EscalationExhausted",
    )
    clash = {escalate, check, done} & names
    if clash:
        raise AslError(f"{name}: the loop's states {sorted(clash)} already exist")
    task: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Comment": macro.get(
            "Comment", "A human task; completing it sends the token back (kit human-task loop)"
        ),
        "Parameters": {
            "FunctionName": "${CreateHumanTaskFunctionArn}",
            "Payload": {
                "token.$": "$$.Task.Token",
                "instance_id.$": "$.instance_id",
                "workflow_id.$": "$.workflow_id",
                "task.$": macro["Task.$"],
                "due_in_seconds.$": macro["DueInSecondsPath"],
            },
        },
        "TimeoutSecondsPath": macro["DueInSecondsPath"],
        "Retry": copy.deepcopy(DEFAULT_RETRY),
        "Catch": [
            {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.timeout", "Next": escalate},
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": done},
        ],
    }
    if "ResultPath" in macro:
        task["ResultPath"] = macro["ResultPath"]
    if macro.get("End"):
        task["End"] = True
    else:
        task["Next"] = macro["Next"]
    exhausted_state: dict[str, Any] = {"Type": "Pass", "Result": True, "Next": exhausted["Next"]}
    exhausted_state["ResultPath"] = exhausted.get("ResultPath", "$.escalation_exhausted")
    return {
        name: task,
        escalate: {
            "Type": "Task",
            "Resource": "${EscalateHumanTaskFunctionArn}",
            "Parameters": {"instance_id.$": "$.instance_id", "purpose": macro["Purpose"]},
            "ResultPath": "$.escalation",
            "Retry": copy.deepcopy(DEFAULT_RETRY),
            "Catch": _catch_all(done),
            "Next": check,
        },
        check: {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.escalation.exhausted", "BooleanEquals": True, "Next": done}
            ],
            "Default": name,
        },
        done: exhausted_state,
    }


def _expand_states(states: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = set(states)
    for name, source in states.items():
        state = copy.deepcopy(source)
        kind = state.get("Type")
        if kind == HUMAN_TASK:
            out.update(_human_task(name, state, names))
            continue
        if isinstance(kind, str) and kind.startswith("careflow:"):
            raise AslError(f"{name}: no macro {kind}")
        if kind == "Task":
            _task_defaults(state)
        elif kind == "Parallel":
            for branch in state.get("Branches", []):
                branch["States"] = _expand_states(branch["States"])
        elif kind == "Map":
            for key in ("ItemProcessor", "Iterator"):
                if key in state:
                    state[key]["States"] = _expand_states(state[key]["States"])
        out[name] = state
    return out


def expand(definition: Mapping[str, Any]) -> dict[str, Any]:
    """The definition with every kit macro expanded; placeholders are left in place."""
    expanded = dict(copy.deepcopy(definition))
    expanded["States"] = _expand_states(definition["States"])
    return expanded


def expand_text(text: str) -> dict[str, Any]:
    loaded = json.loads(text)
    if not isinstance(loaded, dict) or "States" not in loaded:
        raise AslError("a state machine definition is a JSON object with States")
    return expand(loaded)


def render(
    expanded: Mapping[str, Any], substitutions: Mapping[str, str], *, source: str = "ASL"
) -> dict[str, Any]:
    """Fills every ``${Name}``; raises :class:`AslError` naming any left without a value."""
    text = json.dumps(expanded)
    missing = set(PLACEHOLDER.findall(text)) - substitutions.keys()
    if missing:
        raise AslError(f"{source}: no substitution for {sorted(missing)}")

    def value(match: Any) -> str:
        # JSON-escaped, so a value with quotes cannot break out of its string
        return json.dumps(substitutions[match.group(1)])[1:-1]

    rendered: dict[str, Any] = json.loads(PLACEHOLDER.sub(value, text))
    return rendered
