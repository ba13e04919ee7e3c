"""The demo's surgical cases as FHIR R4 resources, for the EHR sandbox server.

Built from the same seeds as the in-process sandbox (``careflow.adapters.sandbox``), so
both serve the same cases. Patients get synthetic demographics: real-looking PHI that
must never reach a log (a test reads the logs of a whole demo for them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from careflow.canonical.cases import SurgicalCase
from careflow.canonical.payer import ClinicalDocument, EncounterCoverage
from careflow.localcloud.sandboxes.fhir_server import FhirStore

FACILITY = "urn:careflow:facility"
ERP_ITEM = "urn:careflow:erp:item"
SUPPLY_CATEGORY = "urn:careflow:supply-category"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
MRN = "urn:oid:2.16.840.1.113883.3.careflow.mrn"
MEMBER = "urn:careflow:payer:member-id"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
VISIT = "urn:oid:2.16.840.1.113883.3.careflow.visit"
V3_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

# Synthetic people: made up, but shaped like PHI, so a leak would be visible.
PEOPLE = {
    "1001": ("Marisol", "Quintero-Vance", "1957-03-14"),
    "1002": ("Theodore", "Ashbury", "1962-11-02"),
    "1003": ("Yevgenia", "Holloway", "1949-07-29"),
    "1004": ("Kwame", "Adjei-Brennan", "1971-01-18"),
    "1005": ("Lucinda", "Fairweather", "1966-09-05"),
}


def _v2_type(code: str) -> dict[str, Any]:
    return {"coding": [{"system": V2_0203, "code": code}]}


def patient_ssn(number: str) -> str:
    """A synthetic SSN (area 900 is never issued) that careflow must never keep."""
    return f"900-{number[-2:]}-{number}"


def patient_demographics(number: str) -> tuple[str, str, str]:
    return PEOPLE.get(number, ("Alexis", f"Testperson{number}", "1970-01-01"))


def case_resources(case: SurgicalCase, anesthesia_ref: str) -> list[dict[str, Any]]:
    number = case.appointment_id.rsplit("-", 1)[-1]
    given, family, birth = patient_demographics(number)
    patient_id = case.patient_ref.split("/")[-1]
    coverage_id = (case.coverage_ref or f"Coverage/cov-{number}").split("/")[-1]
    sr_id = f"sr-{number}"
    room_id = (case.room_ref or "Location/or").split("/")[-1]
    supply_refs = []
    resources: list[dict[str, Any]] = []
    for i, need in enumerate(case.supplies):
        sid = f"supply-{number}-{i + 1}"
        supply_refs.append({"reference": f"SupplyRequest/{sid}"})
        resources.append(
            {
                "resourceType": "SupplyRequest",
                "id": sid,
                "status": "active",
                "category": {
                    "coding": [
                        {"system": SUPPLY_CATEGORY, "code": "implant" if need.implant else "supply"}
                    ]
                },
                "itemCodeableConcept": {
                    "coding": [
                        {"system": ERP_ITEM, "code": need.item_id, "display": need.description}
                    ]
                },
                "quantity": {"value": need.quantity},
                "deliverTo": {"reference": f"Location/{room_id}"},
            }
        )
    for i, tray in enumerate(case.tray_ids):
        sid = f"tray-{number}-{i + 1}"
        supply_refs.append({"reference": f"SupplyRequest/{sid}"})
        resources.append(
            {
                "resourceType": "SupplyRequest",
                "id": sid,
                "status": "active",
                "category": {"coding": [{"system": SUPPLY_CATEGORY, "code": "instrument-tray"}]},
                "itemCodeableConcept": {"coding": [{"system": ERP_ITEM, "code": tray}]},
                "quantity": {"value": 1},
                "deliverTo": {"reference": f"Location/{room_id}"},
            }
        )
    resources += [
        {
            "resourceType": "Patient",
            "id": patient_id,
            "identifier": [
                {"system": MRN, "value": f"MRN{number}77", "type": _v2_type("MR")},
                # what careflow must never keep (careflow.canonical.identifiers)
                {
                    "system": "http://hl7.org/fhir/sid/us-ssn",
                    "value": patient_ssn(number),
                    "type": _v2_type("SS"),
                },
            ],
            "name": [{"family": family, "given": [given]}],
            "birthDate": birth,
            "gender": "unknown",
        },
        {
            "resourceType": "Coverage",
            "id": coverage_id,
            "status": "active",
            "subscriberId": f"MBR-{number}-5521",
            "identifier": [
                {"system": MEMBER, "value": f"MBR-{number}-5521", "type": _v2_type("MB")}
            ],
            "beneficiary": {"reference": case.patient_ref},
            "payor": [{"reference": f"Organization/{case.payer_id}"}],
        },
        {
            "resourceType": "ServiceRequest",
            "id": sr_id,
            "status": "active",
            "intent": "order",
            "priority": "urgent" if case.priority.value == "expedited" else "routine",
            "code": {"coding": [c.model_dump(exclude_none=True) for c in case.procedure_codes]},
            "subject": {"reference": case.patient_ref},
            "insurance": [{"reference": f"Coverage/{coverage_id}"}],
            "category": [{"text": case.service_line}],
            "supportingInfo": supply_refs,
        },
        {
            "resourceType": "Appointment",
            "id": case.appointment_id,
            "status": "booked",
            "appointmentType": {"coding": [{"code": "procedure"}]},
            "start": case.scheduled_start.isoformat(),
            "basedOn": [{"reference": f"ServiceRequest/{sr_id}"}],
            "participant": [
                {
                    "actor": {"reference": case.patient_ref},
                    "required": "required",
                    "status": "accepted",
                },
                {
                    "type": [{"coding": [{"system": PARTICIPATION, "code": "PPRF"}]}],
                    "actor": {"reference": case.surgeon_ref},
                    "required": "required",
                    "status": "accepted",
                },
                {
                    "type": [{"coding": [{"system": PARTICIPATION, "code": "SPRF"}]}],
                    "actor": {"reference": anesthesia_ref},
                    "required": "required",
                    "status": "accepted",
                },
                {
                    "actor": {"reference": case.room_ref},
                    "required": "required",
                    "status": "accepted",
                },
            ],
        },
        {
            "resourceType": "Location",
            "id": room_id,
            "status": "active",
            "managingOrganization": {"reference": f"Organization/{case.facility_id}"},
        },
        {
            "resourceType": "Organization",
            "id": case.facility_id,
            "identifier": [{"system": FACILITY, "value": case.facility_id}],
        },
    ]
    return resources


def seed(store: FhirStore, cases: dict[str, SurgicalCase], participants: dict[str, Any]) -> int:
    """Puts every case of an in-process sandbox into ``store``; returns the resource count."""
    count = 0
    for appointment_id, case in cases.items():
        anesthesia = next(
            (p.ref for p in participants.get(appointment_id, ()) if p.role == "anesthesia"),
            "Practitioner/dr-nakamura",
        )
        for resource in case_resources(case, anesthesia):
            store.put(resource)
            count += 1
        # the participants' statuses as the sandbox has them (tests change them)
        appointment = store.get("Appointment", appointment_id)
        assert appointment is not None
        by_ref = {p.ref: p for p in participants.get(appointment_id, ())}
        for part in appointment["participant"]:
            ref = part["actor"]["reference"]
            if ref in by_ref:
                part["status"] = by_ref[ref].status.value
        store.put(appointment)
    return count


def encounter_resources(record: EncounterCoverage) -> list[dict[str, Any]]:
    """An inpatient encounter as the EHR holds it: the Encounter (its visit number the
    identifier), its Patient, and the patient's active Coverage unless self-pay."""
    from careflow.adapters.sandbox import fhir_id

    patient_id = record.patient_ref.split("/")[-1]
    number = patient_id.removeprefix("pat-enc-")
    given, family, birth = patient_demographics(number)
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": patient_id,
            "identifier": [{"system": MRN, "value": f"MRN-E-{number}", "type": _v2_type("MR")}],
            "name": [{"family": family, "given": [given]}],
            "birthDate": birth,
            "gender": "unknown",
        },
        {
            "resourceType": "Encounter",
            "id": f"enc-{fhir_id(record.encounter_id)}",
            "identifier": [{"system": VISIT, "value": record.encounter_id, "type": _v2_type("VN")}],
            "status": "in-progress",
            "class": {"system": V3_ACT, "code": "IMP", "display": "inpatient encounter"},
            "subject": {"reference": record.patient_ref},
        },
    ]
    if record.coverage_ref is not None:
        coverage: dict[str, Any] = {
            "resourceType": "Coverage",
            "id": record.coverage_ref.split("/")[-1],
            "status": "active",
            "order": 1,
            "beneficiary": {"reference": record.patient_ref},
            "payor": [{"reference": f"Organization/{record.payer_id}"}]
            if record.payer_id
            else [{"display": "unknown payer"}],
        }
        resources.append(coverage)
    return resources


