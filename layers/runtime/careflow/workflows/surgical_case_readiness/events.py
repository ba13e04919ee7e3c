"""The data of the events surgical case readiness publishes; the appointment events it
consumes are the shared models of :mod:`careflow.canonical.appointments`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict


class CaseOutcome(BaseModel):
    """``careflow.workflow`` / ``Case.Ready|AtRisk|Blocked``: what readiness concluded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: str
    instance_id: str
    outcome: Literal["READY", "AT_RISK", "BLOCKED"]
    reasons: list[str]
    scheduled_start: datetime
