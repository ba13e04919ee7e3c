"""Contract: careflow reads the official HL7 FHIR R4 examples as their authors meant.

For every fixture of a mapped type: parse with ``fhir.resources.R4B``, map to the canonical
record, and compare with values pulled straight from the raw JSON by this test (never via
the mapper): identifiers (system + value), reference strings, times and periods, status
fields. Every reference and identifier in a fixture must either be carried or be listed
here as deliberately not carried, so a new fixture shape fails loudly instead of being
silently dropped.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from careflow.adapters.fhir import SUPPORTED_TYPES, UnsupportedResource, parse, to_canonical
from tests import fixtures

FIXTURES = fixtures.FHIR_R4
if not FIXTURES.is_dir():  # fail loudly: a contract test that skips proves nothing
    raise RuntimeError(f"FHIR R4 fixtures folder missing: {FIXTURES} (tests/fixtures)")

ALL_FILES = sorted(FIXTURES.glob("*.json"))
if not ALL_FILES:
    raise RuntimeError(f"no fixtures in {FIXTURES}")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


TYPE_OF = {p.name: _load(p)["resourceType"] for p in ALL_FILES}
MAPPED_FILES = [p for p in ALL_FILES if TYPE_OF[p.name] in SUPPORTED_TYPES]

# Types in the folder that careflow does not map. Adding a mapper means moving its type
# out of this set (and adding a SPEC below).
EXPECTED_UNMAPPED = {
    "Account",
    "AppointmentResponse",
    "Bundle",
    "CarePlan",
    "CareTeam",
    "ChargeItem",
    "Communication",
    "CommunicationRequest",
    "Device",
    "DeviceRequest",
    "DocumentReference",
    "EpisodeOfCare",
    "ExplanationOfBenefit",
    "HealthcareService",
    "MedicationDispense",
    "MedicationRequest",
    "Procedure",
    "QuestionnaireResponse",
    "SearchParameter",
    "Subscription",
}


@dataclass(frozen=True)
class Spec:
    """Where each raw field lands in the canonical record (raw path -> canonical path).

    Paths are dotted; lists are flattened on both sides.
    """

    refs: dict[str, str] = field(default_factory=dict)
    ignored_refs: frozenset[str] = frozenset()
    identifiers: dict[str, str] = field(default_factory=lambda: {"identifier": "identifiers"})
    ignored_identifiers: frozenset[str] = frozenset()
    times: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


def _period(raw: str, canon: str) -> dict[str, str]:
    return {f"{raw}.start": f"{canon}.start", f"{raw}.end": f"{canon}.end"}


SPEC: dict[str, Spec] = {
    "Appointment": Spec(
        refs={"participant.actor": "participants.actor", "basedOn": "based_on", "slot": "slots"},
        ignored_refs=frozenset({"reasonReference", "supportingInformation"}),
        times={
            "start": "start",
            "end": "end",
            "created": "created",
            **_period("requestedPeriod", "requested_periods"),
            **_period("participant.period", "participants.period"),
        },
        values={
            "status": "status",
            "participant.status": "participants.status",
            "participant.required": "participants.required",
            "minutesDuration": "minutes_duration",
            "priority": "priority",
            "serviceType.coding.code": "service_types.codings.code",
            "serviceType.coding.system": "service_types.codings.system",
        },
    ),
    "Claim": Spec(
        refs={
            "patient": "patient",
            "provider": "provider",
            "insurer": "insurer",
            "enterer": "enterer",
            "facility": "facility",
            "referral": "referral",
            "insurance.coverage": "insurance.coverage",
            "item.locationReference": "items.location_ref",
        },
        ignored_refs=frozenset(
            {
                "careTeam.provider",
                "insurance.claimResponse",
                "item.detail.subDetail.udi",
                "item.detail.udi",
                "item.encounter",
                "item.udi",
                "originalPrescription",
                "payee.party",
                "prescription",
                "procedure.udi",
                "related",
                "related.claim",
                "supportingInfo.valueReference",
                "diagnosis.diagnosisReference",
                "accident.locationReference",
            }
        ),
        identifiers={"identifier": "identifiers", "insurance.identifier": "insurance.identifier"},
        times={
            "created": "created",
            "item.servicedDate": "items.serviced",
            **_period("billablePeriod", "billable_period"),
            **_period("item.servicedPeriod", "items.serviced_period"),
        },
        values={
            "status": "status",
            "use": "use",
            "item.sequence": "items.sequence",
            "item.productOrService.coding.code": "items.product_or_service.codings.code",
            "item.net.value": "items.net.value",
            "item.net.currency": "items.net.currency",
            "insurance.sequence": "insurance.sequence",
            "insurance.focal": "insurance.focal",
            "insurance.preAuthRef": "insurance.pre_auth_refs",
            "total.value": "total.value",
            "total.currency": "total.currency",
        },
    ),
    "ClaimResponse": Spec(
        refs={
            "patient": "patient",
            "insurer": "insurer",
            "requestor": "requestor",
            "request": "request",
        },
        ignored_refs=frozenset({"communicationRequest", "insurance.coverage"}),
        ignored_identifiers=frozenset({"payment.identifier"}),
        times={"created": "created", **_period("preAuthPeriod", "pre_auth_period")},
        values={
            "status": "status",
            "use": "use",
            "outcome": "outcome",
            "disposition": "disposition",
            "preAuthRef": "pre_auth_ref",
            "item.itemSequence": "items.item_sequence",
            "item.adjudication.category.coding.code": "items.adjudications.category.codings.code",
            "item.adjudication.amount.value": "items.adjudications.amount.value",
            "item.adjudication.amount.currency": "items.adjudications.amount.currency",
            "item.adjudication.value": "items.adjudications.value",
            "addItem.itemSequence": "add_items.item_sequences",
            "addItem.net.value": "add_items.net.value",
            "total.amount.value": "totals.amount.value",
            "total.amount.currency": "totals.amount.currency",
        },
    ),
    "Coverage": Spec(
        refs={
            "subscriber": "subscriber",
            "beneficiary": "beneficiary",
            "payor": "payors",
            "contract": "contracts",
        },
        ignored_refs=frozenset({"policyHolder"}),
        times=_period("period", "period"),
        values={
            "status": "status",
            "subscriberId": "subscriber_id.value",
            "class.value": "classes.value",
            "class.type.coding.code": "classes.type.codings.code",
            "order": "order",
            "network": "network",
        },
    ),
    "CoverageEligibilityRequest": Spec(
        refs={
            "patient": "patient",
            "provider": "provider",
            "insurer": "insurer",
            "enterer": "enterer",
            "facility": "facility",
            "insurance.coverage": "insurance.coverage",
        },
        times={
            "created": "created",
            "servicedDate": "serviced",
            **_period("servicedPeriod", "serviced_period"),
        },
        values={"status": "status", "purpose": "purposes", "insurance.focal": "insurance.focal"},
    ),
    "CoverageEligibilityResponse": Spec(
        refs={
            "patient": "patient",
            "insurer": "insurer",
            "request": "request",
            "requestor": "requestor",
            "insurance.coverage": "insurance.coverage",
        },
        times={
            "created": "created",
            "servicedDate": "serviced",
            **_period("insurance.benefitPeriod", "insurance.benefit_period"),
        },
        values={
            "status": "status",
            "purpose": "purposes",
            "outcome": "outcome",
            "disposition": "disposition",
            "insurance.inforce": "insurance.inforce",
            "insurance.item.benefit.allowedMoney.value": (
                "insurance.items.benefits.allowed.money.value"
            ),
            "insurance.item.benefit.allowedUnsignedInt": (
                "insurance.items.benefits.allowed.unsigned_int"
            ),
            "insurance.item.benefit.allowedString": "insurance.items.benefits.allowed.string",
            "insurance.item.benefit.usedMoney.value": "insurance.items.benefits.used.money.value",
            "insurance.item.authorizationRequired": "insurance.items.authorization_required",
        },
    ),
    "Encounter": Spec(
        refs={
            "subject": "subject",
            "appointment": "appointments",
            "basedOn": "based_on",
            "location.location": "locations.location",
            "serviceProvider": "service_provider",
            "partOf": "part_of",
        },
        ignored_refs=frozenset(
            {
                "account",
                "diagnosis.condition",
                "episodeOfCare",
                "hospitalization.destination",
                "hospitalization.origin",
                "participant.individual",
                "reasonReference",
            }
        ),
        times={
            **_period("period", "period"),
            **_period("location.period", "locations.period"),
            **_period("statusHistory.period", "status_history.period"),
        },
        values={
            "status": "status",
            "statusHistory.status": "status_history.status",
            "location.status": "locations.status",
            "class.code": "encounter_class.code",
            "class.system": "encounter_class.system",
        },
    ),
    "Invoice": Spec(
        refs={
            "subject": "subject",
            "recipient": "recipient",
            "participant.actor": "participants.actor",
            "issuer": "issuer",
            "account": "account",
        },
        times={"date": "date"},
        values={
            "status": "status",
            "totalNet.value": "total_net.value",
            "totalNet.currency": "total_net.currency",
            "totalGross.value": "total_gross.value",
            "totalGross.currency": "total_gross.currency",
        },
    ),
    "Location": Spec(
        refs={"managingOrganization": "managing_organization", "partOf": "part_of"},
        ignored_refs=frozenset({"endpoint"}),
        values={
            "status": "status",
            "name": "name",
            "mode": "mode",
            "operationalStatus.code": "operational_status.code",
            "type.coding.code": "types.codings.code",
        },
    ),
    "Organization": Spec(
        refs={"partOf": "part_of"},
        ignored_refs=frozenset({"endpoint"}),
        values={"name": "name", "active": "active", "type.coding.code": "types.codings.code"},
    ),
    "Patient": Spec(
        # A patient is a reference and identifiers; nothing else is carried.
        ignored_refs=frozenset(
            {"contact.organization", "generalPractitioner", "link.other", "managingOrganization"}
        ),
        values={"active": "active"},
    ),
    "Practitioner": Spec(
        ignored_identifiers=frozenset({"qualification.identifier"}),
        values={"active": "active", "qualification.code.coding.code": "role_codes.codings.code"},
    ),
    "PractitionerRole": Spec(
        refs={
            "practitioner": "practitioner",
            "organization": "organization",
            "location": "locations",
        },
        ignored_refs=frozenset({"endpoint", "healthcareService"}),
        times=_period("period", "period"),
        values={"active": "active", "code.coding.code": "role_codes.codings.code"},
    ),
    "Schedule": Spec(
        refs={"actor": "actors"},
        times=_period("planningHorizon", "planning_horizon"),
        values={"active": "active"},
    ),
    "ServiceRequest": Spec(
        refs={
            "subject": "subject",
            "encounter": "encounter",
            "requester": "requester",
            "performer": "performers",
            "basedOn": "based_on",
            "replaces": "replaces",
            "insurance": "insurance",
            "supportingInfo": "supporting_info",
        },
        ignored_refs=frozenset(
            {"reasonReference", "relevantHistory", "specimen", "locationReference"}
        ),
        identifiers={"identifier": "identifiers", "requisition": "requisition"},
        times={
            "occurrenceDateTime": "occurrence",
            "authoredOn": "authored_on",
            "occurrenceTiming.event": "occurrence_events",
            **_period("occurrencePeriod", "occurrence_period"),
        },
        values={
            "status": "status",
            "intent": "intent",
            "priority": "priority",
            "code.coding.code": "code.codings.code",
            "code.coding.system": "code.codings.system",
        },
    ),
    "Slot": Spec(
        refs={"schedule": "schedule"},
        times={"start": "start", "end": "end"},
        values={"status": "status", "overbooked": "overbooked"},
    ),
    "SupplyDelivery": Spec(
        refs={
            "basedOn": "based_on",
            "partOf": "part_of",
            "patient": "patient",
            "supplier": "supplier",
            "destination": "destination",
            "receiver": "receivers",
            "suppliedItem.itemReference": "item_ref",
        },
        times={
            "occurrenceDateTime": "occurrence",
            **_period("occurrencePeriod", "occurrence_period"),
        },
        values={
            "status": "status",
            "suppliedItem.quantity.value": "quantity.value",
            "suppliedItem.itemCodeableConcept.coding.code": "item.codings.code",
        },
    ),
    "SupplyRequest": Spec(
        refs={
            "itemReference": "item_ref",
            "requester": "requester",
            "supplier": "suppliers",
            "deliverFrom": "deliver_from",
            "deliverTo": "deliver_to",
        },
        times={
            "occurrenceDateTime": "occurrence",
            "authoredOn": "authored_on",
            **_period("occurrencePeriod", "occurrence_period"),
        },
        values={
            "status": "status",
            "priority": "priority",
            "quantity.value": "quantity.value",
            "itemCodeableConcept.coding.code": "item.codings.code",
        },
    ),
    "Task": Spec(
        refs={
            "focus": "focus",
            "for": "for_",
            "encounter": "encounter",
            "requester": "requester",
            "owner": "owner",
            "basedOn": "based_on",
            "partOf": "part_of",
        },
        ignored_refs=frozenset(
            {"output.valueReference", "relevantHistory", "input.valueReference"}
        ),
        identifiers={"identifier": "identifiers", "groupIdentifier": "group_identifier"},
        times={
            "authoredOn": "authored_on",
            "lastModified": "last_modified",
            **_period("executionPeriod", "execution_period"),
        },
        values={
            "status": "status",
            "intent": "intent",
            "priority": "priority",
            "businessStatus.text": "business_status.text",
            "code.coding.code": "code.codings.code",
            "input.type.coding.code": "input_types.codings.code",
        },
    ),
}

# Raw subtrees this test does not look into: other resources, extensions, narrative, meta.
_SKIP = {"contained", "extension", "modifierExtension", "text", "meta"}


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key not in _SKIP and not key.startswith("_"):
                yield from _walk(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, path)


def raw_get(raw: Any, path: str) -> list[Any]:
    """Values at a dotted path in the raw JSON; lists flattened."""
    nodes = [raw]
    for key in path.split("."):
        nxt: list[Any] = []
        for node in nodes:
            if isinstance(node, dict) and key in node:
                value = node[key]
                nxt.extend(value if isinstance(value, list) else [value])
        nodes = nxt
    return nodes


def canon_get(obj: Any, path: str) -> list[Any]:
    """Values at a dotted attribute path in a canonical record; tuples flattened, None dropped."""
    nodes = [obj]
    for key in path.split("."):
        nxt: list[Any] = []
        for node in nodes:
            value = getattr(node, key)
            if value is None:
                continue
            nxt.extend(value if isinstance(value, tuple) else [value])
        nodes = nxt
    return nodes


_PARTIAL = re.compile(r"\d{4}(-\d{2})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def raw_time(text: str) -> Any:
    if _PARTIAL.fullmatch(text):
        return text
    if _DATE.fullmatch(text):
        return date.fromisoformat(text)
    return datetime.fromisoformat(text)


def _time_key(value: Any) -> tuple[Any, ...]:
    # a datetime keeps its offset: 09:00+10:00 is not 23:00Z for this contract
    if isinstance(value, datetime):
        return ("datetime", value.replace(tzinfo=None), value.utcoffset())
    return (type(value).__name__, value)


def _scalar(value: Any) -> Any:
    if isinstance(value, float | int) and not isinstance(value, bool):
        return Decimal(str(value))
    return value


# The identifier allow-list (careflow.canonical.identifiers), restated from its documentation
# and applied to the raw JSON: an identifier of a person (or of a reference whose target
# cannot be told) is carried only when typed MR or MB in v2-0203; a record's identifiers
# are carried when they have a system; personal document and national numbers never are.
# The same goes for a reference's display: carried only for a known non-person target.
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
PERSON_HOLDERS = {"Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Person"}
PERSON_HOLDERS |= {"Coverage"}  # a coverage's identifiers are member numbers
PERSON_PATHS = {"subject", "patient", "beneficiary", "subscriber", "for"}
NEVER_TYPES = {"SS", "DL", "PPN", "NI", "NH", "CZ", "TAX", "BCT", "SB", "MI"}
NEVER_SYSTEMS = {"http://hl7.org/fhir/sid/us-ssn", "urn:oid:2.16.840.1.113883.2.4.6.3"}


def _type_codes(ident: dict[str, Any]) -> set[tuple[Any, Any]]:
    return {(c.get("system"), c.get("code")) for c in ident.get("type", {}).get("coding", [])}


def carried(ident: dict[str, Any], *, person: bool) -> bool:
    codes = _type_codes(ident)
    if "value" not in ident or ident.get("system") in NEVER_SYSTEMS:
        return False
    if {code for _, code in codes} & NEVER_TYPES:
        return False
    if person:
        return bool(codes & {(V2_0203, "MR"), (V2_0203, "MB")})
    return "system" in ident


def _ref_target(raw: dict[str, Any], ref: dict[str, Any]) -> str | None:
    if ref.get("type"):
        return str(ref["type"])
    target = str(ref.get("reference") or "")
    if target.startswith("#"):
        return next(
            (c["resourceType"] for c in raw.get("contained", []) if f"#{c.get('id')}" == target),
            None,
        )
    parts = target.split("/_history", maxsplit=1)[0].split("/")
    return parts[-2] if len(parts) >= 2 else None


def carried_ids(raw: dict[str, Any], path: str, *, of_ref: str | None = None) -> list[Any]:
    """The identifiers at ``path`` that the allow-list lets through: the resource's own (or
    its parts'), or with ``of_ref`` the logical identifiers of the references there."""
    if of_ref is None:
        person = raw["resourceType"] in PERSON_HOLDERS
        return [i for i in raw_get(raw, path) if carried(i, person=person)]
    out = []
    for ref in raw_get(raw, of_ref):
        target = _ref_target(raw, ref)
        person = of_ref in PERSON_PATHS or target is None or target in PERSON_HOLDERS
        if "identifier" in ref and carried(ref["identifier"], person=person):
            out.append(ref["identifier"])
    return out


