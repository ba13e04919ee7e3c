"""The payer port over Da Vinci PAS: ``Claim/$submit``, ``Claim/$inquire``, and
CoverageEligibilityRequest, with the decision read from the items' reviewAction codes.
The CoverageEligibilityResponse is read with ``fhir.resources.R4B`` into its canonical
record (:mod:`careflow.adapters.fhir.mappers`) before anything is concluded from it.

The request Bundle carries the Claim first and every resource it references. The patient
is a reference: demographics stay in the EHR (a payer that requires them in the Bundle
needs the EHR adapter to fetch the Patient; not done yet).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from careflow import clock
from careflow.adapters import pas
from careflow.adapters.fhir import mappers
from careflow.adapters.http import HttpClient
from careflow.canonical.cases import Priority
from careflow.canonical.identifiers import DEFAULT_POLICY, IdentifierPolicy
from careflow.canonical.payer import (
    EligibilityRequest,
    EligibilityResponse,
    PriorAuthRequest,
    PriorAuthResponse,
)
from careflow.ports import ConnectorError

TRACE_SYSTEM = "urn:careflow:pas:trace"


def _id(reference: str | None, fallback: str) -> str:
    return (reference or fallback).rsplit("/", 1)[-1]


def _attached(request: PriorAuthRequest) -> list[tuple[str, str | None]]:
    """The resubmission's documents as (DocumentReference id, LOINC type or None): the
    patient's documents the nurse attached, by their EHR ids; else (an older task, or none
    chosen) one per requested type, named after the case."""
    if request.documents:
        ids = (_id(ref, ref) for ref in request.documents)
        return [(doc_id, None) for doc_id in dict.fromkeys(ids)]
    return [(f"{request.case_id}-{code}", code) for code in request.attachments]


def _document_reference(doc_id: str, code: str | None, patient_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": doc_id,
        "status": "current",
        "subject": {"reference": f"Patient/{patient_id}"},
        # the content stays in the EHR: the payer fetches it from there
        "content": [{"attachment": {"contentType": "application/pdf"}}],
    }
    if code is not None:
        doc["type"] = {"coding": [{"system": pas.LOINC, "code": code}]}
    return doc


def request_bundle(request: PriorAuthRequest, *, now: datetime, trace: str) -> dict[str, Any]:
    patient_id = _id(request.patient_ref, "unknown")
    coverage_id = _id(request.coverage_ref, f"coverage-{patient_id}")
    insurer_id = request.payer_id or "payer"
    provider_id = request.facility_id
    claim: dict[str, Any] = {
        "resourceType": "Claim",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, trace)),
        "identifier": [{"system": TRACE_SYSTEM, "value": trace}],
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "institutional",
                }
            ]
        },
        "use": "preauthorization",
        "patient": {"reference": f"Patient/{patient_id}"},
        "created": now.isoformat(),
        "insurer": {"reference": f"Organization/{insurer_id}"},
        "provider": {"reference": f"Organization/{provider_id}"},
        "priority": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/processpriority",
                    "code": "stat" if request.priority is Priority.EXPEDITED else "normal",
                }
            ]
        },
        "insurance": [
            {"sequence": 1, "focal": True, "coverage": {"reference": f"Coverage/{coverage_id}"}}
        ],
        "item": [
            {
                "sequence": i + 1,
                "productOrService": {
                    "coding": [c.model_dump(include={"system", "code"}, exclude_none=True)]
                },
                "servicedDate": request.service_date.date().isoformat(),
            }
            for i, c in enumerate(request.procedure_codes)
        ],
    }
    attached = _attached(request)
    if attached:
        # The documents the payer asked for, as supporting information of the resubmission.
        claim["supportingInfo"] = [
            {
                "sequence": i + 1,
                "category": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/claiminformationcategory",
                            "code": "attachment",
                        },
                        {"system": pas.ATTACHMENT_CATEGORY, "code": "additionalInformation"},
                    ]
                },
                "valueReference": {"reference": f"DocumentReference/{doc_id}"},
            }
            for i, (doc_id, _) in enumerate(attached)
        ]
    others: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": patient_id},
        {
            "resourceType": "Coverage",
            "id": coverage_id,
            "status": "active",
            "beneficiary": {"reference": f"Patient/{patient_id}"},
            "payor": [{"reference": f"Organization/{insurer_id}"}],
        },
        {"resourceType": "Organization", "id": insurer_id},
        {"resourceType": "Organization", "id": provider_id},
        *(_document_reference(doc_id, code, patient_id) for doc_id, code in attached),
    ]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "identifier": {"system": TRACE_SYSTEM, "value": trace},
        "timestamp": now.isoformat(),
        "entry": [
            {"fullUrl": f"urn:careflow:{r['resourceType']}/{r['id']}", "resource": r}
            for r in (claim, *others)
        ],
    }


class PasPayerAdapter:
    def __init__(self, http: HttpClient, *, identifiers: IdentifierPolicy = DEFAULT_POLICY):
        self.http = http
        self.identifiers = identifiers

    def _decision(self, bundle: Any) -> PriorAuthResponse:
        try:
            return pas.read_response_bundle(bundle)
        except pas.PasError as exc:
            raise ConnectorError(f"{self.http.system}: {exc.reason}") from None

    def submit_prior_auth(self, request: PriorAuthRequest) -> PriorAuthResponse:
        # The trace number is stable per case and procedure set, so a retried submission
        # is recognised by the payer as the same request.
        trace = f"{request.case_id}:" + "+".join(c.code or "" for c in request.procedure_codes)
        bundle = request_bundle(request, now=clock.now(), trace=trace)
        pas.validate_request_bundle(bundle)  # never send what a payer must refuse
        return self._decision(self.http.post_json("Claim/$submit", bundle))

    def inquire(self, preauth_ref: str) -> PriorAuthResponse:
        claim = {
            "resourceType": "Claim",
            "id": str(uuid.uuid4()),
            "status": "active",
            "use": "preauthorization",
            "identifier": [{"system": TRACE_SYSTEM, "value": preauth_ref}],
        }
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:{claim['id']}", "resource": claim}],
        }
        return self._decision(self.http.post_json("Claim/$inquire", bundle))

    def claim_response(self, reference: str) -> PriorAuthResponse:
        """Fetches the focus of an id-only notification: a URL, a ``ClaimResponse/<id>``
        reference, or a ``urn:uuid:<id>`` whose uuid is the ClaimResponse's id."""
        if reference.startswith("urn:uuid:"):
            reference = f"ClaimResponse/{reference.removeprefix('urn:uuid:')}"
        body = self.http.get_json(reference)
        try:
            return pas.read_claim_response(body)
        except pas.PasError as exc:
            raise ConnectorError(f"{self.http.system}: {exc.reason}") from None

    def decisions_from_notification(self, bundle: Any) -> list[PriorAuthResponse]:
        """The decisions a Subscription notification announces (fetching the focus of an
        id-only one); pends still pending are left out."""
        try:
            note = pas.read_notification(bundle)
        except pas.PasError as exc:
            raise ConnectorError(f"{self.http.system} notification: {exc.reason}") from None
        decisions = list(note.decisions) or [self.claim_response(f) for f in note.focus]
        return [d for d in decisions if d.decision.value != "PENDED"]

    def check_eligibility(self, request: EligibilityRequest) -> EligibilityResponse:
        if request.coverage_ref is None:
            return EligibilityResponse(active=False, covered=False, reason="no coverage on file")
        body = self.http.post_json(
            "CoverageEligibilityRequest",
            {
                "resourceType": "CoverageEligibilityRequest",
                "status": "active",
                "purpose": ["validation", "benefits"],
                "patient": {"reference": request.patient_ref},
                "created": clock.now().isoformat(),
                "insurer": {"reference": f"Organization/{request.payer_id or 'payer'}"},
                "insurance": [{"focal": True, "coverage": {"reference": request.coverage_ref}}],
            },
        )
        if not isinstance(body, dict) or body.get("resourceType") != "CoverageEligibilityResponse":
            raise ConnectorError(f"{self.http.system}: expected a CoverageEligibilityResponse")
        try:
            response = mappers.coverage_eligibility_response(body, self.identifiers)
        except mappers.FhirMappingError as exc:  # names the path, never a value
            raise ConnectorError(f"{self.http.system}: {exc}") from None
        active = any(i.inforce for i in response.insurance)
        required = any(item.authorization_required for i in response.insurance for item in i.items)
        return EligibilityResponse(
            active=active,
            covered=active,
            auth_required=required,
            reason=None if active else "coverage is not in force",
        )
