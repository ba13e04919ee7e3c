"""Prior authorization's rules: the payer decision clocks, and what each ending means.

Pure functions: no I/O. Clock values come from the workflow's SLAs (CMS-0057-F: 72 h for
an expedited request, 7 calendar days for a standard one).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from careflow.canonical.payer import AuthDecision

URN = "utilization_review_nurse"
DIRECTOR = "department_director"
DOCUMENTS_CHAIN = (URN, DIRECTOR)
APPEAL_CHAIN = (URN, DIRECTOR)
PEND_CHAIN = (URN, DIRECTOR)


class Outcome(StrEnum):
    APPROVED = "APPROVED"
    MODIFIED = "MODIFIED"  # authorized, but not as requested: see the payer's addItem
    PARTIAL = "PARTIAL"
    DENIED = "DENIED"
    NOT_REQUIRED = "NOT_REQUIRED"
    EXPIRED = "EXPIRED"  # the payer's decision clock ran out
    NO_DOCUMENTS = "NO_DOCUMENTS"  # the documents the payer asked for never came
    ERROR = "ERROR"  # the payer could not be reached or answered nonsense


class Stage(StrEnum):
    DECIDED = "DECIDED"
    WAIT = "WAIT"
    ESCALATE = "ESCALATE"
    BREACHED = "BREACHED"


class Clocks(BaseModel):
    """Seconds from submission, resolved once per instance (pinned with its version)."""

    model_config = ConfigDict(frozen=True)

    overdue_s: int  # no notification by then: an $inquire is allowed
    escalate_at_s: int  # a person chases the payer
    deadline_s: int  # the regulatory decision clock
    documents_task_s: int
    appeal_task_s: int
    policy_version: str = "v1"


def clocks_for(priority: str, sla: Mapping[str, int]) -> Clocks:
    kind = "expedited" if priority == "expedited" else "standard"
    return Clocks(
        overdue_s=sla[f"notification_overdue_{kind}"],
        escalate_at_s=sla[f"pend_escalation_{kind}"],
        deadline_s=sla[f"decision_clock_{kind}"],
        documents_task_s=sla["documents_task"],
        appeal_task_s=sla["appeal_task"],
    )


def next_stage(
    decision: AuthDecision, elapsed_s: float, clocks: Clocks, *, escalated: bool
) -> tuple[Stage, int]:
    """After an inquiry: decided, or how long to wait for the next notification.

    Waits run to the next boundary of the clock (escalation, then the deadline), so the
    payer is asked at most once per boundary, never in a tight poll."""
    if decision is not AuthDecision.PENDED:
        return Stage.DECIDED, 0
    if elapsed_s >= clocks.deadline_s:
        return Stage.BREACHED, 0
    if elapsed_s >= clocks.escalate_at_s:
        remaining = max(int(clocks.deadline_s - elapsed_s), 1)
        return (Stage.WAIT if escalated else Stage.ESCALATE), remaining
    return Stage.WAIT, max(int(clocks.escalate_at_s - elapsed_s), 1)


def outcome_of(decision: str, stage: str) -> tuple[Outcome, tuple[str, ...]]:
    """How the request ended, with reasons a coordinator reads."""
    if stage == Stage.BREACHED:
        return Outcome.EXPIRED, ("payer gave no decision within the decision clock",)
    if stage == "NO_DOCUMENTS":
        return Outcome.NO_DOCUMENTS, ("the documents the payer asked for were not provided",)
    match decision:
        case AuthDecision.APPROVED:
            return Outcome.APPROVED, ()
        case AuthDecision.NOT_REQUIRED:
            return Outcome.NOT_REQUIRED, ("payer requires no authorization",)
        case AuthDecision.MODIFIED:
            return Outcome.MODIFIED, (
                "payer modified the requested services: review the authorized version",
            )
        case AuthDecision.PARTIAL:
            return Outcome.PARTIAL, ("payer certified only some of the requested services",)
        case AuthDecision.DENIED:
            return Outcome.DENIED, (
                "payer denied the authorization: an appeal or a new request is needed",
            )
    return Outcome.ERROR, ("the payer's answer could not be used: verify it by hand",)