def _ids(values: list[Any], *, canonical: bool) -> list[tuple[Any, Any]]:
    if canonical:
        return [(v.system, v.value) for v in values]
    return [(v.get("system"), v.get("value")) for v in values]


def _mapped(path: Path) -> tuple[dict[str, Any], BaseModel, Spec]:
    raw = _load(path)
    model = parse(raw)
    assert type(model).__module__.startswith("fhir.resources.R4B.")
    return raw, to_canonical(model), SPEC[raw["resourceType"]]


@pytest.fixture(params=MAPPED_FILES, ids=lambda p: p.name)
def mapped(request: pytest.FixtureRequest) -> tuple[dict[str, Any], BaseModel, Spec]:
    return _mapped(request.param)


def test_every_mapped_type_has_a_spec() -> None:
    assert set(SPEC) == set(SUPPORTED_TYPES)
    assert {TYPE_OF[p.name] for p in MAPPED_FILES} == set(SUPPORTED_TYPES)


def test_references_intact(mapped: tuple[dict[str, Any], BaseModel, Spec]) -> None:
    raw, canon, spec = mapped
    for raw_path, canon_path in spec.refs.items():
        raw_refs = raw_get(raw, raw_path)
        canon_refs = canon_get(canon, canon_path)
        assert [r.get("reference") for r in raw_refs] == [c.reference for c in canon_refs], raw_path
        for r, c in zip(raw_refs, canon_refs, strict=True):
            assert c.type == r.get("type")
            target = _ref_target(raw, r)
            if raw_path in PERSON_PATHS or target is None or target in PERSON_HOLDERS:
                assert c.display is None, f"{raw_path}: a person's display must not be carried"
            else:
                assert c.display == r.get("display"), raw_path
    # nothing silently dropped: every reference path is carried or deliberately not
    seen = {p for p, node in _walk(raw) if "reference" in node}
    unknown = seen - set(spec.refs) - spec.ignored_refs
    assert not unknown, f"references neither mapped nor listed as ignored: {sorted(unknown)}"


