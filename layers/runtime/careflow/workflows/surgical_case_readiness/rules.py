"""Surgical case readiness: each dependency's result, and the case's outcome.

Pure functions over canonical models. Handlers fetch facts through ports and call
these; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from careflow.canonical.cases import Participant, ParticipantStatus, Priority, SurgicalCase
from careflow.canonical.dependencies import DependencyResult, DependencyStatus, Outcome
from careflow.canonical.payer import AuthDecision, EligibilityResponse, PriorAuthResponse
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

# Who owns a threatened dependency: the first queue is escalated to, then the next.
ESCALATION_CHAINS: dict[str, tuple[str, ...]] = {
    AUTHORIZATION: ("utilization_review_nurse", "department_director"),
    BENEFITS: ("case_manager", "department_director"),
    CLINICIAN_AND_ROOM: ("scheduler", "department_director"),
    SUPPLIES: ("supply_chain_buyer", "department_director"),
    STERILE_PROCESSING: ("sterile_processing_lead", "department_director"),
}
COORDINATOR_QUEUE = "care_coordinator"
COORDINATOR_DECISIONS = ("PROCEED", "RESCHEDULE", "CANCEL")


class Policy(BaseModel):
    """Timers for one case, in seconds, resolved from the catalog's SLAs and the case."""

    model_config = ConfigDict(frozen=True)

    coordinator_task_s: int
    pend_escalation_s: int
    pend_remaining_s: int
    hard_stop_at: datetime
    policy_version: str = "v1"


def case_policy(case: SurgicalCase, sla: Mapping[str, int]) -> Policy:
    """Expedited cases get the 72 h payer clock, routine ones the 7-day clock (CMS-0057-F)."""
    kind = "expedited" if case.priority is Priority.EXPEDITED else "standard"
    escalation = sla[f"pend_escalation_{kind}"]
    deadline = sla[f"pend_deadline_{kind}"]
    return Policy(
        coordinator_task_s=sla["coordinator_task"],
        pend_escalation_s=escalation,
        pend_remaining_s=max(deadline - escalation, 1),
        hard_stop_at=case.scheduled_start - timedelta(seconds=sla["hard_stop"]),
    )


def _result(
    dependency: str, status: DependencyStatus, *reasons: str, **details: Any
) -> DependencyResult:
    return DependencyResult(
        dependency=dependency, status=status, reasons=tuple(reasons), details=details
    )


def authorization_result(response: PriorAuthResponse) -> DependencyResult:
    ref = {"preauth_ref": response.preauth_ref, "decision": response.decision.value}
    match response.decision:
        case AuthDecision.APPROVED:
            return _result(AUTHORIZATION, DependencyStatus.OK, **ref)
        case AuthDecision.NOT_REQUIRED:
            return _result(
                AUTHORIZATION, DependencyStatus.OK, "payer requires no authorization", **ref
            )
        case AuthDecision.PENDED:
            return _result(
                AUTHORIZATION, DependencyStatus.PENDING, "payer pended the request", **ref
            )
        case AuthDecision.DENIED:
            return _result(
                AUTHORIZATION,
                DependencyStatus.BLOCKED,
                "payer denied the authorization: an appeal or a new request is needed",
                **ref,
            )
        case AuthDecision.MODIFIED:
            return _result(
                AUTHORIZATION,
                DependencyStatus.THREATENED,
                "payer modified the requested services: review the authorized version",
                **ref,
            )
        case AuthDecision.PARTIAL:
            return _result(
                AUTHORIZATION,
                DependencyStatus.THREATENED,
                "payer certified only some of the requested services",
                **ref,
            )
    raise ValueError(f"unknown decision {response.decision}")  # pragma: no cover


def pend_expired_result(preauth_ref: str | None, deadline_hours: float) -> DependencyResult:
    return _result(
        AUTHORIZATION,
        DependencyStatus.THREATENED,
        f"payer gave no decision within the {deadline_hours:g} h decision clock",
        preauth_ref=preauth_ref,
        decision=AuthDecision.PENDED.value,
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


def evaluate(results: Sequence[DependencyResult]) -> Evaluation:
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
            for queue in ESCALATION_CHAINS.get(dep, ("department_director",)):
                if queue not in chain:
                    chain.append(queue)
        # The director is the last resort, whichever dependency brought it in.
        chain.sort(key=lambda q: q == "department_director")
        return Evaluation(
            outcome=Outcome.AT_RISK,
            reasons=reasons,
            needs_coordinator=True,
            escalation_chain=tuple(chain),
            threatened=threatened,
        )
    return Evaluation(outcome=Outcome.READY, reasons=reasons, needs_coordinator=False)


def after_coordinator(
    decision: str, rechecked: Sequence[DependencyResult], note: str
) -> Evaluation:
    """The outcome once the coordinator has decided, from the re-checked dependencies."""
    if decision == "CANCEL":
        return Evaluation(
            outcome=Outcome.BLOCKED,
            reasons=(f"coordinator cancelled the case: {note}".rstrip(": "),),
            needs_coordinator=False,
        )
    evaluation = evaluate(rechecked)
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
