"""Contract: the EHR adapter finds an inpatient encounter's patient and primary coverage
(``EhrPort.encounter_coverage``) in HL7's own R4 examples, read as their authors meant.

Two searches: ``Encounter?identifier=<visit number>``, then
``Coverage?beneficiary=<the Encounter's subject>&status=active``. The fixtures are the
unedited files in ``tests/fixtures/fhir-r4``; each test wraps them in the searchset Bundle
the EHR would answer. No Encounter example is for a patient with a Coverage example
(Patient/4 and Patient/5 have coverages; the encounters are for Patient/example, f001,
f201, xcda), so the tests that need one add an Encounter of their own, written here and
named as such, for Patient/5 of the Coverage examples.

Self-pay: ``coverage-example-selfpay.json`` is an active Coverage paid by the patient
(``payor`` is ``Patient/5``, its type from the coverage-selfpay code system). careflow
reads a self-pay agreement as no coverage: ``coverage_ref`` and ``payer_id`` are None.
"""

from __future__ import annotations

import copy
import json
import random
import socket
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from careflow.adapters.ehr_fhir import FhirEhrAdapter
from careflow.adapters.fhir_rest import FhirRestClient
from careflow.adapters.http import HttpClient, RetryPolicy
from careflow.canonical.payer import EncounterCoverage
from careflow.localcloud.sandboxes.fhir_server import FhirSandboxServer, FhirStore
from careflow.ports import ConnectorError, ConnectorUnavailable
from tests import fixtures

FIXTURES = fixtures.FHIR_R4
BASE = "http://ehr.test/fhir"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


ENCOUNTER = fixture("encounter-example-f001-heart.json")  # visit v1451, Patient/f001
COVERAGE = fixture("coverage-example.json")  # Patient/4, payor Organization/2, no order
COVERAGE_2 = fixture("coverage-example-2.json")  # Patient/5, payor Organization/2, order 2
SELF_PAY = fixture("coverage-example-selfpay.json")  # Patient/5, payor Patient/5
HOME = fixture("encounter-example-home.json")  # Patient/example, no identifier
INPATIENT = fixture("encounter-example.json")  # Patient/example, no identifier

# This test's own Encounter (not a fixture): an inpatient stay of the Coverage examples'
# Patient/5, so that their coverages are this encounter's.
OWN_ENCOUNTER = {
    "resourceType": "Encounter",
    "id": "test-inpatient-5",
    "identifier": [{"system": "urn:test:visit", "value": "V5005"}],
    "status": "in-progress",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
    "subject": {"reference": "Patient/5"},
}


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {
                "fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


class Ehr:
    """An EHR answering the two searches with the given resources; records the queries."""

    def __init__(
        self, encounters: list[dict[str, Any]], coverages: list[dict[str, Any]] = ()
    ) -> None:
        self.answers = {"Encounter": searchset(*encounters), "Coverage": searchset(*coverages)}
        self.queries: list[tuple[str, dict[str, list[str]]]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        rtype = request.url.path.rsplit("/", 1)[-1]
        self.queries.append((rtype, parse_qs(request.url.query.decode())))
        return httpx.Response(200, json=self.answers[rtype])

    def adapter(self) -> FhirEhrAdapter:
        http = HttpClient(
            "ehr", BASE, transport=httpx.MockTransport(self.handle), sleep=lambda _: None
        )
        return FhirEhrAdapter(FhirRestClient(http))


def test_found_the_primary_coverage_is_the_lowest_order_and_its_payer_the_organization():
    ehr = Ehr([OWN_ENCOUNTER], [SELF_PAY, COVERAGE_2])
    found = ehr.adapter().encounter_coverage("V5005")
    assert found == EncounterCoverage(
        encounter_id="V5005",
        patient_ref="Patient/5",
        coverage_ref="Coverage/7546D",
        payer_id="2",
    )
    assert ehr.queries == [
        ("Encounter", {"identifier": ["V5005"]}),
        ("Coverage", {"beneficiary": ["Patient/5"], "status": ["active"]}),
    ]


def test_a_coverage_with_an_order_comes_before_one_without():
    # coverage-example-ehic: Patient/5 too, no order, its payor a logical reference only
    ehic = fixture("coverage-example-ehic.json")
    found = Ehr([OWN_ENCOUNTER], [ehic, COVERAGE_2]).adapter().encounter_coverage("V5005")
    assert found is not None and found.coverage_ref == "Coverage/7546D"


def test_without_an_order_the_first_coverage_counts_and_a_logical_payor_gives_no_payer_id():
    ehic = fixture("coverage-example-ehic.json")
    found = Ehr([OWN_ENCOUNTER], [ehic]).adapter().encounter_coverage("V5005")
    assert found == EncounterCoverage(
        encounter_id="V5005", patient_ref="Patient/5", coverage_ref="Coverage/7547E"
    )


def test_a_self_pay_coverage_is_no_coverage():
    found = Ehr([OWN_ENCOUNTER], [SELF_PAY]).adapter().encounter_coverage("V5005")
    assert found == EncounterCoverage(encounter_id="V5005", patient_ref="Patient/5")
    assert found.coverage_ref is None and found.payer_id is None


def test_an_encounter_whose_patient_has_no_active_coverage_is_self_pay():
    ehr = Ehr([ENCOUNTER], [])
    found = ehr.adapter().encounter_coverage("v1451")
    assert found == EncounterCoverage(encounter_id="v1451", patient_ref="Patient/f001")
    assert ehr.queries[1] == (
        "Coverage",
        {"beneficiary": ["Patient/f001"], "status": ["active"]},
    )


def test_no_encounter_is_none_and_coverage_is_not_searched():
    ehr = Ehr([], [COVERAGE])
    assert ehr.adapter().encounter_coverage("v0000") is None
    assert [q[0] for q in ehr.queries] == ["Encounter"]


def test_two_encounters_for_one_visit_number_is_an_error_naming_the_count_only():
    ehr = Ehr([ENCOUNTER, fixture("encounter-example-f002-lung.json")], [])
    with pytest.raises(ConnectorError) as caught:
        ehr.adapter().encounter_coverage("v1451")
    message = str(caught.value)
    assert "2 Encounters" in message
    for value in ("van de Heuvel", "Patient/f001", "v3251", "f002"):
        assert value not in message


def test_the_same_encounter_on_two_pages_is_one():
    ehr = Ehr([INPATIENT, INPATIENT], [])
    found = ehr.adapter().encounter_coverage("visit-1")
    assert found == EncounterCoverage(encounter_id="visit-1", patient_ref="Patient/example")


def test_a_coverage_of_another_patient_is_refused_not_used():
    # an EHR that ignored ``beneficiary``: coverage-example is Patient/4's, not Patient/5's
    with pytest.raises(ConnectorError) as caught:
        Ehr([OWN_ENCOUNTER], [COVERAGE]).adapter().encounter_coverage("V5005")
    assert "Coverage/9876B1: Coverage.beneficiary" in str(caught.value)
    assert "Patient/4" not in str(caught.value)


def test_an_encounter_without_a_patient_subject_is_an_error():
    group = copy.deepcopy(OWN_ENCOUNTER)
    group["subject"] = {"reference": "Group/103"}
    with pytest.raises(ConnectorError, match=r"Encounter/test-inpatient-5: Encounter.subject"):
        Ehr([group], []).adapter().encounter_coverage("V5005")


def test_a_visit_number_with_a_bar_is_escaped_in_the_search():
    ehr = Ehr([], [])
    assert ehr.adapter().encounter_coverage("V|5,5") is None
    assert ehr.queries == [("Encounter", {"identifier": ["V\\|5\\,5"]})]


def test_no_visit_number_is_an_error():
    with pytest.raises(ConnectorError, match="visit number"):
        Ehr([], []).adapter().encounter_coverage(" ")


@pytest.mark.parametrize(
    ("resource_type", "bad", "path"),
    [
        ("Coverage", {"order": "Quintero-Vance"}, "Coverage at order"),
        ("Coverage", {"beneficiary": None}, "Coverage at beneficiary"),
        ("Encounter", {"period": {"start": "Marisol Quintero-Vance"}}, "Encounter at period.start"),
    ],
)
def test_a_malformed_resource_is_an_error_naming_the_path_not_the_value(resource_type, bad, path):
    encounter, coverage = copy.deepcopy(OWN_ENCOUNTER), copy.deepcopy(COVERAGE_2)
    target = encounter if resource_type == "Encounter" else coverage
    for key, value in bad.items():
        if value is None:
            del target[key]
        else:
            target[key] = value
    with pytest.raises(ConnectorError) as caught:
        Ehr([encounter], [coverage]).adapter().encounter_coverage("V5005")
    message = str(caught.value)
    assert message.startswith("ehr: ") and path in message
    assert "Quintero" not in message and "Marisol" not in message


def test_an_answer_that_is_not_a_bundle_is_unavailable():
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"resourceType": "OperationOutcome", "issue": []})

    http = HttpClient("ehr", BASE, transport=httpx.MockTransport(handle), sleep=lambda _: None)
    with pytest.raises(ConnectorUnavailable, match="expected a Bundle"):
        FhirEhrAdapter(FhirRestClient(http)).encounter_coverage("V5005")


