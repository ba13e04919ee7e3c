"""Surgical case readiness: each dependency's result, and the case's outcome.

Pure functions over canonical models. Handlers fetch facts through ports and call
these; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from careflow.canonical.cases import Participant, ParticipantStatus, SurgicalCase
from careflow.canonical.dependencies import DependencyResult, DependencyStatus, Outcome
from careflow.canonical.payer import EligibilityResponse
from careflow.canonical.supply import (
    Requisition,
    RequisitionLine,
    RequisitionRequest,
    StockPosition,
    TrayStatus,
)

AUTHORIZATION = "authorization"
BENEFITS = "benefits"
CLINICIAN_AND_ROOM = "clinician_and_room"
SUPPLIES = "supplies"
STERILE_PROCESSING = "sterile_processing"
DEPENDENCIES = (AUTHORIZATION, BENEFITS, CLINICIAN_AND_ROOM, SUPPLIES, STERILE_PROCESSING)

POLICY = "surgical-readiness"


class Policy(BaseModel):
    """What one case runs by, resolved at registration from the ``surgical-readiness`` policy
    in force for its facility and pinned with its version for the case's whole life."""

    model_config = ConfigDict(frozen=True)

    coordinator_task_s: int
    hard_stop_at: datetime
    policy_version: str
    coordinator_queue: str = "care_coordinator"
    coordinator_decisions: tuple[str, ...] = ("PROCEED", "RESCHEDULE", "CANCEL")
    # What the coordinator may also decide when a shortage threatens the case (a policy
    # pinned before the actions existed has none: the task offers the decisions above).
    shortage_decisions: tuple[str, ...] = ()
    # Who owns a threatened dependency: the first queue is escalated to, then the next.
    escalation_chains: dict[str, tuple[str, ...]] = {}
    last_resort_queue: str = "department_director"


def case_policy(case: SurgicalCase, policy: Any) -> Policy:
    """The case's timers and queues from a policy snapshot (its values and tables)."""
    chains = {
        dep: tuple(policy.table("escalation_chain").decide({"dependency": dep}).outputs["chain"])
        for dep in DEPENDENCIES
    }
    return Policy(
        coordinator_task_s=int(policy.value("coordinator_task_seconds")),
        hard_stop_at=case.scheduled_start
        - timedelta(seconds=int(policy.value("hard_stop_seconds"))),
        policy_version=policy.version,
        coordinator_queue=str(policy.value("coordinator_queue")),
        coordinator_decisions=tuple(policy.value("coordinator_decisions")),
        shortage_decisions=tuple(policy.values.get("shortage_decisions", ())),
        escalation_chains=chains,
        last_resort_queue=str(policy.value("last_resort_queue")),
    )


def _result(
    dependency: str, status: DependencyStatus, *reasons: str, **details: Any
) -> DependencyResult:
    return DependencyResult(
        dependency=dependency, status=status, reasons=tuple(reasons), details=details
    )


def authorization_result(
    outcome: str, preauth_ref: str | None = None, *, decision_clock_hours: float | None = None
) -> DependencyResult:
    """The authorization dependency from how the prior authorization workflow ended."""
    ref = {"preauth_ref": preauth_ref, "decision": outcome}
    match outcome:
        case "APPROVED":
            return _result(AUTHORIZATION, DependencyStatus.OK, **ref)
        case "NOT_REQUIRED":
            return _result(
                AUTHORIZATION, DependencyStatus.OK, "payer requires no authorization", **ref
            )
        case "DENIED":
            return _result(
                AUTHORIZATION,
                DependencyStatus.BLOCKED,
                "payer denied the authorization: an appeal or a new request is needed",
                **ref,
            )
        case "MODIFIED":
            return _result(
                AUTHORIZATION,
                DependencyStatus.THREATENED,
                "payer modified the requested services: review the authorized version",
                **ref,
            )
        case "PARTIAL":
            return _result(
                AUTHORIZATION,
                DependencyStatus.THREATENED,
                "payer certified only some of the requested services",
                **ref,
            )
        case "EXPIRED":
            clock = f"{decision_clock_hours:g} h " if decision_clock_hours else ""
            return _result(
                AUTHORIZATION,
                DependencyStatus.THREATENED,
                f"payer gave no decision within the {clock}decision clock",
                **ref,
            )
        case "NO_DOCUMENTS":
            return _result(
                AUTHORIZATION,
                DependencyStatus.THREATENED,
                "the documents the payer asked for were not provided",
                **ref,
            )
    return _result(
        AUTHORIZATION,
        DependencyStatus.ERROR,
        "the authorization check failed (payer unreachable or its answer unusable): "
        "verify it by hand",
        **ref,
    )


