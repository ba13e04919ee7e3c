"""The PAS resubmission of the documents the utilization review nurse attached: by their EHR
ids when the task carried them, by the requested types otherwise (older tasks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.documentreference import DocumentReference

from careflow.adapters import pas
from careflow.adapters.payer_pas import request_bundle
from careflow.canonical.cases import Priority
from careflow.canonical.datatypes import Coding
from careflow.canonical.payer import PriorAuthRequest

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def _request(**attached) -> PriorAuthRequest:
    return PriorAuthRequest(
        case_id="appt-1001",
        patient_ref="Patient/pat-1001",
        coverage_ref="Coverage/cov-1001",
        payer_id="payer-lakeshore",
        facility_id="fac-north",
        procedure_codes=(Coding(system="http://www.ama-assn.org/go/cpt", code="27447"),),
        service_date=NOW + timedelta(days=10),
        priority=Priority.ROUTINE,
        **attached,
    )


def _resources(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_the_resubmission_references_the_attached_documents_by_their_ids():
    bundle = request_bundle(
        _request(
            attachments=("11504-8", "18748-4"),
            documents=("DocumentReference/pat-1001-opnote", "DocumentReference/pat-1001-ct"),
        ),
        now=NOW,
        trace="appt-1001:27447",
    )
    claim = pas.validate_request_bundle(bundle)  # every reference resolves in the Bundle
    assert pas.attachments(claim) == (
        "DocumentReference/pat-1001-opnote",
        "DocumentReference/pat-1001-ct",
    )
    docs = _resources(bundle, "DocumentReference")
    assert [d["id"] for d in docs] == ["pat-1001-opnote", "pat-1001-ct"]
    assert all(d["subject"] == {"reference": "Patient/pat-1001"} for d in docs)
    # the EHR holds the content and its type: the Bundle carries the reference only
    assert all("type" not in d and "data" not in d["content"][0]["attachment"] for d in docs)
    # and it is R4: the Bundle, the Claim and each DocumentReference read with R4B
    Bundle.model_validate(bundle)
    Claim.model_validate(claim)
    for doc in docs:
        DocumentReference.model_validate(doc)


def test_a_document_id_without_its_type_is_a_document_reference_and_repeats_are_one():
    bundle = request_bundle(
        _request(attachments=("11504-8",), documents=("doc-7", "DocumentReference/doc-7")),
        now=NOW,
        trace="appt-1001:27447",
    )
    claim = pas.validate_request_bundle(bundle)
    assert pas.attachments(claim) == ("DocumentReference/doc-7",)
    assert [s["sequence"] for s in claim["supportingInfo"]] == [1]
    Bundle.model_validate(bundle)


def test_without_document_ids_the_requested_types_travel_as_before():
    bundle = request_bundle(_request(attachments=("11504-8",)), now=NOW, trace="appt-1001:27447")
    claim = pas.validate_request_bundle(bundle)
    assert pas.attachments(claim) == ("DocumentReference/appt-1001-11504-8",)
    [doc] = _resources(bundle, "DocumentReference")
    assert doc["type"]["coding"] == [{"system": pas.LOINC, "code": "11504-8"}]
    Bundle.model_validate(bundle)
    DocumentReference.model_validate(doc)


def test_a_first_submission_carries_no_documents():
    bundle = request_bundle(_request(), now=NOW, trace="appt-1001:27447")
    claim = pas.validate_request_bundle(bundle)
    assert "supportingInfo" not in claim and not _resources(bundle, "DocumentReference")
    Bundle.model_validate(bundle)
