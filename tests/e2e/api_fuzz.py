"""Schemathesis: requests generated from the committed OpenAPI document (``docs/openapi.json``)
against the running local API (gateway + handler on the local cloud's table and bus).

Every answer must be no server error and conform to the document: a documented status, the
documented content type and headers, a body that validates against the status's schema.
Invalid data must be refused (negative cases). The caller is a person with every scope in
one facility, so every route is reachable past the gateway.

Run in a process of its own by test_api_schemathesis.py: its cloud has the protocol
connectors, and moto's backends are process-wide (a second cloud in the suite's process
would reset the session cloud's).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from careflow.api.contract import SCOPES
from careflow.localcloud.api_server import ApiServer, LocalIssuer, Throttle, UsagePlan
from careflow.localcloud.cloud import LocalCloud, free_port

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
FUZZ = "fuzz-app"  # the client; its usage plan never throttles
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

schema = schemathesis.openapi.from_path(DOC)


@pytest.fixture(scope="module")
def api():
    # the protocol connectors (not the in-process sandbox): the payer's rest-hook route
    # reads notifications through the PAS adapter, as deployed
    with LocalCloud(free_port(), connectors="http", payer_ticker=False) as cloud:
        issuer = LocalIssuer(f"{cloud.endpoint}/issuer")
        throttle = Throttle(plans={FUZZ: UsagePlan(rate=1e6, burst=10**6)})
        server = ApiServer(free_port(), issuer, throttle=throttle).start()
        try:
            yield server
        finally:
            server.stop()


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("CAREFLOW_FUZZ_EXAMPLES", "25")),
    deadline=None,
    database=None,  # no .hypothesis/ directory in the clone
    # the same cases every run, so a failure reproduces; CAREFLOW_FUZZ_RANDOM=1 explores
    derandomize=not os.environ.get("CAREFLOW_FUZZ_RANDOM"),
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_its_document_says(case, api):
    token = api.issuer.mint(
        client=FUZZ,
        scopes=list(SCOPES),
        facilities=["fac-north"],
        user="coordinator-fuzz",
        roles=["care_coordinator"],
    )
    case.call_and_validate(
        base_url=f"http://127.0.0.1:{api.port}",
        headers={"Authorization": f"Bearer {token}"},
        checks=CHECKS,
    )
