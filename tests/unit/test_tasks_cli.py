"""``careflow tasks``: one line per refusal, an exit code per kind (docs/runbook.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from careflow import cli, clock, wiring
from careflow.domain.tasks import open_task
from careflow.localcloud.api_server import (
    ISSUER_PATH,
    ApiServer,
    LocalIssuer,
    Throttle,
    UsagePlan,
)
from careflow.localcloud.cloud import free_port, free_port_run
from careflow.localcloud.control import ControlServer
from careflow.policies import FilePolicyStore, resolve
from tests.fakes import FakeEngine, FakePublisher, InMemoryStateStore

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
FILES = FilePolicyStore()


@pytest.fixture
def inbox(monkeypatch):
    """The CLI over HTTP to a local gateway and issuer (the control endpoint's ``/token``
    and ``/api``) whose handler answers from in-memory fakes and the packaged policies."""
    store, engine = InMemoryStateStore(), FakeEngine()
    monkeypatch.setattr(wiring, "store", lambda: store)
    monkeypatch.setattr(wiring, "engine", lambda: engine)
    monkeypatch.setattr(wiring, "policies", lambda: FILES)
    monkeypatch.setattr(clock, "now", lambda: NOW)
    monkeypatch.setattr(cli, "require_ready", lambda endpoint: None)
    monkeypatch.delenv("CAREFLOW_ACTORS_FILE", raising=False)
    monkeypatch.delenv("CAREFLOW_FACILITIES_FILE", raising=False)
    monkeypatch.delenv("CAREFLOW_API", raising=False)
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
    port = free_port_run()  # the cloud's port (unused: no cloud) and the control port after it
    issuer = LocalIssuer(f"http://127.0.0.1:{port + 1}{ISSUER_PATH}")
    control = ControlServer(SimpleNamespace(), port + 1, issuer).start()
    api = ApiServer(free_port(), issuer).start()
    control.api_url = api.url

    def run(capsys, *args: str) -> tuple[int, list[str], list[str]]:
        code = cli.main(["tasks", "--port", str(port), *args])
        out, err = capsys.readouterr()
        return code, out.splitlines(), err.splitlines()

    run.issuer = issuer  # type: ignore[attr-defined]
    yield task, store, engine, run
    api.stop()
    control.stop()


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


def test_list_reads_the_inbox_through_the_api_without_free_text(inbox, capsys):
    task, _, _, run = inbox
    for who in ((), ("--actor", "user:coordinator-mdiaz")):
        code, out, err = run(
            capsys, "list", "--queue", "care_coordinator", "--facility", "fac-north", *who
        )
        assert (code, err) == (0, [])
        items = json.loads("\n".join(out))
        assert [t["task_id"] for t in items] == [task.task_id]
        assert "title" not in items[0] and "reasons" not in items[0]
    code, out, _ = run(capsys, "list", "--queue", "care_coordinator", "--facility", "fac-south")
    assert code == 0 and json.loads("\n".join(out)) == []
    code, _, err = run(capsys, "list", "--queue", "Not A Queue", "--facility", "fac-north")
    assert code == 2 and len(err) == 1 and "invalid" in err[0]


def test_acknowledge_a_task_without_decisions(inbox, capsys):
    _, store, engine, run = inbox
    alert = open_task(
        store,
        FakePublisher(),
        instance_id="i-10",
        workflow_id="surgical-case-readiness",
        facility_id="fac-north",
        purpose="coordinator",
        title="Implant late",
        reasons=("implant short",),
        subject_ref="case/appt-10",
        escalation_chain=("care_coordinator",),
        due_in_seconds=3600,
        token="tok-10",
        allowed_decisions=(),
        now=NOW,
        policy_version=resolve("surgical-readiness", "fac-north", store=FILES).version,
    )
    me = ("--actor", "user:coordinator-mdiaz")
    assert run(capsys, "claim", alert.task_id, *me)[0] == 0
    code, out, _ = run(capsys, "acknowledge", alert.task_id, *me, "--reason", "seen")
    assert code == 0
    assert json.loads(out[0]) == {
        "task_id": alert.task_id,
        "status": "COMPLETED",
        "claimed_by": "user:coordinator-mdiaz",
        "decision": "ACKNOWLEDGED",
    }
    assert engine.successes[0][1]["actor"] == "user:coordinator-mdiaz"


def test_an_actor_or_target_that_is_no_actor_id_is_usage(inbox, capsys):
    task, _, _, run = inbox
    with pytest.raises(SystemExit) as exited:
        run(capsys, "claim", task.task_id, "--actor", "Jane Doe")
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        run(capsys, "reassign", task.task_id, "--actor", "user:a", "--to", "x", "--reason", "r")
    assert exited.value.code == 2


def test_no_api_on_the_port_is_one_line(inbox, capsys):
    task, _, _, run = inbox
    port = free_port()
    args = ("claim", task.task_id, "--actor", "user:coordinator-mdiaz")
    code, out, err = run(capsys, *args, "--api-port", str(port))
    assert (code, out) == (1, [])
    assert err == [
        f"error: careflow tasks claim: no careflow API answers on http://127.0.0.1:{port}/v1 "
        "(is `careflow up` running? pass --api-port, or set CAREFLOW_API)"
    ]


def test_careflow_api_names_the_api(inbox, capsys, monkeypatch):
    task, _, _, run = inbox
    port = free_port()
    monkeypatch.setenv("CAREFLOW_API", f"http://127.0.0.1:{port}")
    code, _, err = run(capsys, "claim", task.task_id, "--actor", "user:coordinator-mdiaz")
    assert code == 1 and len(err) == 1 and f"127.0.0.1:{port}/v1" in err[0]


def _answering(status: int, headers: dict[str, str] | None = None):
    def handler(event, context):
        problem = {"title": "x", "status": status, "detail": f"the {status} detail\nline two"}
        return {"statusCode": status, "headers": headers or {}, "body": json.dumps(problem)}

    return handler


def _raising(event, context):
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        (
            lambda issuer: ApiServer(free_port(), LocalIssuer("http://elsewhere")),
            "the API refused the token (401): The request carries no valid access token.",
        ),
        (
            lambda issuer: ApiServer(
                free_port(),
                issuer,
                throttle=Throttle(plans={"careflow-cli": UsagePlan(rate=1 / 60, burst=1)}),
            ),
            "over the API's usage plan (429) (retry after ",
        ),
        (lambda issuer: ApiServer(free_port(), issuer, handler=_raising), "the API failed (502): "),
        (
            lambda issuer: ApiServer(free_port(), issuer, handler=_answering(503)),
            "the API failed (503): the 503 detail line two",
        ),
    ],
    ids=["401", "429", "502", "503"],
)
def test_a_refused_token_a_usage_plan_or_a_failing_api_is_one_line_exit_1(
    inbox, capsys, server, expected
):
    task, _, _, run = inbox
    api = server(run.issuer).start()
    listing = ("list", "--queue", "care_coordinator", "--facility", "fac-north")
    try:
        if api.throttle.plans:  # the plan's one request
            assert run(capsys, *listing, "--api-port", str(api.port))[0] == 0
        code, out, err = run(
            capsys,
            "claim",
            task.task_id,
            "--actor",
            "user:coordinator-mdiaz",
            "--api-port",
            str(api.port),
        )
    finally:
        api.stop()
    assert (code, out, len(err)) == (1, [], 1), err
    assert err[0].startswith(f"error: careflow tasks claim: {expected}"), err


def test_complete_sends_the_documents_named_with_document(inbox, capsys):
    """``--document`` (repeatable) reaches the API as ``documents``: with a decision other
    than ATTACHED the API refuses it (6, invalid) and nothing resumes."""
    task, _, engine, run = inbox
    tid = task.task_id
    me = ("--actor", "user:coordinator-mdiaz")
    assert run(capsys, "claim", tid, *me)[0] == 0
    code, _, err = run(
        capsys,
        "complete",
        tid,
        *me,
        "--decision",
        "PROCEED",
        "--document",
        "DocumentReference/doc-1",
        "--document",
        "doc-2",
    )
    assert code == 6 and len(err) == 1 and "documents go with ATTACHED" in err[0]
    assert engine.successes == []
