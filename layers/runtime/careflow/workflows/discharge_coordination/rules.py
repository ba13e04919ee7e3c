"""Discharge coordination: the expected discharge time, which dependencies apply, which
threaten the discharge, and the delays once the patient has left.

Pure functions over small models; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

POLICY = "discharge-coordination"

TRANSPORT = "transport"
PHARMACY = "pharmacy"
DME = "dme"
POST_ACUTE_AUTHORIZATION = "post_acute_authorization"
BILLING = "billing"
DEPENDENCIES = (TRANSPORT, PHARMACY, DME, POST_ACUTE_AUTHORIZATION, BILLING)
# What the patient's departure waits for. Billing readiness is tracked and owned, but a
# patient is never held in a bed for it: it neither threatens the discharge nor counts
# as a delay.
HOLDS_DEPARTURE = (TRANSPORT, PHARMACY, DME, POST_ACUTE_AUTHORIZATION)

# DOMAIN.md's delay causes: a fixed list, so delays can be counted.
DELAY_CAUSES = (
    "awaiting transport",
    "pharmacy",
    "DME",
    "post-acute placement",
    "payer authorization",
    "physician order/signature",
    "family/caregiver",
    "test results",
    "bed at receiving facility",
    "documentation",
)

# The dependency's status once arranged.
MET = "MET"  # ready in time
LATE = "LATE"  # booked, but ready after the threat line
PENDING = "PENDING"  # nothing booked yet (no system answered): a person must act
DENIED = "DENIED"  # the payer refused: the disposition needs a person (appeal, other placement)
NOT_NEEDED = "NOT_NEEDED"
ERROR = "ERROR"


class Owner(BaseModel):
    model_config = ConfigDict(frozen=True)

    cause: str
    owner: str


class PostAcuteService(BaseModel):
    """The service a post-acute authorization asks the payer for (a code the payer knows)."""

    model_config = ConfigDict(frozen=True)

    system: str
    code: str
    display: str | None = None


class Policy(BaseModel):
    """What one discharge runs by, resolved when the A16 arrives and pinned for its life."""

    model_config = ConfigDict(frozen=True)

    policy_version: str
    expected_discharge_at: datetime
    threat_at: datetime  # a dependency not ready by then threatens the discharge
    needs: tuple[str, ...]
    dme_items: tuple[str, ...]
    dme_supplier: str
    owners: dict[str, Owner]
    case_manager_task_s: int
    escalation_chain: tuple[str, ...]
    case_manager_decisions: tuple[str, ...]
    departure_poll_s: int
    give_up_at: datetime  # no departure by then: NOT_DISCHARGED
    noon_hour: int
    time_zone: str
    # The post-acute authorization: the service asked for (None: the disposition has no
    # code, a person requests it), its priority, and how long the coordination waits for
    # the payer's decision before a pending authorization threatens the discharge (the
    # prior authorization goes on by itself).
    post_acute_service: PostAcuteService | None = None
    post_acute_priority: str = "expedited"
    post_acute_wait_s: int = 60


def default_expected_discharge(received_at: datetime, zone: ZoneInfo, hour: int) -> datetime:
    """``hour`` o'clock, facility time, the day after the A16 was received."""
    local = received_at.astimezone(zone)
    next_day = local.date() + timedelta(days=1)
    return datetime.combine(next_day, time(hour=hour), tzinfo=zone)


def discharge_policy(
    snapshot: Any,
    *,
    disposition: str | None,
    expected_discharge_at: datetime | None,
    received_at: datetime,
    zone: ZoneInfo,
) -> Policy:
    expected = expected_discharge_at or default_expected_discharge(
        received_at, zone, int(snapshot.value("default_discharge_hour"))
    )
    code = disposition or ""
    needs = tuple(snapshot.table("dependencies").decide({"disposition": code}).outputs["needs"])
    unknown = set(needs) - set(DEPENDENCIES)
    if unknown:
        raise ValueError(f"policy dependencies names unknown dependencies {sorted(unknown)}")
    dme = snapshot.table("dme_items").decide({"disposition": code}).outputs
    service = snapshot.table("post_acute_services").decide({"disposition": code}).outputs
    threat_at = expected - timedelta(minutes=int(snapshot.value("threat_lead_minutes")))
    owners = {}
    for dep in DEPENDENCIES:
        out = snapshot.table("delay_owner").decide({"dependency": dep}).outputs
        if out["cause"] not in DELAY_CAUSES:
            raise ValueError(f"policy delay_owner: {out['cause']!r} is not a delay cause")
        owners[dep] = Owner(cause=out["cause"], owner=out["owner"])
    return Policy(
        policy_version=snapshot.version,
        expected_discharge_at=expected,
        threat_at=threat_at,
        needs=needs,
        dme_items=tuple(dme["items"]),
        dme_supplier=str(dme["supplier"]),
        owners=owners,
        case_manager_task_s=int(snapshot.value("case_manager_task_seconds")),
        escalation_chain=tuple(snapshot.value("escalation_chain")),
        case_manager_decisions=tuple(snapshot.value("case_manager_decisions")),
        departure_poll_s=int(snapshot.value("departure_poll_seconds")),
        give_up_at=expected + timedelta(seconds=int(snapshot.value("departure_wait_seconds"))),
        noon_hour=int(snapshot.value("noon_hour")),
        time_zone=str(zone.key),
        post_acute_service=(
            PostAcuteService(
                system=str(service["system"]),
                code=str(service["code"]),
                display=str(service.get("display") or "") or None,
            )
            if service.get("code")
            else None
        ),
        post_acute_priority=str(snapshot.value("post_acute_priority")),
        post_acute_wait_s=max(60, int((threat_at - received_at).total_seconds())),
    )