def encounters_on_demand(
    lookup: Callable[[str], EncounterCoverage | None],
) -> Callable[[str, Mapping[str, str]], list[dict[str, Any]]]:
    """For ``FhirSandboxServer(on_search_miss=...)``: an ``Encounter?identifier=`` search
    that finds nothing gets the encounter ``lookup`` (the in-process sandbox's
    ``encounter_record``) holds, with its Patient and Coverage; nothing if it holds none."""
    from careflow.localcloud.sandboxes.fhir_server import split_token

    def miss(resource_type: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        if resource_type != "Encounter" or set(params) != {"identifier"}:
            return []
        system, visit_number = split_token(params["identifier"])
        if system not in ("", VISIT) or not visit_number.strip():
            return []
        record = lookup(visit_number)
        return encounter_resources(record) if record is not None else []

    return miss


def document_resources(
    patient_ref: str, documents: Sequence[ClinicalDocument]
) -> list[dict[str, Any]]:
    """A patient's documents as the EHR holds them: DocumentReferences, current, their type
    coded when the sandbox coded it (else its text only) and their title as a description."""
    out: list[dict[str, Any]] = []
    for doc in documents:
        kind: dict[str, Any] = {"text": doc.text}
        if doc.type_codings:
            kind["coding"] = [c.model_dump(exclude_none=True) for c in doc.type_codings]
        out.append(
            {
                "resourceType": "DocumentReference",
                "id": doc.document_id.split("/")[-1],
                "status": "current",
                "type": kind,
                "description": doc.text,
                "subject": {"reference": patient_ref},
                "content": [{"attachment": {"contentType": "application/pdf"}}],
            }
        )
    return out


def documents_on_demand(
    lookup: Callable[[str], Sequence[ClinicalDocument]],
) -> Callable[[str, Mapping[str, str]], list[dict[str, Any]]]:
    """For ``FhirSandboxServer(on_search_miss=...)``: a ``DocumentReference?patient=`` search
    that finds nothing gets the documents ``lookup`` (the in-process sandbox's
    ``documents_of``) holds for the patient."""

    def miss(resource_type: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        patient = params.get("patient", "")
        if resource_type != "DocumentReference" or not patient.startswith("Patient/"):
            return []
        return document_resources(patient, lookup(patient))

    return miss


def on_demand(
    *misses: Callable[[str, Mapping[str, str]], list[dict[str, Any]]],
) -> Callable[[str, Mapping[str, str]], list[dict[str, Any]]]:
    """Every miss handler's resources, in turn."""

    def miss(resource_type: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        return [r for handler in misses for r in handler(resource_type, params)]

    return miss
