"""The EHR port over FHIR R4 answers exactly what the in-process sandbox answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from careflow.adapters.ehr_fhir import FhirEhrAdapter
from careflow.adapters.fhir_rest import FhirRestClient
from careflow.adapters.http import HttpClient, NotFound
from careflow.adapters.sandbox import Sandbox
from careflow.canonical.cases import ParticipantStatus
from careflow.localcloud.sandboxes import ehr_seed
from careflow.localcloud.sandboxes.fhir_server import FhirSandboxServer, FhirStore

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def world():
    sandbox = Sandbox.seeded(NOW)
    store = FhirStore()
    ehr_seed.seed(store, sandbox.cases, sandbox.participants)
    server = FhirSandboxServer(store).start()
    adapter = FhirEhrAdapter(FhirRestClient(HttpClient("ehr", server.base_url)))
    yield sandbox, server, adapter
    server.stop()


@pytest.mark.parametrize(
    "appointment_id", ["appt-1001", "appt-1002", "appt-1003", "appt-1004", "appt-1005"]
)
def test_every_demo_case_reads_back_as_the_sandbox_holds_it(world, appointment_id):
    sandbox, _, adapter = world
    assert adapter.get_surgical_case(appointment_id) == sandbox.get_surgical_case(appointment_id)
    assert list(adapter.appointment_participants(appointment_id)) == list(
        sandbox.appointment_participants(appointment_id)
    )


def test_a_declined_participant_is_read_as_declined(world):
    _, server, adapter = world
    appointment = server.store.get("Appointment", "appt-1001")
    appointment["participant"][1]["status"] = "declined"
    server.store.put(appointment)
    surgeon = next(p for p in adapter.appointment_participants("appt-1001") if p.role == "surgeon")
    assert surgeon.status is ParticipantStatus.DECLINED


def test_an_unknown_appointment_is_not_found(world):
    _, _, adapter = world
    with pytest.raises(NotFound):
        adapter.get_surgical_case("appt-0000")


@pytest.fixture
def encounters():
    """The EHR server making encounters on demand from the in-process sandbox, as the local
    cloud runs it."""
    sandbox = Sandbox.seeded(NOW)
    server = FhirSandboxServer(
        FhirStore(), on_search_miss=ehr_seed.encounters_on_demand(sandbox.encounter_record)
    ).start()
    adapter = FhirEhrAdapter(FhirRestClient(HttpClient("ehr", server.base_url)))
    yield sandbox, server, adapter
    server.stop()


def test_an_encounter_reads_back_as_the_sandbox_holds_it(encounters):
    sandbox, _, adapter = encounters
    sandbox.set_self_pay("V2002")
    sandbox.set_unknown_encounter("V2003")
    for visit in ("V2001", "V2002", "V2003", "4471|2"):
        assert adapter.encounter_coverage(visit) == sandbox.encounter_coverage(visit)
    assert adapter.encounter_coverage("V2001").coverage_ref == "Coverage/cov-enc-V2001"
    assert adapter.encounter_coverage("V2002").coverage_ref is None
    assert adapter.encounter_coverage("V2003") is None


def test_the_served_encounter_carries_the_visit_number_and_the_patient(encounters):
    _, server, adapter = encounters
    adapter.encounter_coverage("V2004")
    encounter = server.store.get("Encounter", "enc-V2004")
    assert encounter is not None
    assert encounter["identifier"][0]["value"] == "V2004"
    assert encounter["subject"] == {"reference": "Patient/pat-enc-V2004"}
    assert server.store.get("Coverage", "cov-enc-V2004")["payor"] == [
        {"reference": "Organization/payer-summit"}
    ]
