"""``careflow demo [WORKFLOW]``: every registered workflow's scenarios, on the real state machines.

Each workflow package names its demo in its spec (``demo="<module>:<function>"``); the
function drives its scenarios with the helpers of :class:`Demo` and returns a report per
case. This module names no workflow.

What a person reads: milestones in words, times in the facility's own time zone to the
minute (:mod:`careflow.facilities`), outcomes as business words (each workflow's
:class:`Wording`), and a note wherever a deadline passed. ``--json`` keeps the codes
(``outcome``, milestone ``name``/``status``/``at``) and adds the words beside them.
"""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from careflow import wiring
from careflow.domain.intake import instance_id_for
from careflow.domain.records import HumanTask, Milestone
from careflow.domain.tasks import claim_task, complete_task, reassign_task
from careflow.facilities import facility as registered_facility
from careflow.kit.registry import workflows
from careflow.kit.spec import Scenario, Workflow
from careflow.localcloud.cloud import LocalCloud

# Milestones every workflow with human tasks records (the kit's task loop).
TASK_MILESTONES = {
    "task_opened": "Task opened",
    "task_escalated": "Task escalated",
    "task_completed": "Task completed",
}
STATUS_WORDS = {"DONE": "", "PENDING": "waiting", "FAILED": "not met", "ESCALATED": "escalated"}
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})")
_SNAKE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")


class UnknownWorkflow(ValueError):
    """``careflow demo WORKFLOW`` named no registered workflow with a demo."""


@dataclass(frozen=True)
class Wording:
    """How one workflow's demo reads to an operations person."""

    milestones: Mapping[str, str] = field(default_factory=dict)  # name -> label
    outcomes: Mapping[str, str] = field(default_factory=dict)  # code -> words
    # milestone name -> the cause that follows the outcome ("Blocked — authorization denied")
    causes: Mapping[str, str] = field(default_factory=dict)
    # milestone name -> the note it earns: a deadline that passed ("decision clock ran out")
    deadlines: Mapping[str, str] = field(default_factory=dict)
    start: str = "start"  # what the scheduled start is: "case start", "service date"
    # milestones that belong after the start (a discharge's departure and its conclusion):
    # not "still being worked"
    after_start: frozenset[str] = frozenset()

    def label(self, milestone: str) -> str:
        return (
            self.milestones.get(milestone) or TASK_MILESTONES.get(milestone) or humanize(milestone)
        )


def humanize(code: str) -> str:
    """``authorization_pended`` -> ``Authorization pended``; ``AT_RISK`` -> ``At risk``."""
    words = code.replace("_", " ").strip().lower()
    return words[:1].upper() + words[1:]


def local_time(at: datetime, facility_id: str) -> str:
    """``Tue 1 Dec 07:30 CST``: in the facility's zone (UTC for one the registry lacks)."""
    known = registered_facility(facility_id)
    local = known.local(at) if known else at.astimezone(UTC)
    return f"{local:%a} {local.day} {local:%b %H:%M} {local.tzname()}"


