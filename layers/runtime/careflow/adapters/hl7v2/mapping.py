"""A parsed HL7 v2 message -> careflow domain events (pure: no I/O).

ADT A01/A02/A03/A08/A11/A13/A16 -> ``careflow.ehr`` / ``Encounter.*`` (the models of
:mod:`careflow.canonical.encounters`); SIU S12/S13/S15 -> ``careflow.scheduling`` /
``Appointment.Booked|Rescheduled|Cancelled`` (the models surgical readiness consumes);
S14 (modified) -> ``Appointment.Rescheduled`` only when the start moved. A04 (register an
outpatient) is taken and ACKed but no workflow consumes it: nothing is published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from careflow.adapters.hl7v2.parse import Hl7Message
from careflow.canonical import encounters as enc
from careflow.canonical.appointments import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentRescheduled,
)
from careflow.events.reasons import describe
from careflow.facilities import Facility, by_hl7_name

SCHEDULING = "careflow.scheduling"

ADT_EVENTS: dict[str, tuple[str, type[enc._Encounter]]] = {
    "A01": (enc.ADMITTED, enc.EncounterAdmitted),
    "A02": (enc.TRANSFERRED, enc.EncounterTransferred),
    "A03": (enc.DISCHARGED, enc.EncounterDischarged),
    "A08": (enc.UPDATED, enc.EncounterUpdated),
    "A11": (enc.ADMIT_CANCELLED, enc.EncounterAdmitCancelled),
    "A13": (enc.DISCHARGE_CANCELLED, enc.EncounterDischargeCancelled),
    "A16": (enc.DISCHARGE_PENDING, enc.EncounterDischargePending),
}


class Unmappable(Exception):
    """Parsed, but no event can be built (unknown facility, a required field missing).
    The message is still ACKed AA and parked with ``reason`` (no PHI: field names)."""

    def __init__(self, reason: str, *, facility_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.facility_id = facility_id


@dataclass(frozen=True)
class Mapped:
    source: str
    detail_type: str
    data: BaseModel
    occurred_at: datetime


def facility_of(message: Hl7Message) -> Facility:
    """PV1-3.4 (the location's facility), else AIL-3.4, else MSH-4, through the registry."""
    names = [
        message.location.facility if message.location else None,
        message.appointment_location.facility if message.appointment_location else None,
        message.header.sending_facility,
    ]
    for name in names:
        if name:
            found = by_hl7_name(name)
            if found is not None:
                return found
    raise Unmappable(
        "unknown facility: neither PV1-3.4, AIL-3.4 nor MSH-4 names a facility in the "
        "registry (add it to the facility's hl7_names)"
    )


def _aware(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=zone)


def map_message(
    message: Hl7Message, *, now: datetime, previous_start: datetime | None = None
) -> tuple[Facility, list[Mapped]]:
    """The facility and the events of ``message``; ``previous_start`` is the start last
    recorded for the appointment of an S14 (None: not known, the S14 is published)."""
    facility = facility_of(message)
    zone = facility.zone
    sent = _aware(message.sent_at, zone)
    occurred = (
        _aware(message.event_occurred_at, zone)
        or _aware(message.event_recorded_at, zone)
        or sent
        or now
    )
    kind = message.header.message_type
    trigger = message.header.trigger
    try:
        if kind == "ADT":
            return facility, _adt(message, trigger, zone, occurred)
        return facility, _siu(message, trigger, zone, occurred, previous_start)
    except ValidationError as exc:
        raise Unmappable(
            describe(exc, prefix="data", subject=f"{kind}^{trigger}", model=None),
            facility_id=facility.id,
        ) from None


def _adt(message: Hl7Message, trigger: str, zone: ZoneInfo, occurred: datetime) -> list[Mapped]:
    if trigger not in ADT_EVENTS:
        return []  # A04: taken, nothing consumes it
    detail_type, model = ADT_EVENTS[trigger]
    if not message.visit_number:
        raise Unmappable("no visit number in PV1-19: the encounter cannot be identified")
    if not message.patient_id_authority:
        raise Unmappable("no assigning authority in PID-3.4: the patient id is ambiguous")
    loc = message.location
    fields: dict[str, object] = {
        "encounter_id": message.visit_number,
        "patient_id": message.patient_id,
        "patient_id_authority": message.patient_id_authority,
        "unit": loc.unit if loc else None,
        "room": loc.room if loc else None,
        "bed": loc.bed if loc else None,
        "patient_class": message.patient_class
        if message.patient_class in ("I", "O", "E", "P", "R", "B", "N", "U")
        else None,
        "message_id": message.header.control_id,
    }
    expected = _aware(message.expected_discharge_at, zone)
    if trigger == "A01":
        fields["admitted_at"] = _aware(message.admitted_at, zone) or occurred
    elif trigger == "A02":
        fields["transferred_at"] = occurred
        prior = message.prior_location
        fields["prior_unit"] = prior.unit if prior else None
    elif trigger == "A03":
        fields["discharged_at"] = _aware(message.discharged_at, zone) or occurred
        fields["disposition"] = message.disposition
    elif trigger == "A08":
        fields["expected_discharge_at"] = expected
    elif trigger == "A16":
        fields["expected_discharge_at"] = expected
        fields["disposition"] = message.disposition
    data = model.model_validate(fields)
    return [Mapped(enc.SOURCE, detail_type, data, occurred)]


def _siu(
    message: Hl7Message,
    trigger: str,
    zone: ZoneInfo,
    occurred: datetime,
    previous_start: datetime | None,
) -> list[Mapped]:
    appointment_id = message.filler_appointment_id or message.placer_appointment_id
    if not appointment_id:
        raise Unmappable("no appointment id in SCH-2 (filler) or SCH-1 (placer)")
    start = _aware(message.appointment_start, zone)
    when = occurred
    if trigger == "S15":
        data: BaseModel = AppointmentCancelled(appointment_id=appointment_id)
        return [Mapped(SCHEDULING, "Appointment.Cancelled", data, when)]
    if start is None:
        raise Unmappable("no appointment start in SCH-11.4, TQ1-7 or AIS-4")
    if trigger == "S12":
        data = AppointmentBooked.model_validate(
            {
                "appointment_id": appointment_id,
                "appointment_type": "procedure" if message.has_service else "consult",
                "scheduled_start": start,
            }
        )
        return [Mapped(SCHEDULING, "Appointment.Booked", data, when)]
    if trigger == "S14" and previous_start is not None and previous_start == start:
        return []  # modified, but not moved: nothing for careflow
    data = AppointmentRescheduled(appointment_id=appointment_id, scheduled_start=start)
    return [Mapped(SCHEDULING, "Appointment.Rescheduled", data, when)]