def benefits_result(response: EligibilityResponse) -> DependencyResult:
    if not response.active:
        detail = f": {response.reason}" if response.reason else ""
        return _result(BENEFITS, DependencyStatus.BLOCKED, f"coverage is not active{detail}")
    if not response.covered:
        return _result(
            BENEFITS,
            DependencyStatus.BLOCKED,
            response.reason or "the procedure is not a covered benefit",
        )
    return _result(BENEFITS, DependencyStatus.OK)


def clinician_and_room_result(
    participants: Sequence[Participant], case: SurgicalCase, now: datetime
) -> DependencyResult:
    within_hard_stop = now >= case.scheduled_start - timedelta(hours=72)
    threatened: list[str] = []
    pending: list[str] = []
    for p in participants:
        if not p.required:
            continue
        if p.status is ParticipantStatus.DECLINED:
            threatened.append(f"{p.role} {p.ref} declined: reassign or reschedule")
        elif p.status is not ParticipantStatus.ACCEPTED:
            pending.append(f"{p.role} {p.ref} not yet confirmed ({p.status.value})")
    roles = {p.role for p in participants if p.required}
    for needed in ("surgeon", "room"):
        if needed not in roles:
            threatened.append(f"no {needed} on the appointment")
    if threatened:
        return _result(CLINICIAN_AND_ROOM, DependencyStatus.THREATENED, *threatened, *pending)
    if pending:
        status = DependencyStatus.THREATENED if within_hard_stop else DependencyStatus.PENDING
        return _result(CLINICIAN_AND_ROOM, status, *pending)
    return _result(CLINICIAN_AND_ROOM, DependencyStatus.OK)


class Shortage(BaseModel):
    model_config = ConfigDict(frozen=True)

    item_id: str
    needed: int
    available: int
    supplier_id: str
    lead_time_days: float

    @property
    def shortfall(self) -> int:
        return self.needed - self.available


def find_shortages(case: SurgicalCase, positions: Iterable[StockPosition]) -> list[Shortage]:
    """Needs the facility cannot cover from stock (on hand minus reserved for other cases).

    Consignment and bill-only implants are received at use: never a shortage.
    """
    by_item = {p.item_id: p for p in positions}
    shortages = []
    for need in case.supplies:
        pos = by_item.get(need.item_id)
        if pos is None:
            shortages.append(
                Shortage(
                    item_id=need.item_id,
                    needed=need.quantity,
                    available=0,
                    supplier_id="unknown",
                    lead_time_days=0,
                )
            )
            continue
        if pos.consignment:
            continue
        if pos.available < need.quantity:
            shortages.append(
                Shortage(
                    item_id=need.item_id,
                    needed=need.quantity,
                    available=max(pos.available, 0),
                    supplier_id=pos.supplier_id,
                    lead_time_days=pos.lead_time_days,
                )
            )
    return shortages


def requisitions_for(
    case: SurgicalCase, shortages: Sequence[Shortage], policy: Policy
) -> list[RequisitionRequest]:
    """One requisition per supplier for the shortfall, needed by the hard stop."""
    by_supplier: dict[str, list[RequisitionLine]] = {}
    for s in shortages:
        if s.supplier_id == "unknown":
            continue
        by_supplier.setdefault(s.supplier_id, []).append(
            RequisitionLine(item_id=s.item_id, quantity=s.shortfall)
        )
    return [
        RequisitionRequest(
            facility_id=case.facility_id,
            supplier_id=supplier,
            lines=tuple(lines),
            needed_by=policy.hard_stop_at,
            reason=f"shortage for case {case.case_id}",
            reference=f"{case.case_id}:{supplier}",
        )
        for supplier, lines in sorted(by_supplier.items())
    ]


def supplies_result(
    shortages: Sequence[Shortage],
    requisitions: Sequence[Requisition],
    policy: Policy,
) -> DependencyResult:
    if not shortages:
        return _result(SUPPLIES, DependencyStatus.OK)
    reasons = []
    late = False
    unknown = [s for s in shortages if s.supplier_id == "unknown"]
    for s in unknown:
        reasons.append(f"item {s.item_id} is not in the facility's item master")
    latest = max((r.expected_delivery for r in requisitions), default=None)
    for s in shortages:
        if s.supplier_id != "unknown":
            reasons.append(f"item {s.item_id}: {s.available} available, {s.needed} needed")
    if latest is not None and latest > policy.hard_stop_at:
        late = True
        reasons.append(
            f"replenishment expected {latest.isoformat()}, after the hard stop "
            f"{policy.hard_stop_at.isoformat()}"
        )
    elif latest is not None:
        reasons.append(f"replenishment on order, expected {latest.isoformat()}")
    details = {
        "shortages": [s.model_dump() for s in shortages],
        "requisitions": [r.requisition_id for r in requisitions],
    }
    status = DependencyStatus.THREATENED if (late or unknown) else DependencyStatus.PENDING
    return _result(SUPPLIES, status, *reasons, **details)


