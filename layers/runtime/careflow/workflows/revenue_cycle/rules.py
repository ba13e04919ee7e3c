"""Post-procedure revenue cycle: charges against usage, the DNFB causes and their
precedence, the charge lag, and the FHIR R4 claim handed to billing.

Pure functions over canonical records; nothing here does I/O. Money is Decimal throughout.

- A *missing charge* is a used item (by ERP item id) whose used quantity exceeds the
  quantity charged for it (``ChargeItem`` status billable or billed); its amount is the
  missing quantity times the item's price.
- The *charge lag* is whole days from the procedure's end to the first charge posted, both
  as dates in the facility's time zone.
- A case is *discharged not final billed* (DNFB) while any cause below holds; the first in
  the policy's precedence names its queue. Documentation and coding causes are waited for
  (up to the policy's limit after the procedure's end) before a person is asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from careflow.canonical.revenue import CaseBilling, ChargeLine, UsedItem

POLICY = "revenue-cycle"
CENT = Decimal("0.01")
COUNTED = frozenset({"billable", "billed"})  # ChargeItem statuses that charge the item

# DNFB causes.
MISSING_CHARGES = "missing_charges"
OP_NOTE_UNSIGNED = "op_note_unsigned"
IMPLANT_LOG_MISSING = "implant_log_missing"
CODING_INCOMPLETE = "coding_incomplete"
NO_AUTHORIZATION = "no_authorization"
NOT_ELIGIBLE = "not_eligible"
ACCOUNT_HOLD = "account_hold"
CAUSES = (
    MISSING_CHARGES,
    OP_NOTE_UNSIGNED,
    IMPLANT_LOG_MISSING,
    CODING_INCOMPLETE,
    NO_AUTHORIZATION,
    NOT_ELIGIBLE,
    ACCOUNT_HOLD,
)
# Causes that resolve by themselves in the normal course (a note signed, codes released):
# waited for up to the policy's limit before a person is asked.
WAITABLE = {
    OP_NOTE_UNSIGNED: "documentation",
    IMPLANT_LOG_MISSING: "documentation",
    CODING_INCOMPLETE: "coding",
}

# What a review finds.
READY = "READY"
WAITING = "WAITING"
BLOCKED = "BLOCKED"


class Policy(BaseModel):
    """What one case is billed by, resolved when it completes and pinned."""

    model_config = ConfigDict(frozen=True)

    policy_version: str
    charge_lag_target_days: int
    documentation_wait_s: int
    coding_wait_s: int
    recheck_s: int
    dnfb_task_s: int
    precedence: tuple[str, ...]  # the DNFB causes, first = the queue that works the case
    queues: dict[str, str]  # cause -> work queue
    blocking_holds: tuple[str, ...]
    escalation_chain: tuple[str, ...]
    decisions: tuple[str, ...]
    claim_type: str  # institutional | professional
    bill_only_cost_center: str  # where a bill-only implant's PO is charged
    time_zone: str


def revenue_policy(snapshot: Any, *, facility_id: str, time_zone: str) -> Policy:
    queues = {
        cause: str(snapshot.table("dnfb_queue").decide({"cause": cause}).outputs["queue"])
        for cause in CAUSES
    }
    cost_center = snapshot.table("bill_only_cost_center").decide({"facility": facility_id})
    precedence = tuple(str(c) for c in snapshot.value("dnfb_cause_precedence"))
    if sorted(precedence) != sorted(CAUSES):
        raise ValueError(f"dnfb_cause_precedence must order exactly {', '.join(CAUSES)}")
    return Policy(
        policy_version=snapshot.version,
        charge_lag_target_days=int(snapshot.value("charge_lag_target_days")),
        documentation_wait_s=int(snapshot.value("documentation_wait_hours")) * 3600,
        coding_wait_s=int(snapshot.value("coding_wait_hours")) * 3600,
        recheck_s=int(snapshot.value("recheck_seconds")),
        dnfb_task_s=int(snapshot.value("dnfb_task_seconds")),
        precedence=precedence,
        queues=queues,
        blocking_holds=tuple(str(h) for h in snapshot.value("blocking_holds")),
        escalation_chain=tuple(snapshot.value("escalation_chain")),
        decisions=tuple(snapshot.value("dnfb_decisions")),
        claim_type=str(snapshot.value("claim_type")),
        bill_only_cost_center=str(cost_center.outputs["cost_center"]),
        time_zone=time_zone,
    )


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


class MissingCharge(BaseModel):
    model_config = ConfigDict(frozen=True)

    item_id: str
    quantity: int
    amount: Decimal
    implant: bool


def missing_charges(used: Sequence[UsedItem], charges: Sequence[ChargeLine]) -> list[MissingCharge]:
    """Used items not (fully) charged: per item, used minus charged quantity when positive."""
    charged: dict[str, int] = {}
    for c in charges:
        if c.status in COUNTED:
            charged[c.item_id] = charged.get(c.item_id, 0) + c.quantity
    used_qty: dict[str, int] = {}
    price: dict[str, Decimal] = {}
    implant: dict[str, bool] = {}
    for u in used:
        used_qty[u.item_id] = used_qty.get(u.item_id, 0) + u.quantity
        price.setdefault(u.item_id, u.unit_price)
        implant[u.item_id] = implant.get(u.item_id, False) or u.implant
    out = []
    for item_id in sorted(used_qty):
        short = used_qty[item_id] - charged.get(item_id, 0)
        if short > 0:
            out.append(
                MissingCharge(
                    item_id=item_id,
                    quantity=short,
                    amount=(price[item_id] * short).quantize(CENT),
                    implant=implant[item_id],
                )
            )
    return out


def local_date(at: datetime, zone: ZoneInfo) -> date:
    return at.astimezone(zone).date()


def charge_lag_days(
    procedure_end: datetime, charges: Sequence[ChargeLine], zone: ZoneInfo
) -> int | None:
    """Whole days from the procedure's end to the first charge posted (facility dates);
    None when no charge carries a posting time."""
    posted = [c.entered_at for c in charges if c.entered_at is not None and c.status in COUNTED]
    if not posted:
        return None
    return max(0, (local_date(min(posted), zone) - local_date(procedure_end, zone)).days)


def findings(
    case: CaseBilling,
    *,
    missing: Sequence[MissingCharge],
    authorization: str | None,
    auth_required: bool,
    eligible: bool,
    policy: Policy,
) -> tuple[str, ...]:
    """The DNFB causes that hold, in the policy's precedence."""
    found = set()
    if missing:
        found.add(MISSING_CHARGES)
    if not case.op_note_signed:
        found.add(OP_NOTE_UNSIGNED)
    if any(u.implant for u in case.used) and not case.implant_log:
        found.add(IMPLANT_LOG_MISSING)
    if not case.coding_complete or not case.procedure_codes or not case.diagnosis_codes:
        found.add(CODING_INCOMPLETE)
    if auth_required and not authorization:
        found.add(NO_AUTHORIZATION)
    if not eligible:
        found.add(NOT_ELIGIBLE)
    if any(h in policy.blocking_holds for h in case.holds):
        found.add(ACCOUNT_HOLD)
    return tuple(c for c in policy.precedence if c in found)


