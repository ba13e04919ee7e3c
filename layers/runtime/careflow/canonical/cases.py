"""The surgical case: the composite the EHR port builds from canonical records (an
Appointment, the ServiceRequest it is based on, its Coverage, its room's Location and the
SupplyRequests of the preference card), and the participants the case depends on."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from careflow.canonical.datatypes import Coding, Model


class Priority(StrEnum):
    ROUTINE = "routine"
    EXPEDITED = "expedited"


class SupplyNeed(Model):
    item_id: str
    quantity: int = Field(gt=0)
    implant: bool = False
    description: str = ""
    substitutes: tuple[str, ...] = ()  # the preference card's alternatives, by item id


class SurgicalCase(Model):
    """What the readiness workflow needs to know about a scheduled procedure."""

    case_id: str
    appointment_id: str
    facility_id: str
    patient_ref: str  # "Patient/<id>": a reference, never demographics
    scheduled_start: datetime
    procedure_codes: tuple[Coding, ...]
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
