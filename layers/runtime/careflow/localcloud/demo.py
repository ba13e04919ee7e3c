"""``careflow demo``: the surgical readiness scenarios, through the real state machine.

(a) all clear → READY; (b) the payer pends and decides two days later → READY;
(c) an implant is short → requisition, coordinator task escalated after its SLA,
a buyer transfers stock and completes the task → the re-check decides;
(d) the payer denies → BLOCKED; (e) an expedited pend the payer never answers →
escalated at 48 h, clock expired at 72 h → AT_RISK.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from careflow import wiring
from careflow.adapters.sandbox import FACILITIES, sandbox
from careflow.domain.intake import instance_id_for
from careflow.domain.records import HumanTask
from careflow.domain.tasks import complete_task
from careflow.localcloud.cloud import LocalCloud

WORKFLOW = "surgical-case-readiness"


@dataclass(frozen=True)
class Scenario:
    key: str
    case_id: str
    story: str


SCENARIOS = (
    Scenario("a", "appt-1001", "all clear"),
    Scenario("b", "appt-1002", "payer pends, decides after 2 days"),
    Scenario("c", "appt-1003", "implant short, coordinator task escalated, stock transferred"),
    Scenario("d", "appt-1004", "payer denies"),
    Scenario("e", "appt-1005", "expedited pend, payer silent for 72 h"),
)


@dataclass
class CaseReport:
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
    def __init__(self, cloud: LocalCloud, *, say: Callable[[str], None] = lambda _: None) -> None:
        self.cloud = cloud
        self.say = say
        self.store = wiring.store()
        self.t0 = cloud.clock.now()
        self.instances: dict[str, str] = {}

    # -- helpers -------------------------------------------------------------------------------
    def _elapsed(self, at: datetime) -> str:
        seconds = int((at - self.t0).total_seconds())
        days, rest = divmod(max(seconds, 0), 86400)
        hours, rest = divmod(rest, 3600)
        return f"+{days}d {hours:02d}h{rest // 60:02d}m"

    def arn(self, case_id: str) -> str:
        return self.cloud.execution_arn(self.instances[case_id])

    def open_task(self, case_id: str, *, level: int = 0) -> HumanTask:
        def find() -> HumanTask | None:
            for t in self.store.tasks_for_instance(self.instances[case_id]):
                if t.awaits_decision and t.escalation_level >= level:
                    return t
            return None

        task: HumanTask = self.cloud.wait_for(find, 30, f"an open task on {case_id}")
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

    def milestone(self, case_id: str, name: str) -> None:
        self.cloud.wait_for(
            lambda: any(m.name == name for m in self.store.milestones(self.instances[case_id])),
            30,
            f"milestone {name} on {case_id}",
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

    # -- the scenario --------------------------------------------------------------------------
    def run(self) -> list[CaseReport]:
        sb = sandbox()
        self.say(
            f"Booking {len(SCENARIOS)} procedures at T0 = {self.t0.isoformat(timespec='minutes')}"
        )
        for sc in SCENARIOS:
            case = sb.cases[sc.case_id]
            key = f"appointment:{sc.case_id}:booked"
            self.cloud.book_appointment(
                sc.case_id, case.scheduled_start, case.facility_id, idempotency_key=key
            )
            self.instances[sc.case_id] = instance_id_for(WORKFLOW, key)
        for case_id in ("appt-1001", "appt-1004"):
            self.cloud.wait_for_execution(self.arn_when_started(case_id), 60)
        self.milestone("appt-1002", "authorization_pended")
        self.milestone("appt-1005", "authorization_pended")
        task = self.open_task("appt-1003")
        self.say(f"  (c) task {task.task_id} opened in {task.queue}: {task.title}")

        self.advance(timedelta(hours=5), timer=timedelta(hours=4))
        task = self.open_task("appt-1003", level=1)
        self.say(f"  (c) task overdue → escalated to {task.queue}")
        self.cloud.transfer_stock("IMP-THA-STEM-12", 1, "fac-north", "fac-south")
        self.say("  (c) supply chain buyer transfers 1 hip stem from North Valley to South Bay")
        self.decide(task, "user:buyer-jlee", "PROCEED", "stem transferred from fac-north")
        self.cloud.wait_for_execution(self.arn("appt-1003"), 60)

        self.advance(timedelta(days=2) - timedelta(hours=5), timer=timedelta(hours=43))
        self.cloud.wait_for_execution(self.arn("appt-1002"), 60)
        self.say("  (b) payer decision arrived by notification; case re-evaluated")
        self.milestone("appt-1005", "authorization_escalated")

        self.advance(timedelta(hours=24), timer=timedelta(hours=24))
        task = self.open_task("appt-1005")
        self.say(f"  (e) 72 h clock expired → task for {task.queue}")
        self.decide(
            task, "user:coordinator-mdiaz", "RESCHEDULE", "no payer decision; moving the case"
        )
        self.cloud.wait_for_execution(self.arn("appt-1005"), 60)
        return [self.report(sc) for sc in SCENARIOS]

    def arn_when_started(self, case_id: str) -> str:
        arn = self.arn(case_id)
        self.cloud.wait_for(lambda: self._exists(arn), 30, f"execution for {case_id}")
        return arn

    def _exists(self, arn: str) -> bool:
        try:
            self.cloud.describe(arn)
        except Exception:
            return False
        return True

    def report(self, sc: Scenario) -> CaseReport:
        case = sandbox().cases[sc.case_id]
        instance_id = self.instances[sc.case_id]
        instance = self.store.get_instance(instance_id)
        milestones = sorted(self.store.milestones(instance_id), key=lambda m: m.at)
        tasks = self.store.tasks_for_instance(instance_id)
        return CaseReport(
            case_id=sc.case_id,
            scenario=sc.story,
            procedure=case.procedure_codes[0].display or case.procedure_codes[0].code or "",
            facility=FACILITIES[case.facility_id],
            scheduled_start=case.scheduled_start.isoformat(),
            outcome=instance.status.value if instance else "UNKNOWN",
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
            execution_arn=self.arn(sc.case_id),
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
    for i, r in enumerate(reports):
        key = SCENARIOS[i].key if i < len(SCENARIOS) else "-"
        lines.append("")
        lines.append(f"({key}) {r.case_id}  {r.procedure} at {r.facility}  [{r.scenario}]")
        for m in r.milestones:
            detail = f"  {m['detail']}" if m["detail"] else ""
            lines.append(f"    {m['elapsed']:>13}  {m['name']:<30} {m['status']:<9}{detail}")
        lines.append(f"    outcome: {r.outcome}")
        lines.extend(f"      - {reason}" for reason in r.reasons)
    lines.append("")
    lines.append("Summary")
    lines.append(f"  {'case':<11}{'outcome':<10}{'tasks':<7}scenario")
    for r in reports:
        lines.append(f"  {r.case_id:<11}{r.outcome:<10}{len(r.tasks):<7}{r.scenario}")
    counts: dict[str, int] = {}
    for r in reports:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    lines.append(
        "  "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + f"; {wall_seconds:.1f} s of wall time"
    )
    return "\n".join(lines)


def run(
    port: int,
    *,
    as_json: bool = False,
    say: Callable[[str], None] = print,
    connectors: str = "http",
) -> list[dict[str, Any]]:
    started = time.monotonic()
    with LocalCloud(port, connectors=connectors) as cloud:
        reports = Demo(cloud, say=(lambda _: None) if as_json else say).run()
    wall = time.monotonic() - started
    if not as_json:
        say(render(reports, wall))
    return [asdict(r) for r in reports]