def test_identifiers_intact(mapped: tuple[dict[str, Any], BaseModel, Spec]) -> None:
    raw, canon, spec = mapped
    paths = dict(spec.identifiers)
    for raw_path, canon_path in spec.identifiers.items():
        expected = _ids(carried_ids(raw, raw_path), canonical=False)
        assert expected == _ids(canon_get(canon, canon_path), canonical=True), raw_path
    for ref_raw, ref_canon in spec.refs.items():
        paths[f"{ref_raw}.identifier"] = f"{ref_canon}.identifier"
        expected = _ids(carried_ids(raw, "", of_ref=ref_raw), canonical=False)
        carried_refs = canon_get(canon, f"{ref_canon}.identifier")
        assert expected == _ids(carried_refs, canonical=True), f"{ref_raw}.identifier"
    # the record's own identifiers keep use and type too
    own = carried_ids(raw, "identifier")
    for r, c in zip(own, canon_get(canon, "identifiers"), strict=True):
        assert c.use == r.get("use")
        type_codes = [x.get("code") for x in r.get("type", {}).get("coding", [])]
        assert type_codes == ([x.code for x in c.type.codings] if c.type else [])
    seen = {p for p, _ in _walk(raw) if p.split(".")[-1] == "identifier"}
    ignored = spec.ignored_identifiers | {f"{p}.identifier" for p in spec.ignored_refs}
    unknown = seen - set(paths) - ignored
    assert not unknown, f"identifiers neither mapped nor listed as ignored: {sorted(unknown)}"