class Dependency(BaseModel):
    """One dependency as arranged: when it will be ready, and by whom."""

    model_config = ConfigDict(frozen=True)

    dependency: str
    status: str
    reference: str | None = None  # the booking, requisition or authorization
    ready_at: datetime | None = None
    reason: str = ""


def arranged(dependency: str, reference: str, ready_at: datetime, policy: Policy) -> Dependency:
    """MET if ready by the threat line (transport: booked for the expected discharge time or
    earlier, since the ride is the departure itself), else LATE."""
    line = policy.expected_discharge_at if dependency == TRANSPORT else policy.threat_at
    status = MET if ready_at <= line else LATE
    return Dependency(dependency=dependency, status=status, reference=reference, ready_at=ready_at)


class Delay(BaseModel):
    model_config = ConfigDict(frozen=True)

    dependency: str
    cause: str
    owner: str
    minutes: int


class Evaluation(BaseModel):
    model_config = ConfigDict(frozen=True)

    threatened: tuple[str, ...]
    predicted: tuple[Delay, ...]
    reasons: tuple[str, ...]


def _minutes(later: datetime, earlier: datetime) -> int:
    return max(0, int((later - earlier).total_seconds() // 60))


def evaluate(dependencies: Iterable[Dependency], policy: Policy) -> Evaluation:
    """Which dependencies threaten the expected discharge time, and by how much."""
    threatened, predicted, reasons = [], [], []
    for dep in dependencies:
        if dep.status in (MET, NOT_NEEDED) or dep.dependency not in HOLDS_DEPARTURE:
            continue
        owner = policy.owners[dep.dependency]
        threatened.append(dep.dependency)
        if dep.ready_at is not None:
            late = _minutes(dep.ready_at, policy.expected_discharge_at)
            predicted.append(Delay(dependency=dep.dependency, minutes=late, **owner.model_dump()))
            reasons.append(
                f"{dep.dependency} ready at {dep.ready_at.isoformat()}: {owner.cause}, "
                f"{late} min past the expected discharge"
            )
        else:
            why = f" ({dep.reason})" if dep.reason else ""
            reasons.append(f"{dep.dependency} not arranged ({dep.status}){why}: {owner.cause}")
    return Evaluation(
        threatened=tuple(threatened), predicted=tuple(predicted), reasons=tuple(reasons)
    )


def delays(
    dependencies: Sequence[Dependency], policy: Policy, departed_at: datetime
) -> tuple[Delay, ...]:
    """One delay per dependency late against the expected discharge time: ready after it
    (counted up to the departure), or never arranged while the patient left late."""
    found = []
    for dep in dependencies:
        if dep.status == NOT_NEEDED or dep.dependency not in HOLDS_DEPARTURE:
            continue
        ready = dep.ready_at if dep.ready_at is not None else departed_at
        ready = min(ready, departed_at)
        minutes = _minutes(ready, policy.expected_discharge_at)
        if minutes > 0:
            owner = policy.owners[dep.dependency]
            found.append(Delay(dependency=dep.dependency, minutes=minutes, **owner.model_dump()))
    return tuple(found)


def before_noon(departed_at: datetime, policy: Policy) -> bool:
    return departed_at.astimezone(ZoneInfo(policy.time_zone)).hour < policy.noon_hour


def order_to_departure_s(ordered_at: datetime, departed_at: datetime) -> int:
    return max(0, int((departed_at - ordered_at).total_seconds()))


# The prior authorization workflow's outcomes (its child execution's output), as the
# post-acute authorization dependency takes them.
AUTHORIZED = frozenset({"APPROVED", "MODIFIED", "NOT_REQUIRED"})


def post_acute_authorization(
    outcome: str, preauth_ref: str | None, policy: Policy, decided_at: datetime
) -> Dependency:
    """MET (or LATE) once the payer authorized it, DENIED when it refused, else PENDING on
    the utilization review nurse (partial, expired clocks, documents missing, an answer
    careflow does not act on, an error)."""
    if outcome in AUTHORIZED:
        return arranged(POST_ACUTE_AUTHORIZATION, preauth_ref or outcome, decided_at, policy)
    if outcome == "DENIED":
        return Dependency(
            dependency=POST_ACUTE_AUTHORIZATION,
            status=DENIED,
            reference=preauth_ref,
            reason="the payer denied it: appeal or another placement",
        )
    return Dependency(
        dependency=POST_ACUTE_AUTHORIZATION,
        status=PENDING,
        reference=preauth_ref,
        reason=f"the prior authorization ended {outcome}: a person settles it",
    )


def billing_readiness(*, known: bool, coverage_ref: str | None, active: bool | None) -> Dependency:
    """MET when the encounter's coverage is active with the payer; otherwise PENDING on
    patient financial services (self-pay, inactive coverage, an encounter the EHR does not
    know). Never holds the departure (:data:`HOLDS_DEPARTURE`). The payer's own wording is
    not kept: it is free text."""
    if not known:
        why = "the EHR does not know the encounter: billing cannot be checked"
    elif coverage_ref is None:
        why = "no active coverage (self-pay): financial counseling before the patient leaves"
    elif not active:
        why = "coverage not active with the payer: financial counseling before the patient leaves"
    else:
        return Dependency(dependency=BILLING, status=MET, reason="coverage active")
    return Dependency(dependency=BILLING, status=PENDING, reason=why)
