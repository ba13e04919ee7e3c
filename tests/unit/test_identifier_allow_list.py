"""Identifiers enter careflow by allow-list; names, addresses, telecom and personal document
numbers never reach a canonical record (so never state, events, logs or execution input).

Proved over every HL7 FHIR R4 example in tests/fixtures: each resource careflow maps (the
top-level ones and those inside Bundles, e.g. the Cypress patient bundles full of SSNs).
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import careflow.canonical
from careflow.adapters.fhir import SUPPORTED_TYPES, to_canonical
from careflow.canonical.datatypes import Coding, Concept, Identifier, Model
from careflow.canonical.identifiers import V2_0203, IdentifierPolicy
from tests import fixtures

FHIR = fixtures.FHIR_R4
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
PERSON_TYPES = {"Patient", "Person", "Practitioner", "PractitionerRole", "RelatedPerson"}
NEVER = {"SS", "DL", "PPN"}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _resources(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The document, the resources of a Bundle's entries, and contained resources."""
    yield doc
    for entry in doc.get("entry", []):
        if isinstance(entry.get("resource"), dict):
            yield from _resources(entry["resource"])
    for contained in doc.get("contained", []):
        yield from _resources(contained)


DOCS = {p.name: _load(p) for p in sorted(FHIR.glob("*.json"))}
WITH_PERSON_IDS = sorted(
    name
    for name, doc in DOCS.items()
    if any(r["resourceType"] in PERSON_TYPES and r.get("identifier") for r in _resources(doc))
)


def _mapped(doc: dict[str, Any]) -> list[BaseModel]:
    """The canonical records careflow makes of a fixture (its mappable resources)."""
    top = [doc] if doc["resourceType"] != "Bundle" else []
    entries = [e["resource"] for e in doc.get("entry", []) if isinstance(e.get("resource"), dict)]
    return [to_canonical(r) for r in (*top, *entries) if r["resourceType"] in SUPPORTED_TYPES]


def _identifiers(node: Any) -> Iterator[Identifier]:
    if isinstance(node, Identifier):
        yield node
    if isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from _identifiers(getattr(node, name))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _identifiers(item)


def _type_codes(ident: dict[str, Any]) -> set[str]:
    return {c.get("code") for c in ident.get("type", {}).get("coding", [])}


def _never_kept(ident: dict[str, Any]) -> bool:
    return ident.get("system") == SSN_SYSTEM or bool(_type_codes(ident) & NEVER)


# --- the fixtures make the proof non-vacuous ------------------------------------------


def test_the_fixtures_hold_ssns_and_person_identifiers() -> None:
    assert len(WITH_PERSON_IDS) >= 20
    ssns = [
        i
        for doc in DOCS.values()
        for r in _resources(doc)
        for i in r.get("identifier", [])
        if isinstance(i, dict) and _never_kept(i)
    ]
    assert len(ssns) >= 100, "the SSN check would be vacuous"


@pytest.mark.parametrize("name", WITH_PERSON_IDS)
def test_no_ssn_licence_or_passport_number_in_any_canonical_record(name: str) -> None:
    doc = DOCS[name]
    records = _mapped(doc)
    for ident in (i for record in records for i in _identifiers(record)):
        codes = {c.code for c in ident.type.codings} if ident.type else set()
        assert ident.system != SSN_SYSTEM, name
        assert not codes & NEVER, f"{name}: an identifier typed {codes & NEVER} was kept"
    # and no value of such an identifier survives anywhere in the records
    secrets = {
        i["value"]
        for r in _resources(doc)
        for i in r.get("identifier", [])
        if isinstance(i, dict) and "value" in i and _never_kept(i)
    }
    serialized = "".join(record.model_dump_json() for record in records)
    assert not sorted(s for s in secrets if s in serialized)


@pytest.mark.parametrize("name", WITH_PERSON_IDS)
def test_person_identifiers_are_only_mrns_and_member_ids(name: str) -> None:
    """What is left on a patient or a practitioner is typed MR or MB (v2-0203)."""
    for record in _mapped(DOCS[name]):
        if type(record).__name__ not in {"PatientRef", "Provider"}:
            continue
        for ident in record.identifiers:  # type: ignore[attr-defined]
            assert ident.type is not None
            assert {(c.system, c.code) for c in ident.type.codings} & {
                (V2_0203, "MR"),
                (V2_0203, "MB"),
            }, name


# --- the models have no place for demographics ----------------------------------------

# Names of things, not of people: a plan, a benefit, an organization, a place.
NAMED_THINGS = {
    "Organization",
    "Location",
    "Supplier",
    "CostCenter",
    "CoverageClass",
    "BenefitItem",
    # -- inventory (issue 11) --
    "StorageLocation",  # a storage location's name ("OR sterile core")
}
DEMOGRAPHICS = {
    "name",
    "names",
    "given",
    "family",
    "address",
    "addresses",
    "telecom",
    "phone",
    "email",
    "birth_date",
    "birthdate",
    "gender",
    "contact",
    "contacts",
    "photo",
    "ssn",
}


def _canonical_models() -> list[type[BaseModel]]:
    out: list[type[BaseModel]] = []
    for info in pkgutil.iter_modules(careflow.canonical.__path__):
        module = importlib.import_module(f"careflow.canonical.{info.name}")
        out += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, Model) and cls.__module__ == module.__name__
        ]
    return out


def test_every_canonical_model_is_checked() -> None:
    names = {cls.__name__ for cls in _canonical_models()}
    assert {"PatientRef", "Provider", "SurgicalCase", "PriorAuthRequest", "Identifier"} <= names


