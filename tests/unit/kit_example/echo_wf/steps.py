from __future__ import annotations

from datetime import datetime

from careflow.domain.records import Milestone
from careflow.kit.steps import StepInput, StepOutput, step
from careflow.ports import StateStore


class Ping(StepInput):
    instance_id: str
    subject_id: str


class Pong(StepOutput):
    answer: str


@step()
def answer(inp: Ping, *, store: StateStore, now: datetime) -> Pong:
    store.record_milestone(Milestone(instance_id=inp.instance_id, name="echoed", at=now))
    return Pong(answer=f"pong {inp.subject_id}")