def test_times_and_periods_intact(mapped: tuple[dict[str, Any], BaseModel, Spec]) -> None:
    raw, canon, spec = mapped
    for raw_path, canon_path in spec.times.items():
        expected = [_time_key(raw_time(v)) for v in raw_get(raw, raw_path)]
        assert expected == [_time_key(v) for v in canon_get(canon, canon_path)], raw_path


def test_status_and_values_intact(mapped: tuple[dict[str, Any], BaseModel, Spec]) -> None:
    raw, canon, spec = mapped
    for raw_path, canon_path in spec.values.items():
        expected = [_scalar(v) for v in raw_get(raw, raw_path)]
        assert expected == [_scalar(v) for v in canon_get(canon, canon_path)], raw_path
    assert getattr(canon, "reference", None) == (
        f"{raw['resourceType']}/{raw['id']}" if "id" in raw else None
    )


def test_status_fields_all_carried(mapped: tuple[dict[str, Any], BaseModel, Spec]) -> None:
    raw, _, spec = mapped
    for path, node in _walk(raw):
        if "status" in node:
            status_path = f"{path}.status" if path else "status"
            assert status_path in spec.values, f"status field {status_path} not compared"


def test_unmapped_types_are_listed() -> None:
    unmapped = {t for t in TYPE_OF.values() if t not in SUPPORTED_TYPES}
    assert unmapped == EXPECTED_UNMAPPED, (
        f"fixture types careflow does not map changed: "
        f"new={sorted(unmapped - EXPECTED_UNMAPPED)} gone={sorted(EXPECTED_UNMAPPED - unmapped)}"
    )
    for kind in sorted(unmapped):
        sample = next(p for p in ALL_FILES if TYPE_OF[p.name] == kind)
        with pytest.raises(UnsupportedResource, match=kind):
            to_canonical(_load(sample))


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_every_fixture_validates_with_r4b(path: Path) -> None:
    raw = _load(path)
    kind = raw["resourceType"]
    cls = getattr(importlib.import_module(f"fhir.resources.R4B.{kind.lower()}"), kind)
    cls.model_validate(raw)


