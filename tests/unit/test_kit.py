"""The workflow kit: ASL macros rendered once, steps registered by name, the registry's rule."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from careflow.kit import asl
from careflow.kit.registry import workflows
from careflow.kit.spec import REPO_ROOT
from careflow.kit.steps import StepDefinitionError, StepInput, StepOutput, step

EXAMPLE = Path(__file__).resolve().parent / "kit_example"


def _definition(states: dict) -> dict:
    return {"StartAt": next(iter(states)), "States": states}


def test_a_lambda_task_without_retry_gets_the_default_and_an_empty_retry_opts_out():
    out = asl.expand(
        _definition(
            {
                "A": {"Type": "Task", "Resource": "${AFunctionArn}", "Next": "B"},
                "B": {"Type": "Task", "Resource": "${BFunctionArn}", "Retry": [], "Next": "C"},
                "C": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Retry": [{"ErrorEquals": ["X"], "MaxAttempts": 1}],
                    "End": True,
                },
            }
        )
    )
    states = out["States"]
    assert states["A"]["Retry"] == asl.DEFAULT_RETRY
    assert "Retry" not in states["B"]
    assert states["C"]["Retry"] == [{"ErrorEquals": ["X"], "MaxAttempts": 1}]


def test_retry_defaults_reach_into_parallel_branches_but_not_other_services():
    out = asl.expand(
        _definition(
            {
                "P": {
                    "Type": "Parallel",
                    "Branches": [
                        _definition(
                            {"A": {"Type": "Task", "Resource": "${AFunctionArn}", "End": True}}
                        )
                    ],
                    "Next": "E",
                },
                "E": {"Type": "Task", "Resource": "arn:aws:states:::events:putEvents", "End": True},
            }
        )
    )
    assert out["States"]["P"]["Branches"][0]["States"]["A"]["Retry"] == asl.DEFAULT_RETRY
    assert "Retry" not in out["States"]["E"]


def test_the_catch_shorthand_keeps_the_error_beside_the_state():
    out = asl.expand(
        _definition(
            {
                "A": {"Type": "Task", "Resource": "${AFunctionArn}", "Catch": "F", "End": True},
                "F": {"Type": "Fail"},
            }
        )
    )
    assert out["States"]["A"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "F"}
    ]


def _human_task(**over):
    macro = {
        "Type": "careflow:HumanTask",
        "Task.$": "$.task",
        "Purpose": "review",
        "DueInSecondsPath": "$.policy.review_s",
        "ResultPath": "$.review",
        "Next": "Done",
        "Exhausted": {"ResultPath": "$.gave_up", "Next": "Done"},
    }
    macro.update(over)
    return _definition({"Review": macro, "Done": {"Type": "Succeed"}})


def test_the_human_task_macro_becomes_the_task_its_escalation_and_the_loop():
    states = asl.expand(_human_task())["States"]
    assert set(states) == {
        "Review",
        "EscalateReview",
        "IsReviewEscalationExhausted",
        "ReviewEscalationExhausted",
        "Done",
    }
    task = states["Review"]
    assert task["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert task["Parameters"]["FunctionName"] == "${CreateHumanTaskFunctionArn}"
    assert task["Parameters"]["Payload"]["token.$"] == "$$.Task.Token"
    assert task["TimeoutSecondsPath"] == "$.policy.review_s"
    assert task["Catch"][0] == {
        "ErrorEquals": ["States.Timeout"],
        "ResultPath": "$.timeout",
        "Next": "EscalateReview",
    }
    assert states["EscalateReview"]["Parameters"] == {
        "instance_id.$": "$.instance_id",
        "purpose": "review",
    }
    choice = states["IsReviewEscalationExhausted"]
    assert choice["Default"] == "Review"  # repeat until the chain is exhausted
    assert choice["Choices"][0]["Next"] == "ReviewEscalationExhausted"
    assert states["ReviewEscalationExhausted"] == {
        "Type": "Pass",
        "Result": True,
        "ResultPath": "$.gave_up",
        "Next": "Done",
    }
    assert "careflow:" not in json.dumps(states)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"Purpose": None}, "needs"),
        ({"Extra": 1}, "does not take"),
        ({"Exhausted": {"ResultPath": "$.x"}}, "Exhausted needs a Next"),
    ],
)
def test_a_misused_macro_is_refused_with_a_reason(over, message):
    definition = _human_task(**over)
    if over.get("Purpose", 0) is None:
        del definition["States"]["Review"]["Purpose"]
    with pytest.raises(asl.AslError, match=message):
        asl.expand(definition)


def test_an_unknown_macro_and_a_missing_placeholder_are_named():
    with pytest.raises(asl.AslError, match="no macro careflow:Nope"):
        asl.expand(_definition({"A": {"Type": "careflow:Nope"}}))
    expanded = asl.expand(
        _definition({"A": {"Type": "Task", "Resource": "${AFunctionArn}", "End": True}})
    )
    with pytest.raises(asl.AslError, match="AFunctionArn"):
        asl.render(expanded, {})


def test_a_substituted_value_cannot_break_out_of_its_json_string():
    expanded = asl.expand(_definition({"A": {"Type": "Pass", "Result": "${Name}", "End": True}}))
    assert asl.render(expanded, {"Name": 'a"b'})["States"]["A"]["Result"] == 'a"b'


@pytest.mark.parametrize("wf", workflows(), ids=lambda wf: wf.id)
def test_every_rendered_definition_is_plain_jsonpath_asl(wf):
    arns = {fn.name: f"arn:aws:lambda:us-east-1:1:function:{fn.name}" for fn in wf.functions}
    children = {c: f"arn:aws:states:us-east-1:1:stateMachine:{c}" for c in wf.children}
    rendered = wf.render(arns, event_bus_name="bus", table_name="t", state_machine_arns=children)
    text = json.dumps(rendered)
    assert "careflow:" not in text and "${" not in text
    assert rendered.get("QueryLanguage", "JSONPath") == "JSONPath"


def test_the_source_asl_is_smaller_than_what_it_renders_to():
    for wf in workflows():
        assert len(json.dumps(json.loads(wf.definition_text()))) < len(json.dumps(wf.expanded()))


class _In(StepInput):
    x: int


class _Out(StepOutput):
    y: int


def test_a_step_must_declare_pydantic_models_and_known_ports():
    with pytest.raises(StepDefinitionError, match="input"):

        @step()
        def no_model(inp: dict) -> _Out:  # type: ignore[type-arg]
            return _Out(y=1)

    with pytest.raises(StepDefinitionError, match="unknown ports"):

        @step()
        def bad_port(inp: _In, *, database: object) -> _Out:
            return _Out(y=1)

    with pytest.raises(StepDefinitionError, match="output"):

        @step()
        def no_output(inp: _In) -> dict:  # type: ignore[type-arg]
            return {}


def test_every_registered_step_resolves_and_declares_its_models():
    from careflow.kit.steps import lookup

    for wf in workflows():
        for fn in wf.functions:
            if fn.step:
                definition = lookup(fn.step)
                assert issubclass(definition.input_model, BaseModel)
                assert issubclass(definition.output_model, BaseModel)


def _prove(*flags: str) -> dict:
    env = {**os.environ, "CAREFLOW_WORKFLOW_PATHS": str(EXAMPLE)}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(EXAMPLE.parent.parent.parent), env.get("PYTHONPATH", "")]
    )
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "prove.py"), *flags],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_workflow_is_registered_by_its_package_and_its_asl_file_alone():
    """The echo package lives outside the tree and nothing names it: the catalog, intake, the
    event schemas, the CDK app and the local cloud all take it up from the registry."""
    report = _prove("--cloud", "--cdk")
    assert "echo" in report["catalog"]
    assert "EchoAnswer" in report["functions"]
    assert "Ping.Sent" in report["schemas"]
    assert report["intake_input"]["subject_id"] == "s-1"
    assert "name" not in report["intake_input"]
    assert "careflow-dev-Echo" in report["cdk_state_machines"]
    assert report["cloud_status"] == "SUCCEEDED"
    assert report["cloud_output"]["echo"] == {"answer": "pong s-1"}


CORE = [
    "layers/runtime/careflow/catalog.py",
    "layers/runtime/careflow/domain/intake.py",
    "layers/runtime/careflow/events/envelope.py",
    "layers/runtime/careflow/observability.py",
    "layers/runtime/careflow/localcloud/cloud.py",
    "layers/runtime/careflow/localcloud/demo.py",
    "layers/runtime/careflow/kit",
    "lambdas",
    "stacks",
    "app.py",
]


def test_no_core_module_names_a_workflow():
    names = set()
    for wf in workflows():
        names |= {wf.id, wf.name, wf.package, wf.package.rpartition(".")[2]}
    offenders = []
    for entry in CORE:
        path = REPO_ROOT / entry
        for file in [path] if path.is_file() else sorted(path.rglob("*.py")):
            text = file.read_text(encoding="utf-8")
            for name in names:
                if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text):
                    offenders.append(f"{file.relative_to(REPO_ROOT)}: {name}")
    assert offenders == []


def test_a_bench_case_resolves_and_a_workflow_gives_one_or_why_it_has_none_not_both():
    from dataclasses import replace

    from careflow.kit import registry
    from careflow.kit.bench import load

    for wf in workflows():
        if wf.bench is not None:
            assert callable(load(wf.bench)), wf.id
    some = workflows()[0]
    both = replace(some, bench="careflow.kit.bench:start_target", bench_excluded="why")
    with pytest.raises(registry.RegistryError, match="not both"):
        registry._check([both])


def test_every_workflow_is_in_the_bench_mix_and_the_waiting_ones_are_driven():
    """The mix is of every workflow: one that waits for a person or a later event has a
    driver beside its case (careflow.kit.bench)."""
    from careflow.kit.bench import load_driver

    assert [wf.id for wf in workflows() if wf.bench is None] == []
    driven = {wf.id for wf in workflows() if wf.bench and load_driver(wf.bench)}
    assert {"procurement-approval", "discharge-coordination"} <= driven
    for wf in workflows():
        assert wf.bench is not None
        driver = load_driver(wf.bench)
        assert driver is None or callable(driver), wf.id


def test_a_drivers_poll_returns_the_first_answer_times_out_and_stops_with_the_bench():
    from careflow.kit import bench

    answers = iter([None, False, "open"])
    assert bench.poll(lambda: next(answers), "a task", pause=0) == "open"
    with pytest.raises(TimeoutError, match="a task not seen after 0 s"):
        bench.poll(lambda: None, "a task", timeout=0.01, pause=0)
    bench.STOP.set()
    try:
        with pytest.raises(bench.DriverStopped, match="waiting for a task"):
            bench.poll(lambda: None, "a task")
    finally:
        bench.STOP.clear()


def test_pass_timers_moves_the_clock_to_a_pending_poll_timer_never_past_at_most():
    import threading
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from careflow.clock import ClockEvent, VirtualClock
    from careflow.kit.bench import pass_timers

    clock = VirtualClock(datetime(2030, 1, 1, 8, tzinfo=UTC), speed=0)
    cloud = SimpleNamespace(clock=clock)
    assert not pass_timers(cloud, timedelta(minutes=15))  # no timer: nothing moves
    sla = threading.Thread(target=clock.wait, args=(ClockEvent(clock), 86400), daemon=True)
    sla.start()
    assert clock.wait_for_timer(timeout=5)
    assert not pass_timers(cloud, timedelta(minutes=15))  # an SLA's timer is not passed
    assert clock.now() == datetime(2030, 1, 1, 8, tzinfo=UTC)
    poll = threading.Thread(target=clock.wait, args=(ClockEvent(clock), 900), daemon=True)
    poll.start()
    assert clock.wait_for_timer(count=2, timeout=5)
    assert pass_timers(cloud, timedelta(minutes=15))
    assert clock.now() == datetime(2030, 1, 1, 8, 15, tzinfo=UTC)
    poll.join(5)
    assert not poll.is_alive()
    clock.advance(timedelta(days=1))  # lets the SLA's wait end
