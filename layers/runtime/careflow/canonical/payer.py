"""What careflow asks a payer and what it answers: prior authorization (Da Vinci PAS)
and eligibility (CoverageEligibilityRequest/Response), as the payer port exchanges them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from careflow.canonical.cases import Priority
from careflow.canonical.datatypes import Coding, Model


class AuthDecision(StrEnum):
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    PENDED = "PENDED"
    MODIFIED = "MODIFIED"
    PARTIAL = "PARTIAL"
    NOT_REQUIRED = "NOT_REQUIRED"
    # A review action careflow does not know (or none at all): a person reads the response.
    UNKNOWN = "UNKNOWN"


class EncounterCoverage(Model):
    """Who an inpatient encounter is for and what pays for it, as the EHR records them:
    the references a post-acute authorization or a billing check needs, no more.
    ``coverage_ref`` and ``payer_id`` are None when the EHR holds no active coverage for
    the patient (self-pay)."""

    encounter_id: str
    patient_ref: str  # the EHR's reference, e.g. ``Patient/123``
    coverage_ref: str | None = None  # e.g. ``Coverage/9876B1``
    payer_id: str | None = None  # the payer Organization's id


class ClinicalDocument(Model):
    """One of a patient's documents, as a prior authorization's attachments are chosen from:
    its id, its coded type (if the EHR coded it), and its human-readable title and
    description. The text goes to the attachments model only (scrubbed); never to a log,
    an audit entry or a task."""

    document_id: str  # the EHR's reference, e.g. ``DocumentReference/doc-1``
    resource_type: str = "DocumentReference"
    type_codings: tuple[Coding, ...] = ()
    text: str = ""


class PriorAuthRequest(Model):
    case_id: str
    patient_ref: str
    coverage_ref: str | None
    payer_id: str | None
    facility_id: str
    procedure_codes: tuple[Coding, ...]
    service_date: datetime
    priority: Priority
    # Document types (LOINC) attached to a resubmission that answers a request for more
    # information (PAS additional documentation); the documents stay in the EHR and travel
    # as DocumentReferences.
    attachments: tuple[str, ...] = ()
    # The patient's documents the utilization review nurse attached (``DocumentReference/<id>``
    # references, ids only): when given, the resubmission references these documents; when
    # empty (an older task, or no documents chosen) it references the requested types.
    documents: tuple[str, ...] = ()


class PriorAuthItem(Model):
    sequence: int
    code: str
    decision: AuthDecision
    review_action: str | None = None  # X12 306 code: A1, A2, A3, A4, A6 (others: UNKNOWN)


class PriorAuthResponse(Model):
    decision: AuthDecision
    preauth_ref: str | None = None
    items: tuple[PriorAuthItem, ...] = ()
    reason: str | None = None
    # Document types the payer asks for before it decides (pended for more information).
    documents_requested: tuple[str, ...] = ()
    # Where the response breaks a PAS rule, one sentence each (element paths, no values).
    # Not empty: careflow does not act on the response; a person reviews it.
    conformance: tuple[str, ...] = ()

    @property
    def needs_review(self) -> bool:
        return self.decision is AuthDecision.UNKNOWN or bool(self.conformance)


class EligibilityRequest(Model):
    case_id: str
    patient_ref: str
    coverage_ref: str | None
    payer_id: str | None
    service_date: datetime
    procedure_codes: tuple[Coding, ...]


class EligibilityResponse(Model):
    active: bool
    covered: bool
    auth_required: bool | None = None
    reason: str | None = None