@pytest.mark.parametrize("model", _canonical_models(), ids=lambda cls: cls.__name__)
def test_no_name_address_or_telecom_field(model: type[BaseModel]) -> None:
    fields = set(model.model_fields)
    if model.__name__ in NAMED_THINGS:
        fields.discard("name")
    assert not fields & DEMOGRAPHICS, f"{model.__name__}: {sorted(fields & DEMOGRAPHICS)}"


# --- nothing of a patient's name, SSN or street address, anywhere ---------------------


def _patient_phi(doc: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for r in _resources(doc):
        if r["resourceType"] != "Patient":
            continue
        for name in r.get("name", []):
            found.update(v for k, v in name.items() if k in ("family", "text"))
            found.update(name.get("given", []))
        for address in r.get("address", []):
            found.update(address.get("line", []))
        found.update(i["value"] for i in r.get("identifier", []) if "value" in i and _never_kept(i))
    return {s for s in found if isinstance(s, str) and len(s) >= 4}


ALL_PHI = {name: _patient_phi(doc) for name, doc in DOCS.items()}

# Words that are some example patient's name and, in these records, something else.
NOT_A_PATIENT = {
    ("encounter-example-emerg.json", "Ward"),  # a Location's display: "Ward 1, Room 42, Bed 1"
}


def test_the_fixtures_hold_patient_names_ssns_and_addresses() -> None:
    phi = set().union(*ALL_PHI.values())
    assert len(phi) >= 300, "the search below would be vacuous"


def _found(phi: set[str], text: str) -> list[str]:
    """The PHI strings in ``text`` as words (a patient named West is not in "Western")."""
    return sorted(s for s in phi if re.search(rf"(?<!\w){re.escape(s)}(?!\w)", text))


def test_no_canonical_record_from_any_fixture_carries_a_patients_name_ssn_or_address() -> None:
    phi = set().union(*ALL_PHI.values())
    leaks: dict[str, list[str]] = {}
    for name, doc in DOCS.items():
        if doc["resourceType"] not in SUPPORTED_TYPES and doc["resourceType"] != "Bundle":
            continue
        serialized = "\n".join(r.model_dump_json() for r in _mapped(doc))
        found = [s for s in _found(phi, serialized) if (name, s) not in NOT_A_PATIENT]
        if found:
            leaks[name] = found
    assert not leaks


# --- the policy itself ----------------------------------------------------------------


def _typed(code: str, system: str | None = "urn:x", value: str = "v1") -> Identifier:
    concept = Concept(codings=(Coding(system=V2_0203, code=code),))
    return Identifier(system=system, value=value, type=concept)


@pytest.mark.parametrize("code", ["MR", "MB"])
def test_mrn_and_member_id_are_admitted_on_people(code: str) -> None:
    assert IdentifierPolicy().admits(_typed(code), person=True)


@pytest.mark.parametrize("code", ["SS", "DL", "PPN", "NI", "TAX", "EN", "NPI", "PRN"])
def test_other_typed_person_identifiers_are_not(code: str) -> None:
    assert not IdentifierPolicy().admits(_typed(code), person=True)


def test_an_untyped_person_identifier_needs_a_configured_facility_system() -> None:
    staff = Identifier(system="https://north.example/staff", value="E123")
    assert not IdentifierPolicy().admits(staff, person=True)
    policy = IdentifierPolicy.with_systems(["https://north.example/staff"])
    assert policy.admits(staff, person=True)


def test_a_configured_system_cannot_let_an_ssn_in() -> None:
    policy = IdentifierPolicy.with_systems([SSN_SYSTEM, "https://north.example/ids"])
    assert not policy.admits(Identifier(system=SSN_SYSTEM, value="123-45-6789"), person=True)
    assert not policy.admits(_typed("SS", "https://north.example/ids"), person=True)
    assert not policy.admits(_typed("DL", "https://north.example/ids"), person=False)


def test_record_identifiers_are_kept_with_a_system_unless_personal_document_numbers() -> None:
    policy = IdentifierPolicy()
    assert policy.admits(Identifier(system="http://happyvalley.com/claim", value="1"), person=False)
    assert not policy.admits(Identifier(value="Encounter_Roel_20130404"), person=False)
    assert not policy.admits(_typed("PPN"), person=False)
    assert not policy.admits(
        Identifier(system="http://hl7.org/fhir/sid/passport-USA", value="X"), person=False
    )
    assert not policy.admits(Identifier(system="urn:x"), person=False)  # no value: no identifier


def test_the_mappers_apply_the_policy_they_are_given() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [
            {"system": "https://north.example/patients", "value": "N-1"},
            {"system": SSN_SYSTEM, "value": "123-45-6789"},
        ],
    }
    assert to_canonical(patient).identifiers == ()  # type: ignore[attr-defined]
    policy = IdentifierPolicy.with_systems(["https://north.example/patients"])
    kept = to_canonical(patient, policy).identifiers  # type: ignore[attr-defined]
    assert kept == (Identifier(system="https://north.example/patients", value="N-1"),)


def test_a_coverage_subscriber_id_is_a_member_id() -> None:
    coverage = to_canonical(DOCS["coverage-example-2.json"])
    member = coverage.subscriber_id  # type: ignore[attr-defined]
    assert member is not None and member.value == DOCS["coverage-example-2.json"]["subscriberId"]
    assert member.type is not None and member.type.has(V2_0203, "MB")
