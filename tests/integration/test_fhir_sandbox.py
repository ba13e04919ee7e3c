"""The EHR side over real HTTP: the FHIR sandbox server and the FHIR REST client."""

from __future__ import annotations

import json
import random
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from careflow.adapters.fhir_rest import FhirRestClient
from careflow.adapters.http import HttpClient, NotFound, Rejected, RetryPolicy
from careflow.adapters.smart import SmartBackendAuth
from careflow.localcloud.sandboxes.fhir_server import FhirSandboxServer, FhirStore
from careflow.ports import ConnectorUnavailable
from tests import fixtures

FIXTURES = fixtures.FHIR_R4


@pytest.fixture(scope="module")
def server():
    assert FIXTURES.is_dir(), f"{FIXTURES} is missing"
    store = FhirStore()
    loaded = store.load(sorted(FIXTURES.glob("*.json")))
    assert loaded > 50
    srv = FhirSandboxServer(store, page_size=2).start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _no_faults(server):
    server.faults.clear()
    yield
    server.faults.clear()


def fhir(server, **policy):
    sleeps: list[float] = []
    http = HttpClient(
        "ehr",
        server.base_url,
        sleep=sleeps.append,
        rng=random.Random(1),
        policy=RetryPolicy(**{"timeout": 2.0, **policy}),
    )
    return FhirRestClient(http), sleeps


def test_every_fixture_reads_back_as_written(server):
    client, _ = fhir(server)
    for path in sorted(FIXTURES.glob("*.json")):
        written = json.loads(path.read_text())
        if not written.get("id"):
            continue
        read = client.read(written["resourceType"], written["id"])
        read.pop("meta", None)
        written.pop("meta", None)
        assert read == written, path.name


def test_search_follows_next_links_across_pages(server):
    client, _ = fhir(server)
    before = server.requests
    appointments = list(client.search("Appointment", {"_count": "1"}))
    expected = {json.loads(p.read_text())["id"] for p in FIXTURES.glob("appointment-*.json")}
    assert {a["id"] for a in appointments} == expected
    assert server.requests - before == len(expected)  # one page each


def test_search_by_reference_and_identifier(server):
    client, _ = fhir(server)
    coverages = list(client.search("Coverage", {"beneficiary": "Patient/4"}))
    assert coverages and all(c["beneficiary"]["reference"] == "Patient/4" for c in coverages)


def test_conditional_create_does_not_duplicate(server):
    client, _ = fhir(server)
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "identifier": [{"system": "urn:careflow:task", "value": "task-abc"}],
    }
    first = client.create(task, if_none_exist="identifier=urn:careflow:task|task-abc")
    second = client.create(task, if_none_exist="identifier=urn:careflow:task|task-abc")
    assert first["id"] == second["id"]
    updated = client.update({**first, "status": "in-progress"})
    assert updated["meta"]["versionId"] == "2"


def test_unknown_resource_is_not_found_with_the_outcome(server):
    client, _ = fhir(server)
    with pytest.raises(NotFound, match=r"not-found at Appointment\.id"):
        client.read("Appointment", "does-not-exist")


def test_5xx_and_429_are_retried_then_succeed(server):
    client, sleeps = fhir(server)
    server.faults.server_errors = 2
    server.faults.rate_limits = 1
    server.faults.retry_after_s = 3
    assert client.read("Appointment", "example")["id"] == "example"
    assert 3.0 in sleeps and len(sleeps) == 3


def test_a_server_that_stays_down_makes_the_connector_unavailable(server):
    client, _ = fhir(server, max_attempts=3)
    server.faults.always_down = True
    with pytest.raises(ConnectorUnavailable, match="after 3 attempts \\(HTTP 503\\)"):
        client.read("Appointment", "example")


def test_a_stalled_server_times_out(server, capfd):
    client, _ = fhir(server, max_attempts=2, timeout=0.3)
    server.faults.timeouts = 2
    server.faults.stall_s = 1.0
    with pytest.raises(ConnectorUnavailable, match="timed out"):
        client.read("Appointment", "example")
    time.sleep(1.2)  # the stalled answers go out to clients that have hung up
    assert "Traceback" not in capfd.readouterr().err


def test_a_malformed_body_is_an_error_not_a_crash(server):
    client, _ = fhir(server, max_attempts=1)
    server.faults.malformed = 1
    with pytest.raises(ConnectorUnavailable, match="malformed response body"):
        client.read("Appointment", "example")


def test_smart_backend_services_against_the_sandbox():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    store = FhirStore()
    store.put({"resourceType": "Patient", "id": "p1"})
    srv = FhirSandboxServer(
        store, require_token=True, client_keys={"careflow": key.public_key()}
    ).start()
    try:
        anonymous = FhirRestClient(HttpClient("ehr", srv.base_url))
        with pytest.raises(Rejected, match="401"):
            anonymous.read("Patient", "p1")
        auth = SmartBackendAuth(
            token_url=srv.token_url,
            client_id="careflow",
            private_key_pem=pem,
            key_id="k1",
            scope="system/Patient.read",
        )
        client = FhirRestClient(HttpClient("ehr", srv.base_url, auth=auth))
        for _ in range(3):
            assert client.read("Patient", "p1")["id"] == "p1"
        assert auth.requests == 1  # the token is reused
    finally:
        srv.stop()
