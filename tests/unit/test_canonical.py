"""Canonical records: minimum of PHI, clear errors, exact references and identifiers."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from careflow.adapters.fhir import (
    FhirMappingError,
    InvalidResource,
    UnsupportedResource,
    mappers,
    parse,
    to_canonical,
)
from careflow.canonical.datatypes import Coding, Identifier, Period, Ref
from careflow.canonical.records import AppointmentFacts, ClaimResponse, Invoice, PatientRef
from tests import fixtures

SHARED = fixtures.FIXTURES
FHIR = SHARED / "fhir-r4"
if not FHIR.is_dir():
    raise RuntimeError(f"FHIR R4 fixtures folder missing: {FHIR}")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
PATIENT_FILES = sorted(p for p in FHIR.glob("*.json") if _load(p)["resourceType"] == "Patient")
MAPPED_FILES = sorted(
    p for p in FHIR.glob("*.json") if _load(p)["resourceType"] in mappers.SUPPORTED_TYPES
)


def _phi_strings(patient: dict[str, Any]) -> set[str]:
    """Name parts, birth date, address and telecom values, straight from the raw JSON."""
    found: set[str] = set()
    for name in patient.get("name", []):
        for key in ("family", "text"):
            if key in name:
                found.add(name[key])
        for key in ("given", "prefix", "suffix"):
            found.update(name.get(key, []))
    if "birthDate" in patient:
        found.add(patient["birthDate"])
    for address in patient.get("address", []):
        found.update(address.get("line", []))
        for key in ("city", "postalCode", "text"):
            if key in address:
                found.add(address[key])
    for telecom in patient.get("telecom", []):
        if "value" in telecom:
            found.add(telecom["value"])
    return {s for s in found if len(s) >= 3}


def test_patient_fixtures_exist_and_hold_phi() -> None:
    assert len(PATIENT_FILES) >= 10
    with_phi = [p for p in PATIENT_FILES if _phi_strings(_load(p))]
    assert len(with_phi) >= len(PATIENT_FILES) - 2, "the PHI check would be vacuous"


@pytest.mark.parametrize("path", PATIENT_FILES, ids=lambda p: p.name)
def test_patient_ref_carries_no_demographics(path: Path) -> None:
    raw = _load(path)
    ref = to_canonical(raw)
    assert isinstance(ref, PatientRef)
    assert ref.reference == f"Patient/{raw['id']}"
    serialized = ref.model_dump_json()
    leaked = sorted(s for s in _phi_strings(raw) if s in serialized)
    assert not leaked, f"PHI in the canonical patient: {leaked}"
    # only the allow-listed ones: a medical record or member number (v2-0203 MR, MB)
    assert [(i.system, i.value) for i in ref.identifiers] == [
        (i.get("system"), i.get("value"))
        for i in raw.get("identifier", [])
        if {(c.get("system"), c.get("code")) for c in i.get("type", {}).get("coding", [])}
        & {(V2_0203, "MR"), (V2_0203, "MB")}
    ]


def test_patient_ref_has_no_place_for_demographics() -> None:
    fields = set(PatientRef.model_fields)
    assert not fields & {"name", "birth_date", "birthDate", "address", "telecom", "gender"}
    with pytest.raises(ValidationError):
        PatientRef(reference="Patient/1", name="Peter")  # type: ignore[call-arg]


def test_references_to_people_carry_no_display() -> None:
    raw = _load(FHIR / "appointment-example.json")
    patient_display = next(
        p["actor"]["display"]
        for p in raw["participant"]
        if p["actor"]["reference"].startswith("Patient/")
    )
    facts = to_canonical(raw)
    assert isinstance(facts, AppointmentFacts)
    assert patient_display not in facts.model_dump_json()
    practitioner = next(
        p.actor for p in facts.participants if p.actor and p.actor.target_type == "Practitioner"
    )
    assert practitioner.display is None  # a practitioner's name is a name too
    location = next(
        p.actor for p in facts.participants if p.actor and p.actor.target_type == "Location"
    )
    assert location.display == "South Wing, second floor"  # a place's is kept


def test_reference_to_a_contained_patient_carries_no_display() -> None:
    raw = {
        "resourceType": "Invoice",
        "status": "issued",
        "contained": [{"resourceType": "Patient", "id": "p1", "name": [{"family": "Doe"}]}],
        "recipient": {"reference": "#p1", "display": "Jane Doe"},
    }
    invoice = to_canonical(raw)
    assert isinstance(invoice, Invoice)
    assert invoice.recipient == Ref(reference="#p1")
    assert "Doe" not in invoice.model_dump_json()


# --- bad input ------------------------------------------------------------------------


def test_unknown_resource_type() -> None:
    with pytest.raises(UnsupportedResource, match="'Foo'"):
        to_canonical({"resourceType": "Foo"})
    with pytest.raises(UnsupportedResource, match="MedicationRequest"):
        to_canonical(_load(FHIR / "medicationrequest0301.json"))
    with pytest.raises(UnsupportedResource):
        parse({"resourceType": "../../os"})


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"status": "booked"}, "resourceType"),
        ({"resourceType": 7}, "resourceType"),
        ([{"resourceType": "Patient"}], ""),
    ],
)
def test_not_a_resource(raw: Any, path: str) -> None:
    with pytest.raises(InvalidResource) as info:
        parse(raw)
    assert info.value.path == path


@pytest.mark.parametrize(
    ("raw", "path", "secret"),
    [
        ({"resourceType": "Patient", "birthDate": "John Smith"}, "birthDate", "John Smith"),
        (
            {"resourceType": "Patient", "name": [{"family": ["Smithers"]}]},
            "name[0].family",
            "Smithers",
        ),
        (
            {"resourceType": "Appointment", "status": "booked", "participant": [{"status": 5}]},
            "participant[0].status",
            None,
        ),
        (  # an R5 field in an R4 document
            {"resourceType": "Appointment", "status": "booked", "class": [], "participant": []},
            "class",
            None,
        ),
        (
            {"resourceType": "Coverage", "status": "active", "payor": [{"reference": "O/1"}]},
            "beneficiary",
            None,
        ),
    ],
)
def test_invalid_documents_name_the_path_never_the_value(
    raw: dict[str, Any], path: str, secret: str | None
) -> None:
    with pytest.raises(InvalidResource) as info:
        to_canonical(raw)
    error = info.value
    message = str(error)
    assert error.path == path
    assert error.resource_type == raw["resourceType"]
    assert f"at {path}:" in message
    assert "\n" not in message
    if secret:
        assert secret not in message


def test_r5_model_instances_are_refused() -> None:
    from fhir.resources.patient import Patient as R5Patient

    with pytest.raises(FhirMappingError, match="R4B"):
        to_canonical(R5Patient(id="x"))


def test_a_mapper_refuses_the_wrong_type() -> None:
    with pytest.raises(FhirMappingError, match="expected Appointment, got Patient"):
        mappers.appointment({"resourceType": "Patient", "id": "x"})


def test_model_instances_and_dicts_map_alike() -> None:
    raw = _load(FHIR / "coverage-example.json")
    assert to_canonical(parse(raw)) == to_canonical(raw)
    assert mappers.coverage(raw) == to_canonical(raw)


# --- references, identifiers, times ---------------------------------------------------


def test_reference_strings_kept_exactly() -> None:
    refs = [
        "Patient/example",
        "#contained-1",
        "http://example.org/fhir/Practitioner/42",
        "Location/1/_history/3",
    ]
    raw = {
        "resourceType": "Appointment",
        "status": "proposed",
        "participant": [{"actor": {"reference": r}, "status": "needs-action"} for r in refs]
        + [
            {"actor": {"identifier": {"system": "urn:npi", "value": "123"}}, "status": "accepted"},
            {
                "actor": {"type": "Location", "identifier": {"system": "urn:rooms", "value": "3"}},
                "status": "accepted",
            },
        ],
    }
    facts = to_canonical(raw)
    assert isinstance(facts, AppointmentFacts)
    actors = [p.actor for p in facts.participants]
    assert [a.reference for a in actors if a] == [*refs, None, None]
    assert [a.target_type for a in actors if a] == [
        "Patient",
        None,
        "Practitioner",
        "Location",
        None,
        "Location",
    ]
    # a logical reference to who-knows-whom may name a person: its identifier is not kept;
    # one to a room is
    unknown, room = actors[-2], actors[-1]
    assert unknown is not None and unknown.identifier is None
    assert room is not None and room.identifier == Identifier(system="urn:rooms", value="3")


def test_identifier_keeps_system_value_use_and_type() -> None:
    raw = _load(FHIR / "patient-example.json")
    ref = to_canonical(raw)
    assert isinstance(ref, PatientRef)
    first, raw_first = ref.identifiers[0], raw["identifier"][0]
    assert (first.system, first.value, first.use) == (
        raw_first["system"],
        raw_first["value"],
        raw_first["use"],
    )
    assert first.type is not None
    assert first.type.codes() == tuple(c["code"] for c in raw_first["type"]["coding"])


def test_a_record_identifier_without_system_is_not_kept_but_a_local_code_is() -> None:
    """19 HL7 examples give identifiers with no system: nothing can be correlated on a bare
    value, and some hold a patient's name (``Encounter_Roel_20130404``)."""
    encounter = to_canonical(_load(FHIR / "encounter-example-f201-20130404.json"))
    assert encounter.identifiers == ()  # type: ignore[attr-defined]
    assert "Roel" not in encounter.model_dump_json()
    assert Coding(code="52").system is None


