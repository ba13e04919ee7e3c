"""Every HL7 R4 example of a type careflow reads, served by the EHR sandbox and read back
over HTTP through the FHIR REST client into the canonical model, arrives intact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from careflow.adapters.fhir.mappers import SUPPORTED_TYPES, to_canonical
from careflow.adapters.fhir_rest import FhirRestClient
from careflow.adapters.http import HttpClient
from careflow.localcloud.sandboxes.fhir_server import FhirSandboxServer, FhirStore
from tests import fixtures

FIXTURES = fixtures.FHIR_R4


def mapped_fixtures() -> list[Path]:
    assert FIXTURES.is_dir(), f"{FIXTURES} is missing: copied into tests/fixtures"
    return [
        p
        for p in sorted(FIXTURES.glob("*.json"))
        if json.loads(p.read_text()).get("resourceType") in SUPPORTED_TYPES
    ]


@pytest.fixture(scope="module")
def ehr():
    store = FhirStore()
    store.load(mapped_fixtures())
    server = FhirSandboxServer(store).start()
    yield FhirRestClient(HttpClient("ehr", server.base_url))
    server.stop()


@pytest.mark.parametrize("path", mapped_fixtures(), ids=lambda p: p.stem)
def test_read_over_http_into_the_canonical_model_as_from_the_file(ehr, path):
    written = json.loads(path.read_text())
    read = ehr.read(written["resourceType"], written["id"])
    assert to_canonical(read) == to_canonical(written)


def test_the_folder_holds_many_types_careflow_reads():
    types = {json.loads(p.read_text())["resourceType"] for p in mapped_fixtures()}
    assert {
        "Appointment",
        "Patient",
        "Coverage",
        "Encounter",
        "ServiceRequest",
        "Claim",
        "ClaimResponse",
        "Task",
        "Location",
        "Practitioner",
    } <= types
