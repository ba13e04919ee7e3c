"""Prior authorization's rules: the payer decision clocks, and what each ending means.

Pure functions: no I/O. The numbers come from the ``prior-authorization`` policy in force
for the facility when the request started (CMS-0057-F: 72 h for an expedited request,
7 calendar days for a standard one), pinned for the instance's life.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from careflow.canonical.payer import AuthDecision

POLICY = "prior-authorization"


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
    REVIEW = "REVIEW"  # an answer careflow does not act on (UNKNOWN, non-conformant): a person
    WAIT = "WAIT"
    ESCALATE = "ESCALATE"
    BREACHED = "BREACHED"


class Clocks(BaseModel):
    """Seconds from submission and who works the tasks: resolved once per instance from the
    policy in force, pinned with its version (``policy_version``)."""

    model_config = ConfigDict(frozen=True)

    overdue_s: int  # no notification by then: an $inquire is allowed
    escalate_at_s: int  # a person chases the payer
    deadline_s: int  # the regulatory decision clock
    documents_task_s: int
    appeal_task_s: int
    documents_chain: tuple[str, ...]
    appeal_chain: tuple[str, ...]
    pend_chain: tuple[str, ...]
    policy_version: str
    # Which row of each decision table applied (for the audit trail).
    rows: dict[str, str] = {}


def _chain(queue: str, chain: Any) -> tuple[str, ...]:
    """The routed queue first, then the policy's chain without repeating it."""
    return (queue, *(q for q in chain if q != queue))


def clocks_from(
    policy: Any, *, priority: str, service_line: str, service_date: datetime, now: datetime
) -> Clocks:
    """The request's clocks and queues from a policy snapshot (its decision tables)."""
    clock = policy.table("pend_clock").decide({"priority": priority})
    documents = policy.table("additional_documentation_task").decide({"priority": priority})
    days = max((service_date - now).total_seconds() / 86400, 0.0)
    queue = policy.table("queue_routing").decide(
        {"service_line": service_line, "days_until_service": days}
    )
    routed = str(queue.outputs["queue"])
    return Clocks(
        overdue_s=int(clock.outputs["inquire_after_seconds"]),
        escalate_at_s=int(clock.outputs["escalate_after_seconds"]),
        deadline_s=int(clock.outputs["decision_clock_seconds"]),
        documents_task_s=int(documents.outputs["task_seconds"]),
        appeal_task_s=int(policy.value("appeal_task_seconds")),
        documents_chain=_chain(routed, documents.outputs["chain"]),
        appeal_chain=_chain(routed, policy.value("appeal_chain")),
        pend_chain=_chain(routed, documents.outputs["chain"]),
        policy_version=policy.version,
        rows={
            "pend_clock": clock.row_id,
            "additional_documentation_task": documents.row_id,
            "queue_routing": queue.row_id,
        },
    )


def next_stage(
    decision: AuthDecision,
    elapsed_s: float,
    clocks: Clocks,
    *,
    escalated: bool,
    needs_review: bool = False,
) -> tuple[Stage, int]:
    """After an inquiry: decided, to a person, or how long to wait for the next notification.

    An answer careflow cannot act on (``UNKNOWN``, or one that breaks PAS rules) goes to a
    person whatever it says. Waits run to the next boundary of the clock (escalation, then
    the deadline), so the payer is asked at most once per boundary, never in a tight poll."""
    if needs_review or decision is AuthDecision.UNKNOWN:
        return Stage.REVIEW, 0
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
