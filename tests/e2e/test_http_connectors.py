"""The workflow with the protocol adapters: faults at the sandbox servers are retried
within limits, then land in the workflow's Catch as a person's task; nothing is stuck and
nothing is lost. And a whole demo leaves no PHI in the logs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from careflow.localcloud.sandboxes.ehr_seed import PEOPLE, patient_ssn
from tests.e2e.support import ENV, run_demo

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def scenario(fault: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.e2e.http_scenarios", fault],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_flaky_ehr_is_absorbed_by_retries():
    result = scenario("ehr-flaky")
    assert result["status"] == "SUCCEEDED"
    assert ["case_ready", "DONE"] in result["milestones"]


def test_encounter_coverage_reads_over_fhir_as_the_sandbox_holds_it():
    result = scenario("encounter-coverage")
    assert {v["adapter"] for v in result.values()} == {"FhirEhrAdapter"}
    assert all(v["same"] for v in result.values())
    assert result["V2001"]["found"]["coverage_ref"] == "Coverage/cov-enc-V2001"
    assert result["V2002"]["found"]["coverage_ref"] is None
    assert result["V2003"]["found"] is None


def test_a_payer_that_stays_down_becomes_a_coordinator_task_not_a_stuck_execution():
    result = scenario("payer-down")
    assert result["status"] == "RUNNING"  # waiting on a visible task
    assert result["task_queue"] == "care_coordinator"
    assert any("ConnectorUnavailable" in r for r in result["task_reasons"])
    assert ["authorization_check_failed", "FAILED"] in result["milestones"]
    assert ["benefits_check_failed", "FAILED"] in result["milestones"]
    assert result["authorizations"] == 0


def test_a_payer_answering_garbage_is_routed_to_a_person_too():
    result = scenario("payer-garbage")
    assert result["task_queue"] == "care_coordinator"
    assert ["authorization_check_failed", "FAILED"] in result["milestones"]


def test_the_hl7_id_only_notification_resumes_a_pended_workflow():
    result = scenario("id-only-fixture")
    assert result["delivered"] == 1, result
    assert result["status"] == "SUCCEEDED", result
    assert result["output"]["outcome"] == "READY"
    assert "authorization_approved" in result["milestones"]


def test_payer_notifications_arrive_by_rest_hook_and_garbage_is_refused():
    result = scenario("rest-hook")
    assert result["garbage_status"] == 400
    assert result["garbage"]["resourceType"] == "OperationOutcome"
    assert result["status"] == "SUCCEEDED", result
    assert result["output"]["outcome"] == "READY"
    assert [status for _, status in result["deliveries"]] == [200]


def test_a_whole_demo_logs_no_patient_name_birth_date_or_member_id():
    proc = run_demo(env={**ENV, "POWERTOOLS_LOG_LEVEL": "DEBUG"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    output = proc.stdout + proc.stderr
    assert '"level":"DEBUG"' in output or '"level": "DEBUG"' in output  # logs were captured
    for number, (given, family, birth) in PEOPLE.items():
        ssn = patient_ssn(number)
        for secret in (given, family, birth, ssn, f"MBR-{number}-5521", f"MRN{number}77"):
            assert secret not in output, f"{secret} leaked into the logs"
