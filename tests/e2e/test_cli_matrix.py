"""``careflow`` as an operator meets it: every failure is a short answer and an exit code,
never a traceback. The real console script runs in its own process for each case."""

from __future__ import annotations

import codecs
import json
import socket
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from careflow import clock
from careflow.localcloud.cloud import free_port, free_port_run
from careflow.localcloud.control import ControlServer
from careflow.localcloud.server import HEALTH_PATH, readiness_gate
from tests.e2e.support import CAREFLOW, ENV, ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "davinci-pas"
PAS_RESPONSE = FIXTURES / "valid_pa_response_bundle.json"
POLICY = ROOT / "policies" / "enterprise" / "prior-authorization.json"
# No endpoint from the developer's shell leaks into a case.
BASE_ENV = {k: v for k, v in ENV.items() if k not in ("CAREFLOW_ENDPOINT", "CAREFLOW_DEBUG")}


def careflow(*args: str, env: dict | None = None, timeout: float = 60) -> SimpleNamespace:
    started = time.monotonic()
    proc = subprocess.run(
        [CAREFLOW, *args],
        cwd=ROOT,
        env={**BASE_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    return SimpleNamespace(
        code=proc.returncode,
        stdout=proc.stdout,
        stderr=proc.stderr,
        lines=out.splitlines(),
        seconds=time.monotonic() - started,
    )


def short(result: SimpleNamespace) -> str:
    assert len(result.lines) <= 3, result.lines
    return "\n".join(result.lines)


# -- no cloud running ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nothing_there() -> int:
    """A port where no cloud runs (nor its control endpoint, on the port after it)."""
    return free_port_run()


@pytest.mark.parametrize(
    "command",
    [
        ["tasks", "list", "--queue", "care_coordinator", "--facility", "fac-south"],
        ["tasks", "claim", "task-1", "--actor", "user:me"],
        ["tasks", "complete", "task-1", "--actor", "user:me", "--decision", "PROCEED"],
        ["clock", "now"],
        ["clock", "advance", "2d"],
        ["policy", "show", "surgical-readiness", "--cloud"],
        ["parked", "list"],
        ["parked", "show", "evt-1"],
        ["parked", "redrive", "evt-1"],
    ],
    ids=[
        "tasks-list",
        "tasks-claim",
        "tasks-complete",
        "clock-now",
        "clock-advance",
        "policy",
        "parked-list",
        "parked-show",
        "parked-redrive",
    ],
)
def test_without_a_cloud_a_command_names_the_endpoint_and_careflow_up(nothing_there, command):
    result = careflow(*command, "--port", str(nothing_there))
    assert result.code == 1
    assert result.stdout == ""
    assert short(result) == (
        f"error: no local cloud answers on http://127.0.0.1:{nothing_there}: start one with "
        "`careflow up` (or pass --port, or set CAREFLOW_ENDPOINT)"
    )


def test_the_port_is_taken_before_the_command_after_it_or_from_careflow_endpoint(nothing_there):
    before = careflow("--port", str(nothing_there), "clock", "now")
    between = careflow("clock", "--port", str(nothing_there), "now")
    from_env = careflow(
        "clock", "now", env={"CAREFLOW_ENDPOINT": f"http://127.0.0.1:{nothing_there}"}
    )
    for result in (before, between, from_env):
        assert result.code == 1
        assert f"http://127.0.0.1:{nothing_there}:" in short(result)
    # --port wins over the environment
    other = careflow(
        "clock",
        "now",
        "--port",
        str(nothing_there),
        env={"CAREFLOW_ENDPOINT": "http://127.0.0.1:9"},
    )
    assert f"127.0.0.1:{nothing_there}" in short(other)
    bad = careflow("clock", "now", env={"CAREFLOW_ENDPOINT": "localhost"})
    assert bad.code == 1
    assert short(bad) == (
        "error: CAREFLOW_ENDPOINT='localhost' is not an endpoint (e.g. http://127.0.0.1:4566)"
    )


def test_wait_gives_up_after_its_timeout_in_one_line(nothing_there):
    result = careflow("wait", "--timeout", "1", "--port", str(nothing_there))
    assert result.code == 1
    assert short(result) == (
        f"error: the local cloud on http://127.0.0.1:{nothing_there} does not answer after 1 s "
        "(is `careflow up` running?)"
    )


# -- careflow up on a busy port ----------------------------------------------------------------
@pytest.mark.parametrize("taken", [0, 1], ids=["endpoint-port", "control-port"])
def test_up_on_a_busy_port_refuses_at_once(taken):
    port = free_port_run()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port + taken))
        holder.listen()
        result = careflow("up", "--port", str(port), timeout=30)
    assert result.code == 1
    assert result.seconds < 10, result.seconds
    what = "the local cloud" if taken == 0 else "the control endpoint"
    assert short(result) == (
        f"error: port {port + taken} is in use: {what} cannot start there "
        "(pass --port with a free port)"
    )


