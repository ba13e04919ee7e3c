"""The EHR port over FHIR R4: a surgical case is an Appointment, the ServiceRequest it is
based on, its Coverage, its room's managing Organization, and the SupplyRequests the
ServiceRequest lists (the preference card: implants, supplies, instrument trays).

An inpatient encounter's coverage is two searches: ``Encounter?identifier=<visit number>``
(HL7 v2 PV1-19 is the Encounter's identifier value) for its subject Patient, then
``Coverage?beneficiary=<Patient reference>&status=active`` for the primary coverage.

Each resource is read with ``fhir.resources.R4B`` and mapped to its canonical record
(:mod:`careflow.adapters.fhir.mappers`, which applies the identifier allow-list); the case
is composed from those records only, never from the raw documents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from careflow.adapters.fhir import mappers
from careflow.adapters.fhir_rest import FhirRestClient
from careflow.canonical import records as rec
from careflow.canonical.cases import (
    Participant,
    ParticipantStatus,
    Priority,
    SupplyNeed,
    SurgicalCase,
)
from careflow.canonical.datatypes import Coding, Concept, Ref
from careflow.canonical.identifiers import DEFAULT_POLICY, IdentifierPolicy
from careflow.canonical.payer import ClinicalDocument, EncounterCoverage
from careflow.canonical.revenue import CaseBilling, ClaimReceipt
from careflow.ports import ConnectorError

SUPPLY_CATEGORY = "urn:careflow:supply-category"
ROLE_BY_PARTICIPATION = {"PPRF": "surgeon", "SPRF": "anesthesia", "ATND": "surgeon"}
URGENT = {"urgent", "asap", "stat"}
SELF_PAY_TYPES = "http://terminology.hl7.org/CodeSystem/coverage-selfpay"
# Who pays a Coverage when it is not an insurer: the patient, or a related person.
SELF_PAYORS = frozenset({"Patient", "RelatedPerson"})

R = TypeVar("R")


def _ref_id(reference: str) -> tuple[str, str]:
    rtype, _, rid = reference.rstrip("/").rpartition("/")
    return rtype.rsplit("/", 1)[-1], rid


def _first_coding(concept: Concept | None) -> Coding | None:
    return concept.codings[0] if concept is not None and concept.codings else None


def _reference_to(refs: Sequence[Ref | None], target: str) -> str | None:
    return next((r.reference for r in refs if r and r.reference and r.target_type == target), None)


def _token(value: str) -> str:
    """A token search value with FHIR's escapes (``\\``, ``\\|``, ``\\,``, ``\\$``)."""
    for char in ("\\", "|", ",", "$"):
        value = value.replace(char, "\\" + char)
    return value


def _same_target(a: str, b: str) -> bool:
    """Two references to the same resource (relative or absolute)."""
    return _ref_id(a) == _ref_id(b)


def _self_pay(coverage: rec.Coverage) -> bool:
    """A self-pay agreement (type from the coverage-selfpay code system, or paid by the
    patient or a related person): careflow reads it as no coverage."""
    if coverage.type is not None and any(c.system == SELF_PAY_TYPES for c in coverage.type.codings):
        return True
    first = coverage.payors[0] if coverage.payors else None
    return first is not None and first.target_type in SELF_PAYORS


def _payer_id(coverage: rec.Coverage) -> str | None:
    """The id of the Organization in ``Coverage.payor[0]`` (None if it is anyone else, or
    a logical reference without a literal one)."""
    first = coverage.payors[0] if coverage.payors else None
    if first is None or not first.reference or first.target_type != "Organization":
        return None
    return _ref_id(first.reference)[1]


def _concept_text(concept: Any) -> list[str]:
    if not isinstance(concept, Mapping):
        return []
    out = [str(c["display"]) for c in concept.get("coding") or [] if c.get("display")]
    return [*out, str(concept["text"])] if concept.get("text") else out


def _document(raw: Mapping[str, Any]) -> ClinicalDocument:
    """A DocumentReference as the attachments model reads it (see ``patient_documents``)."""
    kind: Mapping[str, Any] = raw["type"] if isinstance(raw.get("type"), Mapping) else {}
    codings = tuple(
        Coding(system=str(c["system"]), code=str(c["code"]), display=c.get("display"))
        for c in kind.get("coding") or []
        if c.get("system") and c.get("code")
    )
    parts = [str(raw["description"])] if raw.get("description") else []
    parts += _concept_text(kind)
    for category in raw.get("category") or []:
        parts += _concept_text(category)
    for content in raw.get("content") or []:
        title = (content.get("attachment") or {}).get("title")
        if title:
            parts.append(str(title))
    text = " ; ".join(dict.fromkeys(" ".join(p.split()) for p in parts if p.strip()))
    return ClinicalDocument(
        document_id=f"DocumentReference/{raw.get('id')}", type_codings=codings, text=text
    )