def wait_limit(cause: str, procedure_end: datetime, policy: Policy) -> datetime:
    kind = WAITABLE[cause]
    seconds = policy.documentation_wait_s if kind == "documentation" else policy.coding_wait_s
    return procedure_end + timedelta(seconds=seconds)


def assess(causes: Sequence[str], procedure_end: datetime, now: datetime, policy: Policy) -> str:
    """READY with no cause; WAITING while every cause is one that resolves in the normal
    course and still within its limit; otherwise BLOCKED (a person works the first cause)."""
    if not causes:
        return READY
    if all(c in WAITABLE and now < wait_limit(c, procedure_end, policy) for c in causes):
        return WAITING
    return BLOCKED


def first_blocking(
    causes: Sequence[str], procedure_end: datetime, now: datetime, policy: Policy
) -> str:
    """The cause a person works first: the first not still within its wait."""
    for c in causes:
        if c not in WAITABLE or now >= wait_limit(c, procedure_end, policy):
            return c
    return causes[0]


# -- the claim -----------------------------------------------------------------------------
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
PROCESS_PRIORITY = "http://terminology.hl7.org/CodeSystem/processpriority"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
ERP_ITEM = "urn:careflow:erp:item"
UDI_SYSTEM = "urn:careflow:udi"


def build_claim(
    case: CaseBilling,
    *,
    claim_id: str,
    authorization: str | None,
    policy: Policy,
    created: datetime,
) -> dict[str, Any]:
    """The FHIR R4 Claim for the case: the procedure lines, an implant and supply line per
    used item (the device's UDI, lot and serial on the implant's ``udi`` as a contained
    Device), the authorization number in ``insurance.preAuthRef``. Validated with
    ``fhir.resources.R4B`` (ValueError when it is not a valid Claim)."""
    from fhir.resources.R4B.claim import Claim

    if not case.coverage_ref:
        raise ValueError(f"case {case.case_id} has no coverage to bill")
    contained: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    seq = 0
    svc_date = case.procedure_end.date().isoformat()
    for code in case.procedure_codes:
        seq += 1
        items.append(
            {
                "sequence": seq,
                "diagnosisSequence": [1] if case.diagnosis_codes else None,
                "productOrService": {"coding": [{"system": code.system, "code": code.code}]},
                "servicedDate": svc_date,
                "quantity": {"value": 1},
            }
        )
    for u in case.used:
        seq += 1
        line: dict[str, Any] = {
            "sequence": seq,
            "productOrService": {"coding": [{"system": ERP_ITEM, "code": u.item_id}]},
            "servicedDate": svc_date,
            "quantity": {"value": u.quantity},
            "unitPrice": {"value": float(u.unit_price), "currency": "USD"},
            "net": {"value": float(u.unit_price * u.quantity), "currency": "USD"},
        }
        if u.implant:
            device_id = f"dev-{seq}"
            device: dict[str, Any] = {"resourceType": "Device", "id": device_id}
            if u.udi:
                device["udiCarrier"] = [{"deviceIdentifier": u.udi}]
            if u.lot:
                device["lotNumber"] = u.lot
            if u.serial:
                device["serialNumber"] = u.serial
            contained.append(device)
            line["udi"] = [{"reference": f"#{device_id}"}]
        items.append({k: v for k, v in line.items() if v is not None})
    for item in items:
        if item.get("diagnosisSequence") is None:
            item.pop("diagnosisSequence", None)
    total = sum((u.unit_price * u.quantity for u in case.used), Decimal(0))
    insurance: dict[str, Any] = {
        "sequence": 1,
        "focal": True,
        "coverage": {"reference": case.coverage_ref},
    }
    if authorization:
        insurance["preAuthRef"] = [authorization]
    claim: dict[str, Any] = {
        "resourceType": "Claim",
        "id": claim_id,
        "contained": contained or None,
        "identifier": [{"system": "urn:careflow:claim", "value": claim_id}],
        "status": "active",
        "type": {"coding": [{"system": CLAIM_TYPE, "code": policy.claim_type}]},
        "use": "claim",
        "patient": {"reference": case.patient_ref},
        "billablePeriod": {"start": svc_date, "end": svc_date},
        "created": created.isoformat(),
        "provider": {"reference": f"Organization/{case.facility_id}"},
        "priority": {"coding": [{"system": PROCESS_PRIORITY, "code": "normal"}]},
        "insurer": {"reference": f"Organization/{case.payer_id}"} if case.payer_id else None,
        "diagnosis": [
            {
                "sequence": i + 1,
                "diagnosisCodeableConcept": {"coding": [{"system": d.system, "code": d.code}]},
            }
            for i, d in enumerate(case.diagnosis_codes)
        ]
        or None,
        "insurance": [insurance],
        "item": items or None,
        "total": {"value": float(total), "currency": "USD"},
    }
    claim = {k: v for k, v in claim.items() if v is not None}
    try:
        Claim.model_validate(claim)
    except Exception as exc:  # pydantic's ValidationError: names the fields, not values
        raise ValueError(f"the claim for {case.case_id} is not a valid FHIR Claim: {exc}") from None
    return claim


def queue_for(cause: str, policy: Policy) -> str:
    return policy.queues.get(cause, "revenue_integrity")
