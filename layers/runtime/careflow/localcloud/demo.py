"""``careflow demo [WORKFLOW]``: every registered workflow's scenarios, on the real state machines.

Each workflow package names its demo in its spec (``demo="<module>:<function>"``); the
function drives its scenarios with the helpers of :class:`Demo` and returns a report per
case. This module names no workflow.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from careflow import wiring
from careflow.domain.intake import instance_id_for
from careflow.domain.records import HumanTask
from careflow.domain.tasks import complete_task
from careflow.kit.registry import workflows
from careflow.kit.spec import Scenario, Workflow
from careflow.localcloud.cloud import LocalCloud


class UnknownWorkflow(ValueError):
    """``careflow demo WORKFLOW`` named no registered workflow with a demo."""


@dataclass
class CaseReport:
    workflow: str
    key: str
    case_id: str
    scenario: str
    procedure: str
    facility: str
    scheduled_start: str
    outcome: str
    reasons: list[str]
    milestones: list[dict[str, str]]
    execution_arn: str
    tasks: list[dict[str, Any]] = field(default_factory=list)


class Demo:
    """What a workflow's demo drives: the cloud, the clock, tasks and reports."""

    def __init__(self, cloud: LocalCloud, *, say: Callable[[str], None] = lambda _: None) -> None:
        self.cloud = cloud
        self.say = say
        self.store = wiring.store()
        self.t0 = cloud.clock.now()
        # subject id -> (workflow id, instance id)
        self.instances: dict[str, tuple[str, str]] = {}

    # -- helpers -------------------------------------------------------------------------------
    def _elapsed(self, at: datetime) -> str:
        seconds = int((at - self.t0).total_seconds())
        days, rest = divmod(max(seconds, 0), 86400)
        hours, rest = divmod(rest, 3600)
        return f"+{days}d {hours:02d}h{rest // 60:02d}m"

    def started(self, workflow_id: str, subject_id: str, idempotency_key: str) -> str:
        """Remembers the instance an event for ``subject_id`` starts (intake's own id)."""
        instance_id = instance_id_for(workflow_id, idempotency_key)
        self.instances[subject_id] = (workflow_id, instance_id)
        return instance_id

    def instance_id(self, subject_id: str) -> str:
        return self.instances[subject_id][1]

    def arn(self, subject_id: str) -> str:
        workflow_id, instance_id = self.instances[subject_id]
        return self.cloud.execution_arn(instance_id, workflow_id)

    def open_task(self, subject_id: str, *, level: int = 0) -> HumanTask:
        def find() -> HumanTask | None:
            for t in self.store.tasks_for_instance(self.instance_id(subject_id)):
                if t.awaits_decision and t.escalation_level >= level:
                    return t
            return None

        task: HumanTask = self.cloud.wait_for(find, 30, f"an open task on {subject_id}")
        return task

    def decide(self, task: HumanTask, actor: str, decision: str, reason: str) -> None:
        """A person completes ``task`` (as through the tasks API): the workflow resumes."""
        complete_task(
            self.store,
            wiring.engine(),
            task_id=task.task_id,
            actor=actor,
            decision=decision,
            reason=reason,
            now=self.cloud.clock.now(),
        )

    def milestone(self, subject_id: str, name: str) -> None:
        self.cloud.wait_for(
            lambda: any(
                m.name == name for m in self.store.milestones(self.instance_id(subject_id))
            ),
            30,
            f"milestone {name} on {subject_id}",
        )

    def advance(self, delta: timedelta, *, timer: timedelta | None = None) -> None:
        """Advances the clock; with ``timer``, only once a timer of that length has started."""
        if timer is not None:
            started = self.cloud.clock.wait_for_timer(
                timer - timedelta(minutes=5), timer, timeout=30
            )
            if started is None:
                raise TimeoutError(f"no {timer} timer started")
        self.cloud.clock.advance(delta)
        self.say(f"  clock advanced by {delta} → {self._elapsed(self.cloud.clock.now())}")

    def arn_when_started(self, subject_id: str) -> str:
        arn = self.arn(subject_id)
        self.cloud.wait_for(lambda: self._exists(arn), 30, f"execution for {subject_id}")
        return arn

    def _exists(self, arn: str) -> bool:
        try:
            self.cloud.describe(arn)
        except Exception:
            return False
        return True

    def report(self, sc: Scenario, *, what: str, facility: str, scheduled_start: str) -> CaseReport:
        workflow_id, instance_id = self.instances[sc.subject_id]
        instance = self.store.get_instance(instance_id)
        milestones = sorted(self.store.milestones(instance_id), key=lambda m: m.at)
        tasks = self.store.tasks_for_instance(instance_id)
        return CaseReport(
            workflow=workflow_id,
            key=sc.key,
            case_id=sc.subject_id,
            scenario=sc.story,
            procedure=what,
            facility=facility,
            scheduled_start=scheduled_start,
            outcome=(instance.outcome or instance.status.value) if instance else "UNKNOWN",
            reasons=list(instance.outcome_reasons) if instance else [],
            milestones=[
                {
                    "name": m.name,
                    "status": m.status,
                    "at": m.at.isoformat(),
                    "elapsed": self._elapsed(m.at),
                    "detail": m.detail,
                }
                for m in milestones
            ],
            execution_arn=self.arn(sc.subject_id),
            tasks=[
                {
                    "task_id": t.task_id,
                    "queue": t.queue,
                    "status": t.status.value,
                    "escalation_level": t.escalation_level,
                    "decision": t.decision,
                }
                for t in tasks
            ],
        )


