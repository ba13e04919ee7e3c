"""What a workflow concludes about each dependency of its subject, and the outcome."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from careflow.canonical.datatypes import Model


class DependencyStatus(StrEnum):
    OK = "OK"
    PENDING = "PENDING"  # still waiting on someone else; not yet a threat
    THREATENED = "THREATENED"  # may not be ready for the case date
    BLOCKED = "BLOCKED"  # the case cannot go ahead as booked
    ERROR = "ERROR"  # the check itself failed; a person must look


class DependencyResult(Model):
    dependency: str
    status: DependencyStatus
    reasons: tuple[str, ...] = ()
    details: dict[str, Any] = Field(default_factory=dict)


class Outcome(StrEnum):
    READY = "READY"
    AT_RISK = "AT_RISK"
    BLOCKED = "BLOCKED"


OUTCOME_EVENTS = {
    Outcome.READY: "Case.Ready",
    Outcome.AT_RISK: "Case.AtRisk",
    Outcome.BLOCKED: "Case.Blocked",
}