def _iso_times(text: str) -> list[datetime]:
    return [datetime.fromisoformat(m.replace("Z", "+00:00")) for m in _ISO_TIME.findall(text)]


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
    # what a person reads, beside the codes above
    facility_id: str = ""
    time_zone: str = ""
    start_label: str = "start"
    scheduled_start_local: str = ""
    outcome_label: str = ""
    outcome_base_label: str = ""
    execution_status: str = ""
    reasons_text: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


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

    def claim(self, task: HumanTask, actor: str) -> None:
        """A person whose role may work the task's queue takes it (as through the tasks API)."""
        claim_task(
            self.store,
            task_id=task.task_id,
            actor=actor,
            now=self.cloud.clock.now(),
            policies=wiring.policies(),
        )

    def reassign(self, task: HumanTask, actor: str, to: str, reason: str) -> None:
        """Someone supervising the queue (or the claimant) hands the task to ``to``."""
        reassign_task(
            self.store,
            task_id=task.task_id,
            actor=actor,
            to=to,
            reason=reason,
            now=self.cloud.clock.now(),
            policies=wiring.policies(),
        )

    def decide(self, task: HumanTask, actor: str, decision: str, reason: str) -> None:
        """The task's claimant completes it (as through the tasks API): the workflow resumes."""
        complete_task(
            self.store,
            wiring.engine(),
            task_id=task.task_id,
            actor=actor,
            decision=decision,
            reason=reason,
            now=self.cloud.clock.now(),
            policies=wiring.policies(),
        )

    def milestone(self, subject_id: str, name: str) -> None:
        self.cloud.wait_for(
            lambda: any(
                m.name == name for m in self.store.milestones(self.instance_id(subject_id))
            ),
            30,
            f"milestone {name} on {subject_id}",
        )

    def advance(self, delta: timedelta, *, timer: timedelta | None = None, timers: int = 1) -> None:
        """Advances the clock; with ``timer``, only once ``timers`` timers of that length
        have started."""
        if timer is not None:
            started = self.cloud.clock.wait_for_timer(
                timer - timedelta(minutes=5), timer, timeout=30, count=timers
            )
            if started is None:
                raise TimeoutError(f"no {timer} timer started")
        self.cloud.clock.advance(delta)
        now = self._elapsed(self.cloud.clock.now())
        self.say(f"  clock advanced by {_duration(delta)}, now T0 {now}")

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

    def _status(self, arn: str) -> str:
        try:
            status: str = self.cloud.describe(arn)["status"]
        except Exception:
            return "UNKNOWN"
        return status

    def report(
        self,
        sc: Scenario,
        *,
        what: str,
        facility_id: str,
        scheduled_start: datetime,
        wording: Wording | None = None,
    ) -> CaseReport:
        from careflow.adapters.sandbox import FACILITIES

        words = wording or Wording()
        workflow_id, instance_id = self.instances[sc.subject_id]
        instance = self.store.get_instance(instance_id)
        milestones = sorted(self.store.milestones(instance_id), key=lambda m: m.at)
        tasks = self.store.tasks_for_instance(instance_id)
        arn = self.arn(sc.subject_id)
        execution_status = self._status(arn)
        known = registered_facility(facility_id)
        outcome = (instance.outcome or instance.status.value) if instance else "UNKNOWN"
        base = words.outcomes.get(outcome) or _without_outcome(outcome, execution_status)
        cause = next((words.causes[m.name] for m in milestones if m.name in words.causes), None)

        def when(at: datetime) -> str:
            return local_time(at, facility_id)

        def text(raw: str) -> str:
            """A detail or reason in words: local times, outcome codes as words."""
            out = _ISO_TIME.sub(lambda m: when(_iso_times(m.group(0))[0]), raw)
            for code, label in words.outcomes.items():
                out = re.sub(rf"\b{re.escape(code)}\b", label.lower(), out)
            return _SNAKE.sub(lambda m: m.group(0).replace("_", " "), out)

        reasons = list(instance.outcome_reasons) if instance else []
        return CaseReport(
            workflow=workflow_id,
            key=sc.key,
            case_id=sc.subject_id,
            scenario=sc.story,
            procedure=what,
            facility=FACILITIES.get(facility_id) or (known.name if known else facility_id),
            scheduled_start=scheduled_start.isoformat(),
            outcome=outcome,
            reasons=reasons,
            milestones=[
                {
                    "name": m.name,
                    "status": m.status,
                    "at": m.at.isoformat(),
                    "elapsed": self._elapsed(m.at),
                    "detail": m.detail,
                    "label": words.label(m.name),
                    "status_label": STATUS_WORDS.get(m.status, humanize(m.status)),
                    "at_local": when(m.at),
                    "detail_text": text(m.detail),
                }
                for m in milestones
            ],
            execution_arn=arn,
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
            facility_id=facility_id,
            time_zone=known.time_zone if known else "UTC",
            start_label=words.start,
            scheduled_start_local=when(scheduled_start),
            outcome_label=f"{base} — {cause}" if cause else base,
            outcome_base_label=base,
            execution_status=execution_status,
            reasons_text=[text(r) for r in reasons],
            notes=deadline_notes(milestones, scheduled_start, words, when),
        )


def deadline_notes(
    milestones: Sequence[Milestone],
    scheduled_start: datetime,
    words: Wording,
    when: Callable[[datetime], str],
) -> list[str]:
    """A note for each deadline a case passed: a time a milestone expects (a delivery)
    after the scheduled start, a milestone reached after it, an SLA that escalated, and
    the workflow's own deadline milestones (a decision clock that ran out)."""
    start = f"the {words.start} ({when(scheduled_start)})"
    notes: list[str] = []
    for m in milestones:
        label = words.label(m.name)
        notes += [
            f"{label}: due {when(later)}, after {start}"
            for later in _iso_times(m.detail)
            if later > scheduled_start
        ]
        if m.status == "ESCALATED":
            notes.append(f"SLA passed at {when(m.at)}: {label[:1].lower()}{label[1:]}")
        if m.name in words.deadlines:
            notes.append(f"{words.deadlines[m.name]} at {when(m.at)}")
    late = [m for m in milestones if m.at > scheduled_start and m.name not in words.after_start]
    if late:
        last = late[-1]
        notes.append(
            f"Still being worked after {start}: {len(late)} step(s) after it, the last "
            f"({words.label(last.name).lower()}) at {when(last.at)}"
        )
    return list(dict.fromkeys(notes))