def test_times_keep_precision_and_offset() -> None:
    period = Period(start="2013-05-06T10:00:00+10:00", end="2013-05")
    assert isinstance(period.start, datetime)
    assert period.start.utcoffset() == timedelta(hours=10)
    assert period.end == "2013-05"
    assert Period(start="2013-05-06").start == date(2013, 5, 6)
    with pytest.raises(ValidationError):
        Period(start="next tuesday")


@pytest.mark.parametrize("path", MAPPED_FILES, ids=lambda p: p.name)
def test_canonical_records_round_trip_through_json(path: Path) -> None:
    record = to_canonical(_load(path))
    again = type(record).model_validate_json(record.model_dump_json())
    assert again == record


def test_canonical_records_are_frozen() -> None:
    ref = to_canonical(_load(FHIR / "patient-example.json"))
    with pytest.raises(ValidationError):
        ref.reference = "Patient/other"  # type: ignore[misc]


def test_pas_review_action_codes() -> None:
    bundle = _load(SHARED / "davinci-pas" / "valid_pa_response_bundle.json")
    raw = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ClaimResponse"
    )
    response = to_canonical(raw)
    assert isinstance(response, ClaimResponse)
    adjudication = response.items[0].adjudications[0]
    assert [c.code for c in adjudication.review_action_codes] == ["A1"]
    assert adjudication.review_action_codes[0].system == "https://codesystem.x12.org/005010/306"
    assert adjudication.review_action_number == "AUTH0001"


def test_a_repeating_service_request_says_so() -> None:
    raw = _load(FHIR / "servicerequest-example2.json")
    assert "repeat" in raw["occurrenceTiming"]
    request = mappers.service_request(raw)
    assert request.occurrence_repeats
    assert request.occurrence is None and request.occurrence_period is None
