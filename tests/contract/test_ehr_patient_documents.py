"""Contract: the EHR adapter lists a patient's documents (``EhrPort.patient_documents``,
``DocumentReference?patient=&status=current``) from HL7's own R4 example, unedited, and
from the local cloud's FHIR sandbox server seeded with the sandbox chart."""

from __future__ import annotations

import random

import pytest

from careflow.adapters.ehr_fhir import FhirEhrAdapter
from careflow.adapters.fhir_rest import FhirRestClient
from careflow.adapters.http import HttpClient, RetryPolicy
from careflow.adapters.sandbox import default_documents
from careflow.localcloud.sandboxes import ehr_seed
from careflow.localcloud.sandboxes.fhir_server import FhirSandboxServer, FhirStore
from careflow.workflows.prior_authorization import model as m
from tests import fixtures


@pytest.fixture(scope="module")
def server():
    store = FhirStore()
    store.load([fixtures.FHIR_R4 / "documentreference-example.json"])
    srv = FhirSandboxServer(
        store, page_size=2, on_search_miss=ehr_seed.documents_on_demand(default_documents)
    ).start()
    yield srv
    srv.stop()


def adapter(base_url: str) -> FhirEhrAdapter:
    http = HttpClient(
        "ehr",
        base_url,
        sleep=lambda _: None,
        rng=random.Random(3),
        policy=RetryPolicy(timeout=2.0, max_attempts=2),
    )
    return FhirEhrAdapter(FhirRestClient(http))


def test_hl7s_document_reference_is_read_with_its_type_and_text_never_its_content(server):
    (doc,) = adapter(server.base_url).patient_documents("Patient/xcda")
    assert doc.document_id == "DocumentReference/example"
    assert [(c.system, c.code) for c in doc.type_codings] == [("http://loinc.org", "34108-1")]
    assert "Outpatient Note" in doc.text and "History and Physical" in doc.text
    assert m.coded_class([c.model_dump() for c in doc.type_codings]) == m.OTHER


def test_the_sandbox_chart_comes_back_coded_and_uncoded_over_several_pages(server):
    docs = adapter(server.base_url).patient_documents("Patient/pt-pa-9")
    assert sorted(d.document_id for d in docs) == sorted(
        d.document_id for d in default_documents("Patient/pt-pa-9")
    )
    coded = {d.document_id for d in docs if d.type_codings}
    assert coded == {"DocumentReference/pt-pa-9-hp", "DocumentReference/pt-pa-9-progress"}
    assert all(d.text for d in docs)