def _without_outcome(status: str, execution_status: str) -> str:
    """What a person reads for an instance that reached no business outcome its workflow
    words (the execution's status stays in ``--json``)."""
    if status in ("RUNNING", "WAITING") and execution_status == "RUNNING":
        return "Still in progress"
    if status in ("RUNNING", "WAITING", "FAILED", "COMPLETED", "UNKNOWN"):
        return "Stopped before an outcome (see the execution)"
    return humanize(status)


def _duration(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:g} day(s)" if hours % 24 == 0 else f"{hours:g} h"


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
        lines.append(f"    {r.start_label}: {r.scheduled_start_local}")
        for m in r.milestones:
            status = f"[{m['status_label']}]" if m["status_label"] else ""
            lines.append(
                f"    {m['at_local']:<21}{m['label']:<42}{status:<12}{m['detail_text']}".rstrip()
            )
        lines.append(f"    Outcome: {r.outcome_label}")
        lines.extend(f"      - {reason}" for reason in r.reasons_text)
        lines.extend(f"    Note: {note}" for note in r.notes)
    lines.append("")
    lines.append("Summary")
    width = max([len(r.outcome_label) for r in reports] + [7]) + 2
    lines.append(f"  {'case':<11}{'workflow':<27}{'outcome':<{width}}{'tasks':<7}scenario")
    for r in reports:
        title = titles.get(r.workflow, r.workflow)
        lines.append(
            f"  {r.case_id:<11}{title:<27}{r.outcome_label:<{width}}{len(r.tasks):<7}{r.scenario}"
        )
    counts: dict[str, int] = {}
    for r in reports:
        counts[r.outcome_base_label] = counts.get(r.outcome_base_label, 0) + 1
    noted = sum(1 for r in reports if r.notes)
    lines.append(
        "  "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + f"; {noted} case(s) passed a deadline; {wall_seconds:.1f} s of wall time"
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


def seed(
    cloud: LocalCloud,
    *,
    only: Sequence[str] = (),
    say: Callable[[str], None] = print,
    quiet: bool = True,
) -> list[CaseReport]:
    """Runs every demo's scenarios (or those of the workflows ``only`` names) on a cloud
    already started: ``careflow demo``'s, and ``careflow up --seed-demo``'s, which keeps
    serving what they left (instances, tasks, audit trails: the KPIs read them)."""
    reports: list[CaseReport] = []
    for wf in demos(only):
        demo = Demo(cloud, say=(lambda _: None) if quiet else say)
        reports.extend(scenarios(wf)(demo))
    return reports


OPEN_WORK_PER_WORKFLOW = 2


def seed_open_work(cloud: LocalCloud, per_workflow: int = OPEN_WORK_PER_WORKFLOW) -> list[str]:
    """``careflow up --seed-demo``'s work still in progress: ``per_workflow`` more starts of
    each workflow's ``waiting`` case (:func:`careflow.kit.bench.load_waiting`), or of its
    bench case when that waits for people or later events (it has a ``drive``), left
    undriven, so that the operations page shows open tasks in every such workflow's queues
    for people to claim. The starts go through intake's accept, as the bench's do. Returns
    the instance ids started."""
    import json as _json

    from careflow.domain import intake
    from careflow.kit import bench as kit_bench
    from careflow.kit.registry import workflows
    from careflow.localcloud.bench import claim_subject

    sfn = cloud.client("stepfunctions")
    started: list[str] = []
    for wf in workflows():
        if wf.bench is None:
            continue
        waits = kit_bench.load_waiting(wf.bench)
        if waits is None and kit_bench.load_driver(wf.bench) is None:
            continue  # its bench case ends by itself: nothing would wait
        case = waits or kit_bench.load(wf.bench)
        for n in range(per_workflow):
            request = intake.accept(
                case(cloud, f"open-work-{wf.id}-{n}"), state_machine_arns=cloud.state_machine_arns
            )
            if not isinstance(request, intake.StartRequest):
                continue
            if request.subject_id is not None:  # later events find it, as intake's would
                claim_subject(cloud, request)
            sfn.start_execution(
                stateMachineArn=request.state_machine_arn,
                name=request.instance_id,
                input=_json.dumps(request.input),
            )
            started.append(request.instance_id)
    return started


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
        reports.extend(seed(cloud, only=[wf.id for wf in chosen], say=say, quiet=as_json))
        if before_stop is not None:
            before_stop(cloud)
    wall = time.monotonic() - started
    if not as_json:
        say(render(reports, wall))
    return [asdict(r) for r in reports]
