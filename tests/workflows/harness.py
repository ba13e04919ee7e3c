"""Drives the surgical readiness state machine on the local cloud, case by case."""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from careflow import wiring
from careflow.adapters.sandbox import KNEE, CaseSeed, PayerRule, _cpt, sandbox
from careflow.canonical.cases import Priority
from careflow.canonical.payer import AuthDecision
from careflow.domain.intake import instance_id_for
from careflow.domain.records import HumanTask
from careflow.domain.tasks import claim_task, complete_task
from careflow.localcloud.cloud import LocalCloud

WORKFLOW = "surgical-case-readiness"
_numbers = itertools.count(7001)


class Case:
    def __init__(
        self, cloud: LocalCloud, case_id: str, instance_id: str, workflow: str = WORKFLOW
    ) -> None:
        self.cloud, self.case_id, self.instance_id = cloud, case_id, instance_id
        self.arn = cloud.execution_arn(instance_id, workflow)
        self.store = wiring.store()

    def child(self) -> Case:
        """The prior authorization this case started as a child execution."""
        return Case(
            self.cloud, f"{self.case_id}/auth", f"{self.instance_id}-auth", "prior-authorization"
        )

    def started(self) -> Case:
        self.cloud.wait_for(self._exists, 20, f"execution of {self.case_id}")
        return self

    def _exists(self) -> bool:
        try:
            self.cloud.describe(self.arn)
        except Exception:
            return False
        return True

    def finish(self, timeout: float = 30) -> dict[str, Any]:
        return self.cloud.wait_for_execution(self.arn, timeout)

    def drive(self, step: timedelta = timedelta(minutes=2), timeout: float = 30) -> dict[str, Any]:
        """Advances the clock in steps until the execution ends (retries, backoff, timers)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            d = self.cloud.describe(self.arn)
            if d["status"] != "RUNNING":
                return d
            self.cloud.clock.advance(step)
            time.sleep(0.03)
        raise TimeoutError(f"{self.case_id} still running")

    def output(self) -> dict[str, Any]:
        d = self.finish()
        assert d["status"] == "SUCCEEDED", d
        out: dict[str, Any] = json.loads(d["output"])
        return out

    def instance(self) -> Any:
        return self.store.get_instance(self.instance_id)

    def milestones(self) -> list[Any]:
        return sorted(self.store.milestones(self.instance_id), key=lambda m: m.at)

    def milestone_names(self) -> list[str]:
        return [m.name for m in self.milestones()]

    def wait_milestone(self, name: str, timeout: float = 20) -> Any:
        return self.cloud.wait_for(
            lambda: next((m for m in self.milestones() if m.name == name), None),
            timeout,
            f"milestone {name} on {self.case_id}",
        )

    def open_task(self, level: int = 0, timeout: float = 20) -> HumanTask:
        def find() -> HumanTask | None:
            for t in self.store.tasks_for_instance(self.instance_id):
                if t.awaits_decision and t.escalation_level >= level:
                    return t
            return None

        task: HumanTask = self.cloud.wait_for(find, timeout, f"open task on {self.case_id}")
        return task

    def tasks(self) -> list[HumanTask]:
        return list(self.store.tasks_for_instance(self.instance_id))

    def history(self) -> list[dict[str, Any]]:
        sfn = self.cloud.client("stepfunctions")
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": self.arn, "maxResults": 1000}
        while True:
            page = sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    def entered_states(self) -> set[str]:
        return {
            e["stateEnteredEventDetails"]["name"]
            for e in self.history()
            if "stateEnteredEventDetails" in e
        }


def claim_and_complete(
    cloud: LocalCloud, task: HumanTask, decision: str, *, actor: str, reason: str = "checked"
) -> HumanTask:
    """As a person works a task: claim it, then decide. ``actor`` is one of the sandbox
    hospital's people (careflow.actors) whose role the task's pinned policy allows."""
    governed: dict[str, Any] = {"now": cloud.clock.now(), "policies": wiring.policies()}
    claim_task(wiring.store(), task_id=task.task_id, actor=actor, **governed)
    return complete_task(
        wiring.store(),
        wiring.engine(),
        task_id=task.task_id,
        actor=actor,
        decision=decision,
        reason=reason,
        **governed,
    )


WAITING_EVENTS = frozenset({"TaskSubmitted", "WaitStateEntered"})


def advance_through_timer(
    cloud: LocalCloud,
    length: timedelta,
    slack: timedelta = timedelta(minutes=5),
    *,
    case: Case | None = None,
) -> None:
    """Advances the clock by ``length`` once a timer of about that length has started.

    Advancing before the workflow's timer exists would start the timer after the jump.
    The suite's cloud is shared: another execution may hold a timer of the same length.
    With ``case``, the jump also waits until that execution itself waits (its history's
    last event: a task waiting on its token, or a Wait state), as a human task's timer
    starts only after its task record exists.
    """
    if case is not None:

        def waits() -> bool:
            history = case.history()  # empty until the execution has started
            return bool(history) and history[-1]["type"] in WAITING_EVENTS

        cloud.wait_for(waits, 60, f"{case.case_id} waiting on its timer")
        time.sleep(0.05)  # the timer registers right after the event is written
    deadline = cloud.clock.wait_for_timer(length - slack, length, timeout=20)
    assert deadline is not None, f"no timer of {length} started"
    cloud.clock.advance(length)


def new_case(
    cloud: LocalCloud,
    *,
    payer: PayerRule | None = None,
    supplies=KNEE,
    facility: str = "fac-north",
    starts_in: timedelta = timedelta(days=10),
    priority: Priority = Priority.ROUTINE,
    trays=("TRAY-KNEE-01",),
    book: bool = True,
    **case_updates: Any,
) -> Case:
    number = next(_numbers)
    case_id = f"appt-{number}"
    sb = sandbox()
    seed = CaseSeed(
        case_id,
        facility,
        _cpt("27447", "Total knee arthroplasty"),
        "orthopedics",
        starts_in,
        payer or PayerRule(AuthDecision.APPROVED),
        tuple(supplies),
        tuple(trays),
        "Practitioner/dr-okafor",
        "Location/or-north-3",
        priority=priority,
    )
    case = sb.add_case(seed, cloud.clock.now())
    if case_updates:
        with sb.lock:
            sb.cases[case_id] = case.model_copy(update=case_updates)
    key = f"appointment:{case_id}:booked"
    if book:
        cloud.book_appointment(case_id, case.scheduled_start, facility, idempotency_key=key)
    return Case(cloud, case_id, instance_id_for(WORKFLOW, key))


# ai-models versions the workflow tests publish. One counter for every file: a worker's
# tests share its cloud, and a version must be above the one current in its table.
_ai_versions = itertools.count(1001)


@contextlib.contextmanager
def ai_models(cloud: LocalCloud, model_id: str, **then: Any) -> Iterator[str]:
    """Publishes an ai-models version with ``model_id``'s row ``then`` changed (e.g.
    ``mode="off"``: the kill switch), yields its version ("ai-models@..."), and publishes
    the packaged rows back afterwards, as a newer version."""
    from careflow.policies import FilePolicyStore, parse_document, publish
    from careflow.policies.store_dynamodb import DynamoPolicyStore

    table = DynamoPolicyStore(cloud.client("dynamodb"), wiring.settings().table_name)
    current = FilePolicyStore().current("ai-models", None)
    assert current is not None
    packaged = current.model_dump_json(by_alias=True, exclude_none=True)
    document = json.loads(packaged)
    base, bump = document["version"], next(_ai_versions)
    document["version"] = f"{base}.{bump}"
    rows = [r for r in document["tables"]["models"]["rows"] if r["id"] == model_id]
    assert rows, f"no ai-models row {model_id}"
    rows[0]["then"].update(then)
    assert publish(table, parse_document(document, "test")) == "published"
    try:
        yield f"ai-models@{base}.{bump}"
    finally:
        restored = json.loads(packaged)
        restored["version"] = f"{base}.{next(_ai_versions)}"
        publish(table, parse_document(restored, "test"))