def sterile_result(
    trays: Sequence[TrayStatus], case: SurgicalCase, policy: Policy
) -> DependencyResult:
    reasons = []
    for t in trays:
        if t.status == "missing":
            reasons.append(f"tray {t.tray_id} is missing")
        elif t.status != "ready" and (t.ready_at is None or t.ready_at > policy.hard_stop_at):
            reasons.append(f"tray {t.tray_id} will not be processed before the hard stop")
    known = {t.tray_id for t in trays}
    reasons.extend(
        f"tray {tid} unknown to sterile processing" for tid in case.tray_ids if tid not in known
    )
    if reasons:
        return _result(STERILE_PROCESSING, DependencyStatus.THREATENED, *reasons)
    return _result(STERILE_PROCESSING, DependencyStatus.OK)


def error_result(dependency: str, error: str) -> DependencyResult:
    return _result(
        dependency,
        DependencyStatus.ERROR,
        f"the {dependency.replace('_', ' ')} check failed ({error}): verify it by hand",
    )


class Evaluation(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    reasons: tuple[str, ...]
    needs_coordinator: bool
    escalation_chain: tuple[str, ...] = ()
    threatened: tuple[str, ...] = ()


def evaluate(results: Sequence[DependencyResult], policy: Policy) -> Evaluation:
    """BLOCKED if anything blocks; AT_RISK if anything is threatened or unchecked; else READY."""
    by_status: dict[DependencyStatus, list[DependencyResult]] = {}
    for r in results:
        by_status.setdefault(r.status, []).append(r)
    reasons = tuple(reason for r in results for reason in r.reasons)
    missing = set(DEPENDENCIES) - {r.dependency for r in results}
    if missing:
        reasons += tuple(f"{m} was not checked" for m in sorted(missing))
    if by_status.get(DependencyStatus.BLOCKED):
        return Evaluation(outcome=Outcome.BLOCKED, reasons=reasons, needs_coordinator=False)
    at_risk = by_status.get(DependencyStatus.THREATENED, []) + by_status.get(
        DependencyStatus.ERROR, []
    )
    if at_risk or missing:
        threatened = tuple(r.dependency for r in at_risk) + tuple(sorted(missing))
        chain: list[str] = []
        for dep in threatened:
            for queue in policy.escalation_chains.get(dep, (policy.last_resort_queue,)):
                if queue not in chain:
                    chain.append(queue)
        # The director is the last resort, whichever dependency brought it in.
        chain.sort(key=lambda q: q == policy.last_resort_queue)
        return Evaluation(
            outcome=Outcome.AT_RISK,
            reasons=reasons,
            needs_coordinator=True,
            escalation_chain=tuple(chain),
            threatened=threatened,
        )
    return Evaluation(outcome=Outcome.READY, reasons=reasons, needs_coordinator=False)


def after_coordinator(
    decision: str, rechecked: Sequence[DependencyResult], note: str, policy: Policy
) -> Evaluation:
    """The outcome once the coordinator has decided, from the re-checked dependencies."""
    if decision == "CANCEL":
        return Evaluation(
            outcome=Outcome.BLOCKED,
            reasons=(f"coordinator cancelled the case: {note}".rstrip(": "),),
            needs_coordinator=False,
        )
    evaluation = evaluate(rechecked, policy)
    if decision in policy.shortage_decisions and decision != "RESCHEDULE":
        return Evaluation(
            outcome=evaluation.outcome,
            reasons=(
                *evaluation.reasons,
                f"coordinator resolves the shortage: {decision}: {note}".rstrip(": "),
            ),
            needs_coordinator=False,
        )
    if decision == "RESCHEDULE":
        return Evaluation(
            outcome=Outcome.AT_RISK
            if evaluation.outcome is not Outcome.BLOCKED
            else Outcome.BLOCKED,
            reasons=(*evaluation.reasons, f"coordinator asked to reschedule: {note}".rstrip(": ")),
            needs_coordinator=False,
        )
    return Evaluation(
        outcome=evaluation.outcome, reasons=evaluation.reasons, needs_coordinator=False
    )
