"""No PHI in histories, logs, parked messages or bus events: a whole demo, swept.

The demo runs in its own process (``phi_sweep.py``): it needs the protocol sandboxes, whose
EHR holds the synthetic patients' demographics, and moto's backends are process-wide, so it
cannot share this process with the session cloud (which runs the in-process sandbox).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from careflow.localcloud.sandboxes.ehr_seed import PEOPLE, patient_ssn

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
KINDS = ("name", "birth_date", "mrn", "member_id", "ssn")
RECORD_KINDS = ("patient_id", "coverage_id")


@pytest.fixture(scope="module")
def sweep() -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.workflows.phi_sweep"],
        cwd=ROOT,
        env={**_env(), "POWERTOOLS_LOG_LEVEL": "DEBUG", "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    *before, last = proc.stdout.strip().splitlines()
    report = json.loads(last)
    # What the process wrote (Powertools' JSON log lines go to stdout) is swept here.
    report["output_lines"] = before + proc.stderr.splitlines()
    print(
        "PHI sweep: {executions} executions ({history_events} history events) of "
        "{state_machines} state machines, {events} bus events, {log_records} log records "
        "+ {n} output lines, {messages} queued messages in {queues} queues, "
        "{parked_records} parked records; needles {needles}".format(
            n=len(report["output_lines"]), **report
        )
    )
    return report


def _env() -> dict[str, str]:
    import os

    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def test_the_needles_come_from_the_sandbox_and_cover_every_kind(sweep):
    for kind in (*KINDS, *RECORD_KINDS):
        assert sweep["needles"][kind] > 0, f"no {kind} in the EHR sandbox to look for"
    assert sweep["needles"]["name"] >= len(PEOPLE)


def test_the_sweep_saw_the_whole_demo(sweep):
    assert sweep["cases"] >= 10  # every workflow's scenarios
    assert sweep["state_machines"] >= 2
    assert sweep["executions"] > sweep["cases"]  # child executions included
    assert sweep["history_events"] > 20 * sweep["executions"]
    assert sweep["events"] > sweep["cases"]  # each case's trigger, its outcome, its tasks
    assert sweep["log_records"] > 0
    assert sweep["queues"] > 0


def test_the_sweep_finds_a_canary_planted_in_each_place_it_reads(sweep):
    assert sweep["canaries_found"] == ["event", "history", "log", "queue"]


def _no_hits(sweep: dict, kinds: tuple[str, ...]) -> None:
    hits = [h for h in sweep["hits"] if h["kind"] in kinds]
    where = sorted({(h["where"].split("[")[0], h["kind"], h["needle"]) for h in hits})
    assert not hits, f"{len(hits)} hits: {where}; first: {hits[0]['context']!r}"


def test_no_patient_name_birth_date_mrn_member_id_or_ssn_anywhere(sweep):
    _no_hits(sweep, KINDS)


def test_no_execution_carries_the_case_record_s_patient_or_coverage(sweep):
    """Execution input and history carry identifiers, codes, statuses and dates: not the
    case record, whose patient and coverage stay in the EHR."""
    _no_hits(sweep, RECORD_KINDS)


def test_nor_in_anything_the_demo_process_wrote(sweep):
    secrets = {v for values in sweep["needle_values"].values() for v in values}
    assert {patient_ssn(n) for n in PEOPLE} <= secrets
    leaked = sorted({s for line in sweep["output_lines"] for s in secrets if s in line})
    assert not leaked, f"{leaked} in the demo process's output"
