"""What a case costs on AWS, from the execution histories of the demo's cases.

``python -m careflow.localcloud.cost`` (and ``make bench``, before its speed runs) runs
every registered workflow's demo scenarios on one local cloud (sandbox connectors), reads
each case's execution history (``GetExecutionHistory``, every page) and the history of
each child execution it started (``states:startExecution*``: the ``ExecutionArn`` in the
task's ``TaskSubmitted``/``TaskSucceeded`` output, recursively), and prices them at the
us-east-1 list prices below. Per case:

- **state transitions**, as Step Functions bills a Standard workflow: every state entered
  (each ``*StateEntered`` event: Task, Choice, Pass, Wait, Parallel and Map themselves,
  Succeed, Fail, and every state inside a Parallel branch or a Map iteration), plus one
  per **retry** (a Retry runs the state again without a new ``*StateEntered``: it is an
  ``*Scheduled`` event whose previous event is the failed or timed-out attempt rather than
  the state's entry). ``ExecutionStarted``/``ExecutionSucceeded`` are not transitions.
  A child execution's transitions are the parent case's.
- **Lambda invocations**: every ``LambdaFunctionScheduled`` (a task on a function's ARN,
  each retry included) and every ``TaskScheduled`` of ``resourceType`` ``lambda``
  (``arn:aws:states:::lambda:invoke`` and ``.waitForTaskToken``), in the case's
  executions; plus the invocations made **outside** Step Functions that the local cloud
  saw for the case (each in-process invocation is logged with the ``instance_id`` of its
  payload, or of its result): the Intake that started it and the event callbacks that
  resumed it (``PayerDecision`` on ``PriorAuth.Decided``). Outside = logged minus the
  histories' count, per function. Billed at the function's configured memory
  (``catalog.all_functions()``) for an assumed :data:`ASSUMED_LAMBDA_MS` each: in-process
  durations say nothing of a Lambda's network calls (they are printed beside it).
- **EventBridge custom events** (``PutEvents`` entries): the event that started the case
  and each event that invoked a callback for it (one per outside invocation of an
  EventBridge-triggered function), the entries of the workflow's ``events:putEvents``
  tasks (from ``TaskScheduled``), and what its Lambdas put on the bus themselves
  (``HumanTask.Opened``, ``Workflow.Escalated``; counted as the handlers call PutEvents).

Excluded: DynamoDB (on-demand reads and writes: the local cloud's item operations skip
botocore's hooks, so they are not counted cheaply), CloudWatch Logs and metrics, X-Ray,
data transfer, API Gateway, the human-task API's own calls (no Lambda of the catalog), and
every free tier (the first 4,000 transitions and 1M Lambda requests a month).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# us-east-1 list prices, as given in the cost issue (2026-11-30; not re-checked against
# aws.amazon.com/*/pricing from the machine that wrote this: it has no internet).
PRICES_DATE = "2026-11-30"
SFN_STANDARD_USD_PER_TRANSITION = 0.000025  # $0.025 per 1,000 state transitions
LAMBDA_USD_PER_REQUEST = 0.20 / 1_000_000  # $0.20 per 1M requests
LAMBDA_ARM64_USD_PER_GB_SECOND = 0.0000133334  # arm64, first pricing tier
EVENTBRIDGE_USD_PER_CUSTOM_EVENT = 1.00 / 1_000_000  # $1.00 per 1M custom events
ASSUMED_LAMBDA_MS = 100  # billed duration assumed per invocation (Lambda bills per 1 ms)

_SCHEDULED = ("LambdaFunctionScheduled", "TaskScheduled", "ActivityScheduled")


@dataclass
class ExecutionCount:
    """What one execution's history says (not its children's)."""

    states_entered: int = 0
    retries: int = 0
    lambda_invocations: Counter[str] = field(default_factory=Counter)  # by function name
    put_events: int = 0
    children: list[str] = field(default_factory=list)  # execution ARNs it started

    @property
    def transitions(self) -> int:
        return self.states_entered + self.retries


def function_name(arn_or_name: str) -> str:
    """``careflow-RegisterCase`` (an ARN, or a name) -> ``RegisterCase``."""
    return arn_or_name.rsplit(":", 1)[-1].removeprefix("careflow-")


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return None


def count_history(events: Sequence[Mapping[str, Any]]) -> ExecutionCount:
    """Counts one execution's history (see the module's docstring for what counts)."""
    count = ExecutionCount()
    types = {e["id"]: e["type"] for e in events}
    for e in events:
        kind = e["type"]
        if kind.endswith("StateEntered"):
            count.states_entered += 1
        if kind in _SCHEDULED and not types.get(e.get("previousEventId"), "").endswith(
            "StateEntered"
        ):
            count.retries += 1
        if kind == "LambdaFunctionScheduled":
            details = e.get("lambdaFunctionScheduledEventDetails", {})
            count.lambda_invocations[function_name(details.get("resource", "?"))] += 1
        elif kind == "TaskScheduled":
            details = e.get("taskScheduledEventDetails", {})
            params = _json(details.get("parameters")) or {}
            if details.get("resourceType") == "lambda":
                count.lambda_invocations[function_name(str(params.get("FunctionName", "?")))] += 1
            elif details.get("resourceType") == "events" and details.get("resource", "").startswith(
                "putEvents"
            ):
                count.put_events += len(params.get("Entries", ()))
        elif kind in ("TaskSubmitted", "TaskSucceeded"):
            details = e.get("taskSubmittedEventDetails") or e.get("taskSucceededEventDetails", {})
            if details.get("resourceType") == "states" and details.get("resource", "").startswith(
                "startExecution"
            ):
                output = _json(details.get("output")) or {}
                arn = output.get("ExecutionArn") if isinstance(output, dict) else None
                if arn and arn not in count.children:
                    count.children.append(arn)
    return count


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of an execution's history (all pages)."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


@dataclass
class Invocation:
    """A Lambda invocation the local cloud ran, with the case it was for."""

    function: str
    instance_id: str | None
    seconds: float
    events_put: int  # PutEvents entries the handler sent
    from_event: bool  # its payload is an EventBridge event (a rule's target)


@dataclass
class CaseCost:
    workflow: str
    case: str
    executions: int = 0
    transitions: int = 0
    retries: int = 0
    lambda_invocations: Counter[str] = field(default_factory=Counter)
    outside_invocations: Counter[str] = field(default_factory=Counter)
    put_events: int = 0
    lambda_gb_seconds: float = 0.0

    @property
    def invocations(self) -> int:
        return sum(self.lambda_invocations.values()) + sum(self.outside_invocations.values())

    def usd(self) -> dict[str, float]:
        return {
            "step_functions": self.transitions * SFN_STANDARD_USD_PER_TRANSITION,
            "lambda_requests": self.invocations * LAMBDA_USD_PER_REQUEST,
            "lambda_duration": self.lambda_gb_seconds * LAMBDA_ARM64_USD_PER_GB_SECOND,
            "eventbridge": self.put_events * EVENTBRIDGE_USD_PER_CUSTOM_EVENT,
        }

    def total_usd(self) -> float:
        return sum(self.usd().values())


def _instance_id(value: Any) -> str | None:
    """The first ``instance_id`` in a payload or result, breadth first."""
    queue = [value]
    while queue:
        node = queue.pop(0)
        if isinstance(node, dict):
            found = node.get("instance_id")
            if isinstance(found, str):
                return found
            queue.extend(node.values())
        elif isinstance(node, list):
            queue.extend(node)
    return None


def _is_event(payload: Any) -> bool:
    if not isinstance(payload, dict):
        return False
    inner = payload.get("event")
    return "detail-type" in payload or (isinstance(inner, dict) and "detail-type" in inner)


def case_cost(
    workflow: str,
    case: str,
    histories: Mapping[str, Sequence[Mapping[str, Any]]],
    instance_ids: Iterable[str],
    invocations: Sequence[Invocation],
    memory_mb: Mapping[str, int],
    *,
    lambda_ms: float = ASSUMED_LAMBDA_MS,
) -> CaseCost:
    """A case's cost from its executions' histories (the root's and its children's, by
    execution ARN) and the invocations logged for its instances."""
    cost = CaseCost(workflow, case, executions=len(histories))
    for events in histories.values():
        counted = count_history(events)
        cost.transitions += counted.transitions
        cost.retries += counted.retries
        cost.lambda_invocations.update(counted.lambda_invocations)
        cost.put_events += counted.put_events
    mine = set(instance_ids)
    logged: Counter[str] = Counter()
    for inv in invocations:
        if inv.instance_id in mine:
            logged[inv.function] += 1
            cost.put_events += inv.events_put
    triggered: Counter[str] = Counter(
        inv.function for inv in invocations if inv.instance_id in mine and inv.from_event
    )
    for function, n in logged.items():
        outside = n - cost.lambda_invocations.get(function, 0)
        if outside > 0:
            cost.outside_invocations[function] = outside
            cost.put_events += min(outside, triggered[function])  # the event that invoked it
    everything = cost.lambda_invocations + cost.outside_invocations
    cost.lambda_gb_seconds = sum(
        n * memory_mb.get(function, 128) / 1024 * lambda_ms / 1000
        for function, n in everything.items()
    )
    return cost


# -- on the local cloud -------------------------------------------------------------------------
_current = threading.local()


def _count_put_events(params: Mapping[str, Any], **_: Any) -> None:
    record = getattr(_current, "record", None)
    if record is not None:
        record.events_put += len(params.get("Entries", ()))


def _count_put_events_hook(client: Any) -> Any:
    """A ``wiring.CLIENT_HOOKS`` entry: an events client counts what a handler puts."""
    if client.meta.service_model.service_name == "events":
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(
            f"before-parameter-build.{service}.PutEvents", _count_put_events
        )
    return client


def metered_cloud(port: int) -> Any:
    """A local cloud (sandbox connectors) that logs each Lambda invocation it runs."""
    from careflow import wiring
    from careflow.localcloud.cloud import LocalCloud

    class MeteredCloud(LocalCloud):
        def __init__(self) -> None:
            super().__init__(port, connectors="sandbox")
            self.log: list[Invocation] = []

        def start(self) -> MeteredCloud:
            wiring.reset()
            wiring.CLIENT_HOOKS.append(_count_put_events_hook)
            super().start()
            return self

        def stop(self) -> None:
            super().stop()
            if _count_put_events_hook in wiring.CLIENT_HOOKS:
                wiring.CLIENT_HOOKS.remove(_count_put_events_hook)

        def invoke(self, function: str, payload: bytes) -> tuple[bytes, str | None]:
            record = Invocation(function_name(function), None, 0.0, 0, False)
            outer, _current.record = getattr(_current, "record", None), record
            t0 = time.perf_counter()
            try:
                out, error = super().invoke(function, payload)
            finally:
                record.seconds = time.perf_counter() - t0
                _current.record = outer
            request = _json(payload.decode() if payload else "{}")
            record.from_event = _is_event(request)
            record.instance_id = _instance_id(request) or _instance_id(_json(out.decode()))
            with self._lock:
                self.log.append(record)
            return out, error

    return MeteredCloud()


@dataclass
class Run:
    cases: list[CaseCost]
    invocations: list[Invocation]
    unattributed: list[Invocation]


def run_demos(port: int | None = None) -> Run:
    """Every registered workflow's demo scenarios on one local cloud, each case priced."""
    from careflow.catalog import all_functions
    from careflow.localcloud.cloud import free_port
    from careflow.localcloud.demo import CaseReport, Demo, demos, scenarios

    memory = {name: spec.memory_mb for name, spec in all_functions().items()}
    cases: list[CaseCost] = []
    with metered_cloud(port or free_port()) as cloud:
        reports: list[tuple[CaseReport, str]] = []
        for wf in demos():
            demo = Demo(cloud)
            for report in scenarios(wf)(demo):
                reports.append((report, demo.instances[report.case_id][1]))
        sfn = cloud.client("stepfunctions")
        seen: set[str] = set()
        for report, instance_id in reports:
            histories: dict[str, list[dict[str, Any]]] = {}
            ids = {instance_id}
            pending = [report.execution_arn]
            while pending:
                arn = pending.pop()
                if arn in histories:
                    continue
                events = histories[arn] = history(sfn, arn)
                ids.add(arn.rsplit(":", 1)[-1])
                started = next((e for e in events if e["type"] == "ExecutionStarted"), {})
                child_input = _json(started.get("executionStartedEventDetails", {}).get("input"))
                if isinstance(child_input, dict) and isinstance(
                    child_input.get("instance_id"), str
                ):
                    ids.add(child_input["instance_id"])
                pending.extend(count_history(events).children)
            seen |= ids
            cases.append(
                case_cost(report.workflow, report.case_id, histories, ids, cloud.log, memory)
            )
        log = list(cloud.log)
    return Run(cases, log, [inv for inv in log if inv.instance_id not in seen])


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def lines(result: Run) -> list[str]:
    """The bench's cost lines: prices, then per workflow its parts and its average case,
    then the surgical happy path alone."""
    out = [
        f"cost prices us-east-1 {PRICES_DATE}: step_functions_standard="
        f"${SFN_STANDARD_USD_PER_TRANSITION:g}/transition lambda=$0.20/1M requests + "
        f"${LAMBDA_ARM64_USD_PER_GB_SECOND:g}/GB-s arm64 at {ASSUMED_LAMBDA_MS} ms each "
        f"(in-process mean {_mean(i.seconds for i in result.invocations) * 1000:.1f} ms) "
        "eventbridge=$1.00/1M events; DynamoDB, logs, free tiers excluded"
    ]
    by_workflow: dict[str, list[CaseCost]] = {}
    for case in result.cases:
        by_workflow.setdefault(case.workflow, []).append(case)

    def parts(label: str, group: list[CaseCost]) -> str:
        usd = {k: _mean(c.usd()[k] for c in group) * 1000 for k in group[0].usd()}
        return (
            f"cost parts {label} cases={len(group)} "
            f"executions={_mean(c.executions for c in group):.1f} "
            f"retries={_mean(c.retries for c in group):.1f} "
            f"lambda_outside_sfn={_mean(sum(c.outside_invocations.values()) for c in group):.1f} "
            f"put_events={_mean(c.put_events for c in group):.1f} "
            f"lambda_gb_s={_mean(c.lambda_gb_seconds for c in group):.3f} "
            + " ".join(f"{k}_usd_per_1000={v:.4f}" for k, v in usd.items())
        )

    for workflow, group in by_workflow.items():
        out.append(parts(f"workflow={workflow}", group))
        out.append(
            f"cost workflow={workflow} "
            f"transitions={_mean(c.transitions for c in group):.1f} "
            f"lambda_invocations={_mean(c.invocations for c in group):.1f} "
            f"usd_per_1000={_mean(c.total_usd() for c in group) * 1000:.4f}"
        )
    for case in result.cases:
        if (case.workflow, case.case) == (HAPPY_PATH_WORKFLOW, HAPPY_PATH_CASE):
            label = f"workflow={case.workflow} case={case.case}"
            out.append(parts(label, [case]))
            out.append(
                f"cost {label} transitions={case.transitions} "
                f"lambda_invocations={case.invocations} "
                f"usd_per_1000={case.total_usd() * 1000:.4f}"
            )
    if result.unattributed:
        names = Counter(i.function for i in result.unattributed)
        out.append(
            "cost unattributed lambda_invocations="
            + str(len(result.unattributed))
            + " "
            + " ".join(f"{k}={v}" for k, v in sorted(names.items()))
        )
    return out


HAPPY_PATH_WORKFLOW = "surgical-case-readiness"
HAPPY_PATH_CASE = "appt-1001"  # all clear: the issue keeps it under $0.60 per 1,000 cases


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    for name in ("werkzeug", "moto", "botocore"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for line in lines(run_demos()):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
