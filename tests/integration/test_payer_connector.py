"""The payer side over real HTTP: the PAS sandbox payer and the PAS payer adapter."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from careflow import clock
from careflow.adapters import pas
from careflow.adapters.http import HttpClient, Rejected, RetryPolicy
from careflow.adapters.payer_pas import PasPayerAdapter
from careflow.canonical.cases import Priority
from careflow.canonical.datatypes import Coding
from careflow.canonical.payer import AuthDecision, EligibilityRequest, PriorAuthRequest
from careflow.localcloud.sandboxes.payer_server import Behaviour, PayerSandboxServer
from careflow.ports import ConnectorUnavailable
from tests import fixtures

PAS_FIXTURES = fixtures.DAVINCI_PAS
NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def fixture(name: str) -> dict:
    return json.loads((PAS_FIXTURES / name).read_text())


@pytest.fixture
def virtual_time():
    previous = clock.get_clock()
    vc = clock.VirtualClock(start=NOW, speed=0)
    clock.set_clock(vc)
    yield vc
    clock.set_clock(previous)


@pytest.fixture
def payer(virtual_time):
    server = PayerSandboxServer().start()
    server.behaviours["cov-deny"] = Behaviour(AuthDecision.DENIED)
    server.behaviours["cov-pend"] = Behaviour(
        AuthDecision.PENDED, timedelta(days=2), AuthDecision.APPROVED
    )
    yield server
    server.stop()


def adapter(payer, **policy):
    sleeps: list[float] = []
    http = HttpClient(
        "payer",
        payer.base_url,
        sleep=sleeps.append,
        rng=random.Random(3),
        policy=RetryPolicy(**{"timeout": 2.0, **policy}),
    )
    return PasPayerAdapter(http), http, sleeps


def request(coverage: str, priority=Priority.ROUTINE) -> PriorAuthRequest:
    return PriorAuthRequest(
        case_id="appt-1001",
        patient_ref="Patient/pat-1001",
        coverage_ref=f"Coverage/{coverage}",
        payer_id="payer-lakeshore",
        facility_id="fac-north",
        procedure_codes=(Coding(system="http://www.ama-assn.org/go/cpt", code="27447"),),
        service_date=NOW + timedelta(days=10),
        priority=priority,
    )


def test_the_conformant_request_bundle_is_accepted(payer):
    _, http, _ = adapter(payer)
    response = http.post_json("Claim/$submit", fixture("conformant_pas_bundle_v110.json"))
    assert response["entry"][0]["resource"]["resourceType"] == "ClaimResponse"
    assert pas.read_response_bundle(response).decision is AuthDecision.APPROVED
    assert len(payer.authorizations) == 1


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("nonconformant_pas_bundle_v110.json", "Bundle.entry: the Bundle has no entries"),
        (
            "missing_referenced_resource_request_bundle.json",
            "Claim.careTeam[0].provider: references Practitioner not in the Bundle",
        ),
    ],
)
def test_malformed_request_bundles_are_refused_and_nothing_is_kept(payer, name, reason):
    _, http, _ = adapter(payer)
    with pytest.raises(Rejected) as err:
        http.post_json("Claim/$submit", fixture(name))
    assert "returned 400: error invalid" in str(err.value)
    assert payer.authorizations == {}
    assert payer.refused == 1


@pytest.mark.parametrize(
    ("coverage", "decision"),
    [
        ("cov-ok", AuthDecision.APPROVED),
        ("cov-deny", AuthDecision.DENIED),
        ("cov-pend", AuthDecision.PENDED),
        ("cov-odd", AuthDecision.UNKNOWN),  # the sandbox says CT "contact payer"
    ],
)
def test_the_adapter_reads_each_decision_from_the_review_action(payer, coverage, decision):
    payer.behaviours["cov-odd"] = Behaviour(AuthDecision.UNKNOWN)
    payer_port, _, _ = adapter(payer)
    result = payer_port.submit_prior_auth(request(coverage))
    assert result.decision is decision
    assert result.preauth_ref and result.preauth_ref.startswith("PA-")
    assert [i.code for i in result.items] == ["27447"]
    assert result.conformance == ()  # the sandbox keeps the PAS rules it is read by
    inquired = payer_port.inquire(result.preauth_ref)
    assert (inquired.decision, inquired.conformance) == (decision, ())


def test_a_pend_is_decided_later_and_inquire_and_notifications_tell_it(payer, virtual_time):
    payer_port, _, _ = adapter(payer)
    pended = payer_port.submit_prior_auth(request("cov-pend", Priority.EXPEDITED))
    assert payer.due_decisions() == []
    virtual_time.advance(timedelta(days=2))
    assert payer.due_decisions() == [pended.preauth_ref]
    assert payer_port.inquire(pended.preauth_ref).decision is AuthDecision.APPROVED
    full = pas.read_notification(payer.notification(pended.preauth_ref, full_resource=True))
    assert full.decisions[0].decision is AuthDecision.APPROVED
    id_only = pas.read_notification(payer.notification(pended.preauth_ref, full_resource=False))
    assert id_only.id_only
    fetched = payer_port.claim_response(id_only.focus[0])
    assert (fetched.decision, fetched.preauth_ref) == (AuthDecision.APPROVED, pended.preauth_ref)


def test_a_retried_submission_is_one_authorization(payer):
    payer_port, _, sleeps = adapter(payer)
    payer.faults.server_errors = 1
    payer.faults.rate_limits = 1
    payer.faults.retry_after_s = 2
    payer_port.submit_prior_auth(request("cov-ok"))
    payer_port.submit_prior_auth(request("cov-ok"))  # the workflow retried the whole step
    assert len(payer.authorizations) == 1
    assert 2.0 in sleeps


def test_a_payer_that_stays_down_or_answers_garbage_is_unavailable(payer):
    payer_port, _, _ = adapter(payer, max_attempts=2)
    payer.faults.always_down = True
    with pytest.raises(ConnectorUnavailable, match="after 2 attempts"):
        payer_port.submit_prior_auth(request("cov-ok"))
    payer.faults.clear()
    payer.faults.malformed = 1
    with pytest.raises(ConnectorUnavailable, match="malformed response body"):
        payer_port.submit_prior_auth(request("cov-ok"))


def test_eligibility(payer):
    payer_port, _, _ = adapter(payer)
    ok = payer_port.check_eligibility(
        EligibilityRequest(
            case_id="c",
            patient_ref="Patient/p",
            coverage_ref="Coverage/c1",
            payer_id="p",
            service_date=NOW,
            procedure_codes=(),
        )
    )
    assert ok.active and ok.covered and ok.auth_required
    none = payer_port.check_eligibility(
        EligibilityRequest(
            case_id="c",
            patient_ref="Patient/p",
            coverage_ref=None,
            payer_id="p",
            service_date=NOW,
            procedure_codes=(),
        )
    )
    assert not none.active