def test_up_on_a_busy_api_port_refuses_at_once():
    port = free_port_run()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        api_port = holder.getsockname()[1]
        result = careflow("up", "--port", str(port), "--api-port", str(api_port), timeout=30)
    assert result.code == 1
    assert result.seconds < 10, result.seconds
    assert short(result) == (
        f"error: port {api_port} is in use: the API cannot start there "
        "(pass --api-port with a free port)"
    )


def test_up_on_a_busy_mllp_port_refuses_at_once():
    port = free_port_run()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        mllp_port = holder.getsockname()[1]
        result = careflow(
            "up",
            "--port",
            str(port),
            "--api-port",
            str(free_port()),
            "--mllp-port",
            str(mllp_port),
            timeout=30,
        )
    assert result.code == 1
    assert result.seconds < 10, result.seconds
    assert short(result) == (
        f"error: port {mllp_port} is in use: the MLLP listener cannot start there "
        "(pass --mllp-port with a free port)"
    )


# -- bad arguments -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["frobnicate"], "argument command: invalid choice: 'frobnicate'"),
        (["clock", "advance", "soon"], "not a duration: 'soon' (use e.g. 90s, 15m, 4h, 2d)"),
        (["clock", "advance", "-1d"], "the clock never goes back: give a positive duration"),
        (["clock", "advance", "0s"], "the clock never goes back: give a positive duration"),
        (["clock", "advance", "400d"], "at most 366 days per advance (asked for 400 d)"),
        (["tasks", "list", "--port", "http"], "not a port number: 'http'"),
        (["up", "--api-rate", "0"], "give a positive number, not 0"),
        (["up", "--api-burst", "x"], "not a number: 'x'"),
        (["token", "--client", "a"], "the following arguments are required: --scopes"),
    ],
    ids=[
        "unknown-command",
        "bad-duration",
        "negative",
        "zero",
        "huge",
        "bad-port",
        "api-rate",
        "api-burst",
        "token-scopes",
    ],
)
def test_bad_arguments_are_usage_and_one_error_line(args, message):
    result = careflow(*args)
    assert result.code == 2
    assert result.stdout == ""
    usage, error = result.stderr.rstrip("\n").split("\n")[-2:]
    assert usage.startswith("usage: careflow") or result.stderr.startswith("usage: careflow")
    assert error.startswith("careflow") and message in error, result.stderr


# -- files -------------------------------------------------------------------------------------
def _encodings(path: Path, tmp_path: Path) -> dict[str, Path]:
    text = path.read_text("utf-8")
    files = {
        "utf-8": text.encode("utf-8"),
        "utf-8-bom": codecs.BOM_UTF8 + text.encode("utf-8"),
        "utf-16-bom": text.encode("utf-16"),  # BOM first, as Windows tools write it
        "utf-16-be-bom": codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    }
    out = {}
    for name, data in files.items():
        out[name] = tmp_path / f"{name}{path.suffix}"
        out[name].write_bytes(data)
    return out


@pytest.mark.parametrize("encoding", ["utf-8-bom", "utf-16-bom", "utf-16-be-bom"])
def test_pas_decision_reads_utf8_with_or_without_bom_and_utf16_with_bom(tmp_path, encoding):
    path = _encodings(PAS_RESPONSE, tmp_path)[encoding]
    result = careflow("pas", "decision", str(path))
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["decision"] == "APPROVED"
    assert result.stderr == ""