def render(reports: list[CaseReport], wall_seconds: float) -> str:
    lines = []
    titles = {wf.id: wf.title for wf in workflows()}
    current = None
    for r in reports:
        if r.workflow != current:
            current = r.workflow
            lines.append("")
            lines.append(f"== {titles.get(r.workflow, r.workflow)} ==")
        lines.append("")
        lines.append(f"({r.key}) {r.case_id}  {r.procedure} at {r.facility}  [{r.scenario}]")
        for m in r.milestones:
            detail = f"  {m['detail']}" if m["detail"] else ""
            lines.append(f"    {m['elapsed']:>13}  {m['name']:<30} {m['status']:<9}{detail}")
        lines.append(f"    outcome: {r.outcome}")
        lines.extend(f"      - {reason}" for reason in r.reasons)
    lines.append("")
    lines.append("Summary")
    lines.append(f"  {'workflow':<26}{'case':<11}{'outcome':<10}{'tasks':<7}scenario")
    for r in reports:
        lines.append(
            f"  {r.workflow:<26}{r.case_id:<11}{r.outcome:<10}{len(r.tasks):<7}{r.scenario}"
        )
    counts: dict[str, int] = {}
    for r in reports:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    lines.append(
        "  "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + f"; {wall_seconds:.1f} s of wall time"
    )
    return "\n".join(lines)


def demos(only: Sequence[str] = ()) -> list[Workflow]:
    """The registered workflows that have a demo, or only those named (by id)."""
    with_demo = [wf for wf in workflows() if wf.demo]
    unknown = set(only) - {wf.id for wf in with_demo}
    if unknown:
        names = ", ".join(wf.id for wf in with_demo)
        raise UnknownWorkflow(f"no demo for {', '.join(sorted(unknown))} (there is: {names})")
    return [wf for wf in with_demo if not only or wf.id in only]


def scenarios(wf: Workflow) -> Callable[[Demo], list[CaseReport]]:
    assert wf.demo is not None
    module, _, name = wf.demo.partition(":")
    fn: Callable[[Demo], list[CaseReport]] = getattr(importlib.import_module(module), name)
    return fn


def run(
    port: int,
    *,
    as_json: bool = False,
    say: Callable[[str], None] = print,
    connectors: str = "http",
    only: Sequence[str] = (),
    before_stop: Callable[[LocalCloud], None] | None = None,
) -> list[dict[str, Any]]:
    """Runs the demos; ``before_stop`` sees the cloud once every scenario has run (a test
    reads its histories, queues and bus archive there)."""
    chosen = demos(only)
    started = time.monotonic()
    reports: list[CaseReport] = []
    with LocalCloud(port, connectors=connectors) as cloud:
        for wf in chosen:
            demo = Demo(cloud, say=(lambda _: None) if as_json else say)
            reports.extend(scenarios(wf)(demo))
        if before_stop is not None:
            before_stop(cloud)
    wall = time.monotonic() - started
    if not as_json:
        say(render(reports, wall))
    return [asdict(r) for r in reports]