# --- over HTTP: the EHR sandbox server holding the unedited fixtures -----------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server():
    store = FhirStore()
    store.load(
        FIXTURES / name
        for name in (
            "encounter-example-f001-heart.json",
            "encounter-example-home.json",
            "encounter-example.json",
            "coverage-example.json",
            "coverage-example-2.json",
            "coverage-example-selfpay.json",
            "coverage-example-ehic.json",
        )
    )
    srv = FhirSandboxServer(store, page_size=1).start()
    yield srv
    srv.stop()


def over_http(base_url: str, **policy: Any) -> FhirEhrAdapter:
    http = HttpClient(
        "ehr",
        base_url,
        sleep=lambda _: None,
        rng=random.Random(3),
        policy=RetryPolicy(**{"timeout": 2.0, "max_attempts": 2, **policy}),
    )
    return FhirEhrAdapter(FhirRestClient(http))


def test_over_http_the_f001_encounter_is_found_and_its_patient_has_no_coverage(server):
    found = over_http(server.base_url).encounter_coverage("v1451")
    assert found == EncounterCoverage(encounter_id="v1451", patient_ref="Patient/f001")


def test_over_http_an_unknown_visit_number_is_none(server):
    assert over_http(server.base_url).encounter_coverage("v9999") is None


def test_over_http_paged_coverages_give_the_primary(server):
    server.store.put(OWN_ENCOUNTER)  # this test's own Encounter, for Patient/5
    found = over_http(server.base_url).encounter_coverage("V5005")
    assert found == EncounterCoverage(
        encounter_id="V5005",
        patient_ref="Patient/5",
        coverage_ref="Coverage/7546D",
        payer_id="2",
    )


def test_over_http_a_5xx_ehr_is_unavailable(server):
    server.faults.always_down = True
    try:
        with pytest.raises(ConnectorUnavailable, match=r"ehr unavailable after 2 attempts"):
            over_http(server.base_url).encounter_coverage("v1451")
    finally:
        server.faults.clear()


def test_a_refused_connection_is_unavailable():
    adapter = over_http(f"http://127.0.0.1:{_free_port()}/fhir")
    with pytest.raises(ConnectorUnavailable, match=r"transport error"):
        adapter.encounter_coverage("v1451")