class FhirEhrAdapter:
    def __init__(self, fhir: FhirRestClient, *, identifiers: IdentifierPolicy = DEFAULT_POLICY):
        self.fhir = fhir
        self.identifiers = identifiers

    def _read(self, reference: str, mapper: Callable[..., R]) -> R:
        rtype, rid = _ref_id(reference)
        return self._map(self.fhir.read(rtype, rid), mapper)

    def _map(self, raw: dict[str, Any], mapper: Callable[..., R]) -> R:
        try:
            return mapper(raw, self.identifiers)
        except mappers.FhirMappingError as exc:  # names the path, never a value
            raise ConnectorError(f"{self.fhir.http.system}: {exc}") from None

    def _appointment(self, appointment_id: str) -> rec.AppointmentFacts:
        return self._map(self.fhir.read("Appointment", appointment_id), mappers.appointment)

    def get_surgical_case(self, appointment_id: str) -> SurgicalCase:
        appointment = self._appointment(appointment_id)
        order_ref = _reference_to(appointment.based_on, "ServiceRequest")
        if order_ref is None:
            raise ConnectorError(f"Appointment/{appointment_id}: basedOn has no ServiceRequest")
        order = self._read(order_ref, mappers.service_request)
        actors = [p.actor for p in appointment.participants]
        patient = _reference_to(actors, "Patient") or _reference_to([order.subject], "Patient")
        if not patient:
            raise ConnectorError(f"Appointment/{appointment_id}: no patient")
        if not isinstance(appointment.start, datetime):
            raise ConnectorError(f"Appointment/{appointment_id}: start is not a date and time")
        room = _reference_to(actors, "Location")
        surgeon = next(
            (
                p.actor.reference
                for p in appointment.participants
                if p.actor and self._role(p) == "surgeon"
            ),
            None,
        )
        facility = ""
        if room:
            managing = self._read(room, mappers.location).managing_organization
            facility = _ref_id(managing.reference)[1] if managing and managing.reference else ""
        coverage_ref = next((r.reference for r in order.insurance if r.reference), None)
        payer_id = None
        if coverage_ref:
            payer_id = _payer_id(self._read(coverage_ref, mappers.coverage))
        supplies: list[SupplyNeed] = []
        trays: list[str] = []
        for info in order.supporting_info:
            if not info.reference or info.target_type != "SupplyRequest":
                continue
            request = self._read(info.reference, mappers.supply_request)
            category = _first_coding(request.category)
            item = _first_coding(request.item)
            if item is None or not item.code:
                continue
            if category is not None and category.code == "instrument-tray":
                trays.append(item.code)
            else:
                quantity = request.quantity.value
                supplies.append(
                    SupplyNeed(
                        item_id=item.code,
                        quantity=int(quantity) if quantity is not None else 1,
                        implant=category is not None and category.code == "implant",
                        description=item.display or "",
                    )
                )
        codes = tuple(c for c in (order.code.codings if order.code else ()) if c.code)
        service_line = next((c.text for c in order.categories if c.text), "surgery")
        return SurgicalCase(
            case_id=appointment_id,
            appointment_id=appointment_id,
            facility_id=facility,
            patient_ref=patient,
            scheduled_start=appointment.start,
            procedure_codes=codes,
            service_line=service_line,
            priority=Priority.EXPEDITED if order.priority in URGENT else Priority.ROUTINE,
            coverage_ref=coverage_ref,
            payer_id=payer_id,
            surgeon_ref=surgeon,
            room_ref=room,
            supplies=tuple(supplies),
            tray_ids=tuple(trays),
        )

    @staticmethod
    def _role(participant: rec.AppointmentParticipant) -> str | None:
        if participant.actor is not None and participant.actor.target_type == "Location":
            return "room"
        for concept in participant.types:
            coding = _first_coding(concept)
            if coding is not None and coding.code in ROLE_BY_PARTICIPATION:
                return ROLE_BY_PARTICIPATION[coding.code]
        return None

    def appointment_participants(self, appointment_id: str) -> Sequence[Participant]:
        out = []
        for p in self._appointment(appointment_id).participants:
            role = self._role(p)
            if role is None or p.actor is None or p.actor.reference is None:
                continue  # the patient, or someone the case does not depend on
            out.append(
                Participant(
                    role=role,
                    ref=p.actor.reference,
                    required=(p.required or "required") == "required",
                    status=ParticipantStatus(p.status),
                )
            )
        return out

    def encounter_coverage(self, encounter_id: str) -> EncounterCoverage | None:
        """The encounter found by its visit number, its subject Patient, and the primary
        of the patient's active coverages: the lowest ``Coverage.order``, coverages
        without one after those with one, then in the EHR's order. Self-pay agreements
        are not coverage: with only those (or none), ``coverage_ref`` and ``payer_id``
        are None. ``Coverage.period`` is not compared with the encounter: the EHR's
        ``status=active`` is taken as it is."""
        system = self.fhir.http.system
        if not encounter_id.strip():
            raise ConnectorError(f"{system}: encounter_coverage needs a visit number")
        found: dict[str, rec.Encounter] = {}
        for raw in self.fhir.search("Encounter", {"identifier": _token(encounter_id)}):
            match = self._map(raw, mappers.encounter)
            found.setdefault(match.reference or f"#{len(found)}", match)  # once per id
        if not found:
            return None
        where = f"Encounter?identifier (visit number {encounter_id})"
        if len(found) > 1:
            raise ConnectorError(f"{system}: {where}: {len(found)} Encounters match, not one")
        encounter = next(iter(found.values()))
        subject = encounter.subject
        if subject is None or not subject.reference or subject.target_type != "Patient":
            raise ConnectorError(
                f"{system}: {encounter.reference or where}: Encounter.subject is not a Patient"
            )
        patient = subject.reference
        candidates: list[tuple[tuple[int, int], int, rec.Coverage]] = []
        params = {"beneficiary": patient, "status": "active"}
        for index, raw in enumerate(self.fhir.search("Coverage", params)):
            record: rec.Coverage = self._map(raw, mappers.coverage)
            beneficiary = record.beneficiary.reference
            if not beneficiary or not _same_target(beneficiary, patient):
                # an EHR that ignored the search parameter: another patient's coverage
                raise ConnectorError(
                    f"{system}: {record.reference or 'Coverage'}: Coverage.beneficiary is not "
                    "the encounter's patient"
                )
            if record.status != "active" or _self_pay(record):
                continue
            rank = (0, record.order) if record.order is not None else (1, 0)
            candidates.append((rank, index, record))
        if not candidates:
            return EncounterCoverage(encounter_id=encounter_id, patient_ref=patient)
        primary = min(candidates, key=lambda c: (c[0], c[1]))[2]
        return EncounterCoverage(
            encounter_id=encounter_id,
            patient_ref=patient,
            coverage_ref=primary.reference,
            payer_id=_payer_id(primary),
        )

    def patient_documents(self, patient_ref: str) -> Sequence[ClinicalDocument]:
        """``DocumentReference?patient=<ref>&status=current``: each document's id, its type
        codings, and its human-readable text (description, type and category text and
        displays, attachment titles); never its content, authors or identifiers. A document
        of another patient (an EHR that ignored the parameter) is refused."""
        system = self.fhir.http.system
        out: list[ClinicalDocument] = []
        params = {"patient": patient_ref, "status": "current"}
        for raw in self.fhir.search("DocumentReference", params):
            subject = (raw.get("subject") or {}).get("reference")
            if not subject or not _same_target(str(subject), patient_ref):
                raise ConnectorError(
                    f"{system}: DocumentReference/{raw.get('id')}: subject is not the patient"
                )
            out.append(_document(raw))
        return out

    # -- revenue cycle (post-procedure): see careflow.adapters.fhir.revenue ------------------
    def case_billing(self, case_id: str) -> CaseBilling | None:
        """The completed case's encounter, procedure, devices, charges, documents and
        account, each read with R4B and composed into its billing record."""
        from careflow.adapters.fhir import revenue

        def payer_of(coverage_ref: str) -> str | None:
            return _payer_id(self._read(coverage_ref, mappers.coverage))

        try:
            return revenue.read_case_billing(
                case_id,
                search=lambda rtype, params: self.fhir.search(rtype, dict(params)),
                read=self.fhir.read,
                payer_of=payer_of,
            )
        except mappers.FhirMappingError as exc:  # names the path, never a value
            raise ConnectorError(f"{self.fhir.http.system}: case {case_id}: {exc}") from None

    def submit_claim(self, claim: Mapping[str, Any]) -> ClaimReceipt:
        """POSTs the Claim, conditionally on its identifier: handed over once."""
        from careflow.adapters.fhir import revenue

        keys = revenue.identifiers(claim)
        condition = f"identifier={_token(keys[0])}" if keys else None
        created = self.fhir.create(claim, if_none_exist=condition)
        try:
            return revenue.claim_receipt(created, claim)
        except mappers.FhirMappingError as exc:
            raise ConnectorError(f"{self.fhir.http.system}: Claim: {exc}") from None
