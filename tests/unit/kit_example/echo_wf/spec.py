from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from careflow.kit.spec import Kpi, Sla, Trigger, Workflow, step_function


class PingSent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    subject_id: str


def _input(event: Any) -> dict[str, Any]:
    return {"subject_id": event.data.subject_id}


SPEC = Workflow(
    id="echo",
    name="Echo",
    title="Echo (the kit's test workflow)",
    asl=str(Path(__file__).resolve().parent.parent / "echo_wf.asl.json"),
    type="STANDARD",
    subject_type="ping",
    steps=(step_function("EchoAnswer", "careflow.workflows.echo_wf.steps:answer", "Answers"),),
    triggers=(Trigger("careflow.workforce", "Ping.Sent", build_input=_input),),
    event_schemas={"Ping.Sent": PingSent},
    slas=(Sla("answer", 60, "answer within a minute"),),
    kpis=(Kpi("Echoes", "Count", "pings answered"),),
    publishes=(),
)