@pytest.mark.parametrize(
    "name", ["appointment-example.json", "coverage-example.json", "claimresponse-example.json"]
)
def test_default_r5_models_reject_r4_documents(name: str) -> None:
    """Why R4B: the package's default models are R5 and refuse these R4 documents."""
    raw = _load(FIXTURES / name)
    kind = raw["resourceType"]
    r5 = getattr(importlib.import_module(f"fhir.resources.{kind.lower()}"), kind)
    with pytest.raises(ValidationError):
        r5.model_validate(raw)
    parse(raw)  # while R4B reads them


def test_mapping_an_appointment_imports_only_what_it_needs() -> None:
    code = (
        "import json, sys\n"
        "from careflow.adapters.fhir import to_canonical\n"
        f"raw = json.loads(open({str(FIXTURES / 'appointment-example.json')!r}).read())\n"
        "to_canonical(raw)\n"
        "assert 'fhir.resources.R4B.appointment' in sys.modules\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('fhir.resources.R4B.'))\n"
        "assert 'fhir.resources.R4B.claim' not in sys.modules, loaded\n"
        "assert 'fhir.resources.R4B.claimresponse' not in sys.modules, loaded\n"
        "assert not any(m.startswith('fhir.resources.') and '.R4B' not in m and m.count('.') == 2"
        " and m != 'fhir.resources.fhirtypes' for m in sys.modules), 'R5 models imported'\n"
        "print(len(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) < 40, "mapping one Appointment imported too much of R4B"