@pytest.mark.parametrize("encoding", ["utf-8-bom", "utf-16-bom"])
def test_policy_validate_reads_utf8_bom_and_utf16_bom(tmp_path, encoding):
    path = _encodings(POLICY, tmp_path)[encoding]
    result = careflow("policy", "validate", str(path))
    assert result.code == 0, result.lines
    assert short(result) == "1 policy file(s) valid"


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('{"note": "café"}'.encode("latin-1"))
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xd8")
    not_json = tmp_path / "notes.json"
    not_json.write_text("patient list, see attachment\n", encoding="utf-8")
    return {
        "missing": (tmp_path / "nowhere.json", "cannot read: No such file or directory"),
        "directory": (tmp_path, "cannot read: Is a directory"),
        "not-json": (not_json, "not JSON: Expecting value (line 1, column 1)"),
        "latin-1": (latin1, "not UTF-8: byte 0xe9 at offset 13"),
        "binary": (binary, "not UTF-8: byte 0x89 at offset 0"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "not-json", "latin-1", "binary"])
def test_pas_decision_refuses_a_file_it_cannot_read_in_one_line(tmp_path, case):
    path, reason = _bad_files(tmp_path)[case]
    result = careflow("pas", "decision", str(path))
    assert result.code == 2
    assert result.stdout == ""
    line = short(result)
    assert line.startswith(f"error: {path}: ") and reason in line, line


@pytest.mark.parametrize("case", ["latin-1", "binary"])  # the rest: test_policies_cli
def test_policy_validate_refuses_a_file_it_cannot_read_in_one_line(tmp_path, case):
    path, reason = _bad_files(tmp_path)[case]
    result = careflow("policy", "validate", str(path))
    assert result.code == 2
    assert reason in result.stdout, result.lines
    assert len(result.lines) <= 3, result.lines


