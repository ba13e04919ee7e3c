"""``careflow tasks``: one line per refusal, an exit code per kind (docs/runbook.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from careflow import cli
from careflow.domain.tasks import open_task
from careflow.localcloud.cloud import free_port
from careflow.policies import FilePolicyStore, resolve
from tests.fakes import FakeEngine, FakePublisher, InMemoryStateStore

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
FILES = FilePolicyStore()


@pytest.fixture
def inbox(monkeypatch):
    """The CLI against in-memory fakes and the packaged policies (no cloud running)."""
    store, engine = InMemoryStateStore(), FakeEngine()
    monkeypatch.setattr(cli, "_store_and_engine", lambda endpoint: (store, engine))
    monkeypatch.setattr(cli, "require_ready", lambda endpoint: None)
    monkeypatch.setattr("careflow.policies.runtime.layered", lambda client, table: FILES)
    monkeypatch.delenv("CAREFLOW_ACTORS_FILE", raising=False)
    task = open_task(
        store,
        FakePublisher(),
        instance_id="i-9",
        workflow_id="surgical-case-readiness",
        facility_id="fac-north",
        purpose="coordinator",
        title="Case at risk",
        reasons=("implant short",),
        subject_ref="case/appt-9",
        escalation_chain=("care_coordinator", "department_director"),
        due_in_seconds=3600,
        token="tok-9",
        allowed_decisions=("PROCEED", "CANCEL"),
        now=NOW,
        policy_version=resolve("surgical-readiness", "fac-north", store=FILES).version,
    )
    port = str(free_port())

    def run(capsys, *args: str) -> tuple[int, list[str], list[str]]:
        code = cli.main(["tasks", "--port", port, *args])
        out, err = capsys.readouterr()
        return code, out.splitlines(), err.splitlines()

    return task, store, engine, run


def test_each_refusal_is_one_line_with_its_own_exit_code(inbox, capsys):
    task, _, engine, run = inbox
    tid = task.task_id
    coordinator = ("--actor", "user:coordinator-mdiaz")

    code, _, err = run(capsys, "complete", tid, *coordinator, "--decision", "PROCEED")
    assert (code, err) == (
        5,
        [
            f"error: careflow tasks complete: conflict: Task {tid} is not claimed: "
            "claim it before you complete it."
        ],
    )
    code, _, err = run(capsys, "claim", tid, "--actor", "user:buyer-jlee")
    assert (
        code == 4
        and len(err) == 1
        and err[0].startswith("error: careflow tasks claim: forbidden: ")
    )
    code, _, err = run(capsys, "claim", "task-nope", *coordinator)
    assert (code, len(err)) == (3, 1)

    code, out, _ = run(capsys, "claim", tid, *coordinator)
    assert code == 0
    assert json.loads(out[0])["claimed_by"] == "user:coordinator-mdiaz"
    code, _, err = run(capsys, "complete", tid, *coordinator, "--decision", "MAYBE")
    assert (code, len(err)) == (6, 1)
    code, _, err = run(capsys, "acknowledge", tid, *coordinator)
    assert (code, len(err)) == (6, 1)
    assert engine.successes == []


def test_a_lead_reassigns_and_the_new_claimant_completes(inbox, capsys):
    task, store, engine, run = inbox
    tid = task.task_id
    assert run(capsys, "claim", tid, "--actor", "user:coordinator-mdiaz")[0] == 0
    code, out, _ = run(
        capsys,
        "reassign",
        tid,
        "--actor",
        "user:cc-lead-bokafor",
        "--to",
        "user:coordinator-akim",
        "--reason",
        "covering the afternoon",
    )
    assert code == 0 and json.loads(out[0])["claimed_by"] == "user:coordinator-akim"
    code, out, _ = run(
        capsys, "complete", tid, "--actor", "user:coordinator-akim", "--decision", "CANCEL"
    )
    assert code == 0
    assert json.loads(out[0]) == {
        "task_id": tid,
        "status": "COMPLETED",
        "claimed_by": "user:coordinator-akim",
        "decision": "CANCEL",
    }
    assert [a.action for a in store.audit_trail("i-9")][-3:] == [
        "task_claimed",
        "task_reassigned",
        "task_completed",
    ]
    assert engine.successes[0][1]["decision"] == "CANCEL"


def test_release_puts_the_task_back(inbox, capsys):
    task, _, _, run = inbox
    run(capsys, "claim", task.task_id, "--actor", "user:coordinator-mdiaz")
    code, out, _ = run(capsys, "release", task.task_id, "--actor", "user:coordinator-mdiaz")
    assert code == 0 and json.loads(out[0])["status"] == "OPEN"
