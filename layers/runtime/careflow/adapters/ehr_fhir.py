"""The EHR port over FHIR R4: a surgical case is an Appointment, the ServiceRequest it is
based on, its Coverage, its room's managing Organization, and the SupplyRequests the
ServiceRequest lists (the preference card: implants, supplies, instrument trays)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from careflow.adapters.fhir_rest import FhirRestClient
from careflow.domain.models import (
    Code,
    Participant,
    ParticipantStatus,
    Priority,
    SupplyNeed,
    SurgicalCase,
)
from careflow.ports import ConnectorError

SUPPLY_CATEGORY = "urn:careflow:supply-category"
ROLE_BY_PARTICIPATION = {"PPRF": "surgeon", "SPRF": "anesthesia", "ATND": "surgeon"}
URGENT = {"urgent", "asap", "stat"}


def _ref_id(reference: str) -> tuple[str, str]:
    rtype, _, rid = reference.rstrip("/").rpartition("/")
    return rtype.rsplit("/", 1)[-1], rid


def _first_code(concept: Any) -> tuple[str | None, str | None, str | None]:
    for coding in (concept or {}).get("coding") or []:
        return coding.get("system"), coding.get("code"), coding.get("display")
    return None, None, None


class FhirEhrAdapter:
    def __init__(self, fhir: FhirRestClient) -> None:
        self.fhir = fhir

    def _read(self, reference: str) -> dict[str, Any]:
        rtype, rid = _ref_id(reference)
        return self.fhir.read(rtype, rid)

    def get_surgical_case(self, appointment_id: str) -> SurgicalCase:
        appointment = self.fhir.read("Appointment", appointment_id)
        based_on = [
            b.get("reference")
            for b in appointment.get("basedOn") or []
            if str(b.get("reference", "")).startswith("ServiceRequest/")
        ]
        if not based_on:
            raise ConnectorError(f"Appointment/{appointment_id}: basedOn has no ServiceRequest")
        order = self._read(based_on[0])
        participants = appointment.get("participant") or []
        patient = next(
            (
                p["actor"]["reference"]
                for p in participants
                if str(p.get("actor", {}).get("reference", "")).startswith("Patient/")
            ),
            (order.get("subject") or {}).get("reference"),
        )
        if not patient:
            raise ConnectorError(f"Appointment/{appointment_id}: no patient")
        room = next(
            (
                p["actor"]["reference"]
                for p in participants
                if str(p.get("actor", {}).get("reference", "")).startswith("Location/")
            ),
            None,
        )
        surgeon = next(
            (p["actor"]["reference"] for p in participants if self._role(p) == "surgeon"), None
        )
        facility = ""
        if room:
            managing = (self._read(room).get("managingOrganization") or {}).get("reference")
            facility = _ref_id(managing)[1] if managing else ""
        coverage_ref = next((i.get("reference") for i in order.get("insurance") or []), None)
        payer_id = None
        if coverage_ref:
            payors = self._read(coverage_ref).get("payor") or []
            payer_id = _ref_id(payors[0]["reference"])[1] if payors else None
        supplies: list[SupplyNeed] = []
        trays: list[str] = []
        for info in order.get("supportingInfo") or []:
            reference = str(info.get("reference", ""))
            if not reference.startswith("SupplyRequest/"):
                continue
            request = self._read(reference)
            _, category, _ = _first_code(request.get("category"))
            _, item, display = _first_code(request.get("itemCodeableConcept"))
            if not item:
                continue
            if category == "instrument-tray":
                trays.append(item)
            else:
                quantity = int((request.get("quantity") or {}).get("value", 1))
                supplies.append(
                    SupplyNeed(
                        item_id=item,
                        quantity=quantity,
                        implant=category == "implant",
                        description=display or "",
                    )
                )
        codes = tuple(
            Code(system=c.get("system", ""), code=c["code"], display=c.get("display"))
            for c in (order.get("code") or {}).get("coding") or []
            if c.get("code")
        )
        category = next(
            (c.get("text") for c in order.get("category") or [] if c.get("text")), "surgery"
        )
        return SurgicalCase(
            case_id=appointment_id,
            appointment_id=appointment_id,
            facility_id=facility,
            patient_ref=patient,
            scheduled_start=datetime.fromisoformat(appointment["start"]),
            procedure_codes=codes,
            service_line=category,
            priority=Priority.EXPEDITED if order.get("priority") in URGENT else Priority.ROUTINE,
            coverage_ref=coverage_ref,
            payer_id=payer_id,
            surgeon_ref=surgeon,
            room_ref=room,
            supplies=tuple(supplies),
            tray_ids=tuple(trays),
        )

    @staticmethod
    def _role(participant: dict[str, Any]) -> str | None:
        reference = str((participant.get("actor") or {}).get("reference", ""))
        if reference.startswith("Location/"):
            return "room"
        for concept in participant.get("type") or []:
            _, code, _ = _first_code(concept)
            if code in ROLE_BY_PARTICIPATION:
                return ROLE_BY_PARTICIPATION[code]
        return None

    def appointment_participants(self, appointment_id: str) -> Sequence[Participant]:
        appointment = self.fhir.read("Appointment", appointment_id)
        out = []
        for p in appointment.get("participant") or []:
            role = self._role(p)
            if role is None:
                continue  # the patient, or someone the case does not depend on
            out.append(
                Participant(
                    role=role,
                    ref=p["actor"]["reference"],
                    required=p.get("required", "required") == "required",
                    status=ParticipantStatus(p.get("status", "needs-action")),
                )
            )
        return out