def test_an_unexpected_error_is_one_line_and_careflow_debug_shows_the_traceback(
    monkeypatch, capsys
):
    from careflow import cli

    def broken(args):
        raise RuntimeError("the disk is full\n  and more")

    monkeypatch.setattr(cli, "cmd_clock", broken)
    monkeypatch.delenv("CAREFLOW_DEBUG", raising=False)
    assert cli.main(["clock", "now"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "error: RuntimeError: the disk is full and more (CAREFLOW_DEBUG=1 shows the traceback)\n"
    )
    monkeypatch.setenv("CAREFLOW_DEBUG", "1")
    with pytest.raises(RuntimeError, match="the disk is full"):
        cli.main(["clock", "now"])


def test_an_unexpected_validation_error_names_fields_never_values(monkeypatch, capsys):
    from pydantic import BaseModel

    from careflow import cli

    class Patient(BaseModel):
        birth_date: int

    def broken(args):
        Patient(birth_date="Jane Doe 1961-04-02")

    monkeypatch.setattr(cli, "cmd_clock", broken)
    monkeypatch.delenv("CAREFLOW_DEBUG", raising=False)
    assert cli.main(["clock", "now"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ValidationError: invalid birth_date")
    assert "Jane" not in err and "1961" not in err and err.count("\n") == 1


# -- a cloud that is running, and one that is still starting -----------------------------------
class _FakeCloud:
    """What the control endpoint reads of a cloud."""

    def __init__(self) -> None:
        self.clock = clock.VirtualClock()
        self.ready = False

    def health(self) -> dict:
        return {"ready": self.ready, "endpoint": "http://127.0.0.1:0", "state_machines": 0}


@pytest.fixture
def control():
    port = free_port_run()
    fake = _FakeCloud()
    server = ControlServer(fake, port + 1).start()  # type: ignore[arg-type]
    yield port, fake
    server.stop()


def _post(port: int, path: str) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(
            urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST"), timeout=5
        ) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_control_endpoint_refuses_a_clock_that_goes_back_or_leaps(control):
    port, fake = control
    before = fake.clock.now()
    for seconds, title in [
        ("-60", "the clock never goes back: give a positive duration"),
        ("0", "the clock never goes back: give a positive duration"),
        ("nan", "the clock advance must be a number of seconds"),
        (str(367 * 86400), "at most 366 days per advance (asked for 367 d)"),
        ("soon", "seconds must be a number"),
    ]:
        status, body = _post(port + 1, f"/clock/advance?seconds={seconds}")
        assert (status, body) == (400, {"title": title, "status": 400}), seconds
    assert fake.clock.now() - before < timedelta(seconds=5)
    status, body = _post(port + 1, f"/clock/advance?seconds={366 * 86400}")
    assert status == 200
    assert datetime.fromisoformat(body["now"]) - before >= timedelta(days=366)


def test_wait_returns_once_the_cloud_says_it_is_ready(control):
    port, fake = control
    starting = careflow("wait", "--timeout", "1", "--port", str(port))
    assert starting.code == 1
    assert short(starting) == (
        f"error: the local cloud on http://127.0.0.1:{port} is still starting after 1 s "
        "(is `careflow up` running?)"
    )
    fake.ready = True
    ready = careflow(
        "wait", "--timeout", "20", env={"CAREFLOW_ENDPOINT": f"http://127.0.0.1:{port}"}
    )
    assert ready.code == 0, ready.lines
    assert short(ready) == f"ready: http://127.0.0.1:{port} (0 state machines)"


def test_the_endpoint_answers_503_until_ready_and_its_health_at_any_time():
    calls = []

    def app(environ, start_response):
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"moto"]

    state = {"ready": False}
    gated = readiness_gate(app, lambda: dict(state))
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(gated({"PATH_INFO": "/"}, start_response))
    assert seen["status"].startswith("503") and seen["headers"]["Retry-After"] == "1"
    assert b"starting" in body and calls == []
    assert json.loads(b"".join(gated({"PATH_INFO": HEALTH_PATH}, start_response))) == state
    state["ready"] = True
    assert b"".join(gated({"PATH_INFO": "/"}, start_response)) == b"moto"
    assert calls == ["/"]


def test_a_still_starting_cloud_is_one_line_for_commands_too():
    """The endpoint answers, but 503 and not ready: the command says so and how to wait."""
    from careflow.localcloud.server import MotoEndpoint

    port = free_port()
    endpoint = MotoEndpoint("127.0.0.1", port, lambda: {"ready": False}).start()
    try:
        result = careflow("tasks", "list", "--queue", "q", "--facility", "f", "--port", str(port))
    finally:
        endpoint.stop()
    assert result.code == 1
    assert short(result) == (
        f"error: the local cloud on http://127.0.0.1:{port} is still starting: "
        "`careflow wait` waits for it"
    )


def test_tasks_on_a_cloud_without_a_token_issuer_is_one_line(cloud):
    """A cloud started in process (no control endpoint, no API): `careflow tasks` says so."""
    result = careflow(
        "tasks", "list", "--queue", "q", "--facility", "fac-south", "--port", str(cloud.port)
    )
    assert result.code == 1
    assert short(result) == (
        f"error: no token issuer answers on port {cloud.port + 1} (the local cloud on "
        f"http://127.0.0.1:{cloud.port} was started without one: use `careflow up`)"
    )


@pytest.fixture
def served(cloud):
    """The session cloud with its control endpoint (token issuer, ``GET /api``) and API."""
    from careflow.localcloud.api_server import ISSUER_PATH, ApiServer, LocalIssuer

    issuer = LocalIssuer(f"http://127.0.0.1:{cloud.port + 1}{ISSUER_PATH}")
    control = ControlServer(cloud, cloud.port + 1, issuer).start()
    api = ApiServer(free_port(), issuer).start()
    control.api_url = api.url
    yield api
    api.stop()
    control.stop()


def test_tasks_list_on_a_running_cloud_takes_the_port_anywhere_or_careflow_endpoint(served, cloud):
    url = f"http://127.0.0.1:{cloud.port}"
    args = ["tasks", "list", "--queue", "no_such_queue", "--facility", "fac-south"]
    for result in (
        careflow("--port", str(cloud.port), *args),
        careflow(*args, "--port", str(cloud.port)),
        careflow(*args, env={"CAREFLOW_ENDPOINT": url}),
        careflow(*args, "--port", str(cloud.port), "--api-port", str(served.port)),
        careflow(*args, "--port", str(cloud.port), env={"CAREFLOW_API": served.url}),
    ):
        assert result.code == 0, result.lines
        assert json.loads(result.stdout) == []
