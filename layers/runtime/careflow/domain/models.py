"""Canonical records that travel between handlers, ports and the state store.

They carry identifiers (with their systems) and operational facts, the minimum of
PHI: a patient appears only as a reference into the EHR.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Identifier(Model):
    system: str
    value: str


class Code(Model):
    system: str
    code: str
    display: str | None = None


class Priority(StrEnum):
    ROUTINE = "routine"
    EXPEDITED = "expedited"


class SupplyNeed(Model):
    item_id: str
    quantity: int = Field(gt=0)
    implant: bool = False
    description: str = ""


class SurgicalCase(Model):
    """What the readiness workflow needs to know about a scheduled procedure."""

    case_id: str
    appointment_id: str
    facility_id: str
    patient_ref: str  # "Patient/<id>": a reference, never demographics
    scheduled_start: datetime
    procedure_codes: tuple[Code, ...]
    service_line: str
    priority: Priority = Priority.ROUTINE
    coverage_ref: str | None = None
    payer_id: str | None = None
    surgeon_ref: str | None = None
    room_ref: str | None = None
    supplies: tuple[SupplyNeed, ...] = ()
    tray_ids: tuple[str, ...] = ()
    auth_required: bool = True


class ParticipantStatus(StrEnum):
    ACCEPTED = "accepted"
    TENTATIVE = "tentative"
    DECLINED = "declined"
    NEEDS_ACTION = "needs-action"


class Participant(Model):
    """An Appointment.participant: who or what the case needs, and whether it is confirmed."""

    role: str  # surgeon | anesthesia | room | ...
    ref: str
    required: bool = True
    status: ParticipantStatus


class AuthDecision(StrEnum):
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    PENDED = "PENDED"
    MODIFIED = "MODIFIED"
    PARTIAL = "PARTIAL"
    NOT_REQUIRED = "NOT_REQUIRED"


class PriorAuthRequest(Model):
    case_id: str
    patient_ref: str
    coverage_ref: str | None
    payer_id: str | None
    facility_id: str
    procedure_codes: tuple[Code, ...]
    service_date: datetime
    priority: Priority
    # Document types (LOINC) attached to a resubmission that answers a request for more
    # information (PAS additional documentation); the documents stay in the EHR and travel
    # as DocumentReferences.
    attachments: tuple[str, ...] = ()


class PriorAuthItem(Model):
    sequence: int
    code: str
    decision: AuthDecision
    review_action: str | None = None  # X12 306 code: A1, A3, A4, A6


class PriorAuthResponse(Model):
    decision: AuthDecision
    preauth_ref: str | None = None
    items: tuple[PriorAuthItem, ...] = ()
    reason: str | None = None
    # Document types the payer asks for before it decides (pended for more information).
    documents_requested: tuple[str, ...] = ()


class EligibilityRequest(Model):
    case_id: str
    patient_ref: str
    coverage_ref: str | None
    payer_id: str | None
    service_date: datetime
    procedure_codes: tuple[Code, ...]


class EligibilityResponse(Model):
    active: bool
    covered: bool
    auth_required: bool | None = None
    reason: str | None = None


class StockPosition(Model):
    facility_id: str
    item_id: str
    on_hand: int
    reserved: int
    par_level: int
    supplier_id: str
    lead_time_days: float
    consignment: bool = False

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class RequisitionLine(Model):
    item_id: str
    quantity: int = Field(gt=0)


class RequisitionRequest(Model):
    facility_id: str
    supplier_id: str
    lines: tuple[RequisitionLine, ...]
    needed_by: datetime
    reason: str
    reference: str  # the case that needs it: makes the request idempotent at the ERP


class Requisition(Model):
    requisition_id: str
    status: str
    expected_delivery: datetime


class TrayStatus(Model):
    tray_id: str
    status: str  # ready | in_process | missing
    ready_at: datetime | None = None


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
