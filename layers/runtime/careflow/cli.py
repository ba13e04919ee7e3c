"""The ``careflow`` command: the local cloud, the demo, human tasks, the clock, policies."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from careflow.localcloud.endpoint import (
    DEFAULT_PORT,
    CloudUnreachable,
    Endpoint,
    EndpointError,
    add_port_option,
    port_number,
    port_options,
    require_ready,
    resolve,
)

_DURATION = re.compile(r"^([+-]?\d+(?:\.\d+)?)([smhd])$")
# What argparse must take for a value rather than an option in `clock advance -1d`, so
# that the duration's own check can say why the clock does not go back.
_SIGNED_DURATION = re.compile(r"^-\d+(?:\.\d+)?[smhd]?$")

__all__ = ["DEFAULT_PORT", "build_parser", "main", "parse_duration"]


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``4h``, ``2d``."""
    m = _DURATION.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 90s, 15m, 4h, 2d)")
    value, unit = float(m.group(1)), m.group(2)
    return timedelta(seconds=value * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit])


def clock_advance(text: str) -> timedelta:
    """A duration the clock may move by: forward, at most a year and a day."""
    from careflow.localcloud.control import advance_refusal

    by = parse_duration(text)
    refusal = advance_refusal(by.total_seconds())
    if refusal:
        raise argparse.ArgumentTypeError(refusal)
    return by


def _quiet_logs() -> None:
    # the level the local cloud gives its handlers (careflow.localcloud.cloud), set before
    # the step logger is first built here: warnings and errors, one JSON line each
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    from careflow.observability import log_to_stderr

    log_to_stderr()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    for name in ("werkzeug", "moto", "botocore", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # moto's interpreter logs every Fail state and caught task error as an ERROR with its
    # whole parse tree; a designed end is not an error, and a bad one is reported by
    # careflow itself in one line ("execution ended badly", docs/runbook.md).
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)


def _pick_port(port: int, say: Any) -> int:
    """``demo`` only: a free port instead of a busy one (``up`` refuses a busy port)."""
    from careflow.localcloud.cloud import free_port_run, port_in_use

    if port_in_use(port) or port_in_use(port + 1):
        new = free_port_run()
        say(f"port {port} is in use; the demo uses {new}")
        return new
    return port


class _Refused(Exception):
    """A command cannot go on: one line, and the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def cmd_up(args: argparse.Namespace) -> int:
    from careflow.localcloud.endpoint import bind_error

    _quiet_logs()
    endpoint = resolve(args)
    port = endpoint.port
    for taken, what in (
        (port, "the local cloud"),
        (endpoint.control_port, "the control endpoint"),
        (args.api_port, "the API"),
        (args.mllp_port, "the MLLP listener"),
    ):
        refused = bind_error(taken)  # said at once, before the cloud's seconds of imports
        if refused is not None:
            raise _Refused(_busy(taken, what, refused))
    from careflow import clock
    from careflow.localcloud.api_server import ISSUER_PATH, LocalIssuer
    from careflow.localcloud.cloud import LocalCloud
    from careflow.localcloud.control import ControlServer

    cloud = LocalCloud(
        port, virtual_clock=clock.VirtualClock(speed=args.speed), connectors=args.connectors
    )
    issuer = LocalIssuer(f"http://127.0.0.1:{endpoint.control_port}{ISSUER_PATH}")
    # the control endpoint first: its /health says "not ready" while the cloud deploys
    try:
        control = ControlServer(cloud, endpoint.control_port, issuer).start()
    except OSError as exc:
        raise _Refused(_busy(endpoint.control_port, "the control endpoint", exc)) from None
    try:
        cloud.start()
    except OSError as exc:
        control.stop()
        raise _Refused(_busy(port, "the local cloud", exc)) from None
    except BaseException:
        control.stop()
        raise
    api = _start_api(args, issuer, stopping=(control, cloud))
    mllp = _start_mllp(args, stopping=(api, control, cloud))
    control.api_url = api.url  # `careflow tasks` finds the API through the control endpoint
    if args.seed_demo:
        _seed_demo(cloud, stopping=(mllp, api, control, cloud))
    stop = threading.Event()

    def _shutdown(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _shutdown)
    signal.signal(signal.SIGTERM, _shutdown)
    _banner(cloud.endpoint, control.port, api.url, port, mllp.port)
    print("  Ctrl-C to stop", flush=True)
    try:
        stop.wait()
    finally:
        print("stopping ...", flush=True)
        from careflow.localcloud.cloud import stop_together

        stop_together(mllp, api, control)  # the listeners first, together
        cloud.stop()
        print("stopped", flush=True)
    return 0


def _seed_demo(cloud: Any, stopping: Sequence[Any]) -> None:
    """``up --seed-demo``: every workflow's demo scenarios on the cloud just started, so it
    serves their instances, tasks and KPIs. A failure, or Ctrl-C, stops what started; a
    failure is one line."""
    from careflow.localcloud import demo

    print("seeding: every workflow's demo scenarios ...", flush=True)
    started = time.monotonic()
    try:
        reports = demo.seed(cloud)
        waiting = demo.seed_open_work(cloud)
    except KeyboardInterrupt:
        for server in stopping:
            server.stop()
        raise _Refused("careflow up --seed-demo: stopped while seeding", code=130) from None
    except Exception as exc:  # one line, not a traceback
        for server in stopping:
            server.stop()
        raise _Refused(f"careflow up --seed-demo: seeding failed: {_unexpected(exc)}") from None
    workflows = len({r.workflow for r in reports})
    took = time.monotonic() - started
    print(
        f"seeded: {len(reports)} demo case(s) of {workflows} workflow(s) in {took:.1f} s, "
        f"and {len(waiting)} instance(s) left waiting on people"
    )


def _banner(endpoint: str, control_port: int, api_url: str, port: int, mllp_port: int) -> None:
    print(f"careflow local cloud on {endpoint}  (control and health on port {control_port})")
    print(
        "  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
        "AWS_DEFAULT_REGION=us-east-1"
    )
    print(f"  aws --endpoint-url {endpoint} stepfunctions list-state-machines")
    print(
        f"  aws --endpoint-url {endpoint} events put-events "
        "--entries file://examples/events/appointment-booked.json"
    )
    _print_api(api_url, port, mllp_port)


def _start_api(args: argparse.Namespace, issuer: Any, stopping: Sequence[Any]) -> Any:
    """The API on ``--api-port``; a port taken while the cloud deployed stops the rest."""
    from careflow.localcloud.api_server import ApiServer, Throttle, UsagePlan

    api = ApiServer(
        args.api_port, issuer, throttle=Throttle(UsagePlan(args.api_rate, args.api_burst))
    )
    try:
        return api.start()
    except OSError as exc:
        for server in stopping:
            server.stop()
        raise _Refused(_busy(args.api_port, "the API", exc)) from None


def _start_mllp(args: argparse.Namespace, stopping: Sequence[Any]) -> Any:
    """The HL7 v2 listener on ``--mllp-port``: each frame through the HL7 v2 adapter,
    recorded in the cloud's table and published on its bus."""
    from careflow.adapters.hl7v2.mllp import MllpServer
    from careflow.adapters.hl7v2.mllp_service import handler

    try:
        return MllpServer(args.mllp_port, handler()).start()
    except OSError as exc:
        for server in stopping:
            server.stop()
        raise _Refused(_busy(args.mllp_port, "the MLLP listener", exc)) from None


def _print_api(url: str, port: int, mllp_port: int) -> None:
    port_flag = "" if port == DEFAULT_PORT else f" --port {port}"
    print(f"careflow API on {url}  (tokens from `careflow token`)")
    print(
        f"  TOKEN=$(careflow token{port_flag} --client partner-app "
        "--scopes workflows.read,workflows.write --facility fac-north)"
    )
    print(
        '  curl -H "Authorization: Bearer $TOKEN" '
        f'"{url}/instances?workflow=surgical-case-readiness"'
    )
    print(f"careflow operations page on {url.removesuffix('/v1')}/ops  (sign in as a role)")
    print(f"careflow MLLP listener (HL7 v2 ADT, SIU) on 127.0.0.1:{mllp_port}")


def _busy(port: int, what: str, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        flag = {"the API": "--api-port", "the MLLP listener": "--mllp-port"}.get(what, "--port")
        return f"port {port} is in use: {what} cannot start there (pass {flag} with a free port)"
    return f"{what} cannot listen on port {port}: {exc.strerror or exc}"


def cmd_wait(args: argparse.Namespace) -> int:
    from careflow.localcloud.endpoint import health

    endpoint = resolve(args)
    deadline = time.monotonic() + args.timeout
    while True:
        state = health(endpoint)
        if state and state.get("ready"):
            print(f"ready: {endpoint.url} ({state.get('state_machines', 0)} state machines)")
            return 0
        if time.monotonic() >= deadline:
            seen = "is still starting" if state else "does not answer"
            raise _Refused(
                f"the local cloud on {endpoint.url} {seen} after {args.timeout:g} s "
                "(is `careflow up` running?)"
            )
        time.sleep(0.2)


def cmd_demo(args: argparse.Namespace) -> int:
    from careflow.localcloud import demo

    _quiet_logs()
    try:
        demo.demos(args.workflow)
    except demo.UnknownWorkflow as exc:
        raise _Refused(f"careflow demo: {exc}", code=2) from None
    say = (lambda m: print(m, file=sys.stderr)) if args.json else print
    port = _pick_port(resolve(args).port, say)
    reports = demo.run(port, as_json=args.json, connectors=args.connectors, only=args.workflow)
    if args.json:
        print(json.dumps(reports, indent=2))
    return 0


# an API problem's status -> (the domain's refusal kind, the exit code; docs/runbook.md)
TASK_REFUSALS: dict[int, tuple[str, int]] = {
    404: ("not_found", 3),
    403: ("forbidden", 4),
    409: ("conflict", 5),
    422: ("invalid", 6),
    400: ("invalid", 6),  # a body the API refuses (a decision not in its form); list: 2
}


def cmd_tasks(args: argparse.Namespace) -> int:
    """Through the running cloud's ``/v1`` API over HTTP, with a token its issuer mints for
    ``--actor`` (``list`` without one: the CLI's own client token).

    Exit codes (docs/runbook.md): 0 done, 2 usage or a bad actors file, 3 no such task,
    4 forbidden (the actor's roles may not do that on the task's queue), 5 conflict (the
    task's state: claimed by another, not claimed, already done), 6 invalid (a decision
    the task does not offer); 1 for the rest (no cloud or API, a refused token, a usage
    plan's 429, a server error), each one line."""
    from careflow.localcloud import api_client

    what = f"careflow tasks {args.action}"
    endpoint = resolve(args)
    asked = _task_token_request(args, what)
    require_ready(endpoint)
    token = _control(endpoint, "token issuer", "POST", "/token", body=asked)["token"]
    try:
        base = api_client.api_url(endpoint, args.api_port)
        if args.action == "list":
            params = {"queue": args.queue, "facility": args.facility}
            found = api_client.call(base, "GET", "/tasks", token, params=params)
            print(json.dumps(found["items"], indent=2))
            return 0
        body: dict[str, Any] = {"reason": args.reason}
        if args.action == "reassign":
            body["to"] = args.to
        if args.action == "complete":
            body["decision"] = args.decision
            if args.document:
                body["documents"] = args.document
        path = f"/tasks/{quote(args.task_id, safe='')}/{args.action}"
        task = api_client.call(base, "POST", path, token, body=body)
    except api_client.ApiUnreachable as exc:
        raise _Refused(f"{what}: {exc}") from None
    except api_client.ApiAnswered as exc:
        raise _task_refused(what, exc, listing=args.action == "list") from None
    keys = ("task_id", "status", "claimed_by", "decision")
    print(json.dumps({k: task.get(k) for k in keys}))
    return 0


def cmd_kpis(args: argparse.Namespace) -> int:
    """``GET /v1/kpis`` of the running cloud, with a ``workflows.read`` token of the CLI's
    own client for ``--facility`` (default: every facility careflow serves); a table per
    workflow, or the API's answer as it is with ``--json``. 1 and one line for a refusal."""
    from careflow import facilities
    from careflow.localcloud import api_client
    from careflow.localcloud.api_client import CLI_CLIENT

    what = "careflow kpis"
    endpoint = resolve(args)
    named = [args.facility] if args.facility else sorted(facilities.facilities())
    require_ready(endpoint)
    asked = {"client": CLI_CLIENT, "scopes": ["workflows.read"], "facilities": named}
    token = _control(endpoint, "token issuer", "POST", "/token", body={**asked, "minutes": 5})
    params = {k: v for k, v in (("window", args.window), ("since", args.since)) if v}
    try:
        base = api_client.api_url(endpoint, args.api_port)
        report = api_client.call(base, "GET", "/kpis", token["token"], params=params)
    except api_client.ApiUnreachable as exc:
        raise _Refused(f"{what}: {exc}") from None
    except api_client.ApiAnswered as exc:
        raise _Refused(f"{what}: {exc.status} {exc.detail}") from None
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(kpi_table(report))
    return 0


def kpi_table(report: dict[str, Any]) -> str:
    """The report as text: the window, then a block per workflow (the generic KPIs, then
    the workflow's own, each on a line)."""
    from careflow.kpis import DEFINITIONS

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    def minutes(value: float | None) -> str:
        return "-" if value is None else f"{value:g}"

    def part(key: str, value: Any) -> str:
        if key.endswith("_minutes"):
            return f"{key.removesuffix('_minutes')} {minutes(value)} min"
        if key == "share":
            return share(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value} {key.replace('_', ' ')}"
        return f"{key.replace('_', ' ')} {'-' if value is None else value}"

    def own(value: Any) -> str:
        """A record (``{"decisions": 4, "p50_minutes": 90}``: "4 decisions, p50 90 min"),
        a tally by label (``{"pharmacy": 30}``: its non-zero entries), or a number."""
        if not isinstance(value, dict):
            return "-" if value is None else f"{value:g}"
        if all(re.fullmatch(r"[a-z0-9_]+", k) for k in value):
            return ", ".join(part(k, v) for k, v in value.items())
        return ", ".join(f"{k} {v:g}" for k, v in value.items() if v) or "none"

    def nested(value: Any) -> str:
        """:func:`own`, and a tally of records by label (by facility) one label each."""
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            return "; ".join(f"{k}: {own(v) or 'none'}" for k, v in value.items())
        return own(value)

    generic = {"workflow_id", *DEFINITIONS}
    window = report["window"]
    lines = [f"KPIs {window['since']} .. {window['until']} at {', '.join(report['facilities'])}"]
    if report.get("enterprise"):
        lines.append("\nenterprise")
        for name, kpi in report["enterprise"].items():
            value = share(kpi["value"]) if kpi["unit"] == "ratio" else nested(kpi["value"])
            sources = ", ".join(kpi["sources"]) or "no workflow"
            lines.append(f"  {name.replace('_', ' ')}: {value}  ({kpi['unit']}; from {sources})")
            if kpi.get("by_facility"):
                by = ", ".join(f"{f} {share(v)}" for f, v in kpi["by_facility"].items())
                lines.append(f"    by facility: {by}")
            if kpi.get("by_model"):
                by = ", ".join(f"{m} {share(v)}" for m, v in kpi["by_model"].items())
                lines.append(f"    by model: {by}")
    for wf in report["workflows"]:
        lines.append(f"\n{wf['workflow_id']}")
        counts = ("started", "completed", "failed", "cancelled", "running")
        lines.append("  " + "  ".join(f"{k} {wf[k]}" for k in counts))
        lines.append(
            f"  escalation rate {share(wf['escalation_rate'])}  "
            f"SLA adherence {share(wf['sla_adherence'])}"
        )
        for q in wf["open_tasks"]:
            lines.append(
                f"  open in {q['queue']}: {q['count']}, oldest {q['oldest_age_minutes']} min"
            )
        for name, value in wf.items():  # the workflow's own KPIs
            if name not in generic:
                lines.append(f"  {name.replace('_', ' ')}: {nested(value)}")
    return "\n".join(lines)


def _task_token_request(args: argparse.Namespace, what: str) -> dict[str, Any]:
    """What the issuer is asked for: ``tasks.work`` for the actor (``user:<id>``, its id the
    username), with the roles the actor directory gives them; the directory names no
    facilities, so the token names every facility careflow serves (``list``: its
    ``--facility``). The API still judges roles against each task's queue and facility."""
    from careflow import facilities
    from careflow.actors import ActorsFileError, directory
    from careflow.localcloud.api_client import CLI_CLIENT

    actor = args.actor
    try:
        roles = None if actor is None else sorted(directory().roles_of(actor))
        named = [args.facility] if args.action == "list" else sorted(facilities.facilities())
    except (ActorsFileError, facilities.FacilitiesFileError) as exc:
        raise _Refused(f"{what}: {exc}", code=2) from None
    return {
        "client": CLI_CLIENT,
        "scopes": ["tasks.work"],
        "facilities": named,
        "user": None if actor is None else actor.removeprefix("user:"),
        "roles": roles,
        "minutes": 5,
    }


def _task_refused(what: str, exc: Any, *, listing: bool) -> _Refused:
    status, detail = exc.status, exc.detail
    if status == 400 and listing:
        return _Refused(f"{what}: invalid: {detail}", code=2)
    if status in TASK_REFUSALS:
        kind, code = TASK_REFUSALS[status]
        return _Refused(f"{what}: {kind}: {detail}", code=code)
    if status == 401:
        return _Refused(f"{what}: the API refused the token (401): {detail}")
    if status == 429:
        wait = f" (retry after {exc.retry_after} s)" if exc.retry_after else ""
        return _Refused(f"{what}: over the API's usage plan (429){wait}: {detail}")
    return _Refused(f"{what}: the API failed ({status}): {detail}")


def _control(
    endpoint: Endpoint, what: str, method: str, path: str, body: Any = None
) -> dict[str, Any]:
    """A call to the running cloud's control endpoint; its refusal or absence is one line."""
    from careflow.localcloud.control import ControlRefused, call

    try:
        result: dict[str, Any] = call(endpoint.control_port, method, path, endpoint.host, body=body)
    except ControlRefused as exc:
        raise _Refused(f"the local cloud refused: {exc}", code=2) from None
    except OSError:
        raise _Refused(
            f"no {what} answers on port {endpoint.control_port} "
            f"(the local cloud on {endpoint.url} was started without one: use `careflow up`)"
        ) from None
    return result


def cmd_clock(args: argparse.Namespace) -> int:
    endpoint = resolve(args)
    require_ready(endpoint)
    if args.action == "advance":
        path = f"/clock/advance?seconds={args.by.total_seconds()}"
        result = _control(endpoint, "clock control", "POST", path)
    else:
        result = _control(endpoint, "clock control", "GET", "/clock")
    print(json.dumps(result))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Prints an access token minted by the running cloud's issuer (its key never leaves
    that process)."""
    from careflow.localcloud.api_server import token_refusal

    scopes = _listed(args.scopes)
    refusal = token_refusal(scopes, args.minutes)
    if refusal:
        raise _Refused(f"careflow token: {refusal}", code=2)
    endpoint = resolve(args)
    require_ready(endpoint)
    asked = {
        "client": args.client,
        "scopes": scopes,
        "facilities": [f for arg in args.facility for f in _listed(arg)],
        "user": args.user,
        "roles": None if args.roles is None else _listed(args.roles),
        "minutes": args.minutes,
    }
    result = _control(endpoint, "token issuer", "POST", "/token", body=asked)
    print(result["token"])
    return 0


def _listed(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def cmd_pas(args: argparse.Namespace) -> int:
    """Exit 0: read, and conformant; 1: read (the JSON is printed) but a person must look
    (decision UNKNOWN, or ``conformance`` problems); 2: not readable as PAS (one line)."""
    from careflow.adapters.pas import PasError, decision_summary
    from careflow.textfile import Unreadable, read_json

    try:
        document = read_json(args.file)
        summary = decision_summary(document)
        print(json.dumps(summary))
        if summary["conformance"] or summary["decision"] == "UNKNOWN":
            return 1
    except Unreadable as exc:
        raise _Refused(f"{args.file}: {exc}", code=2) from None
    except PasError as exc:
        raise _Refused(exc.reason, code=2) from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="careflow", description=__doc__)
    add_port_option(p)
    port = [port_options()]
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the local cloud until stopped", parents=port)
    up.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="virtual seconds per real second (e.g. 3600: an hour a second)",
    )
    up.add_argument(
        "--connectors",
        choices=("http", "sandbox"),
        default="http",
        help="protocol adapters against sandbox servers (default), or in-process",
    )
    up.add_argument(
        "--seed-demo",
        action="store_true",
        help="run every workflow's demo scenarios in it first, then keep serving "
        "(careflow kpis, the API and the ops page read what they left)",
    )
    _add_api_options(up)
    up.set_defaults(fn=cmd_up)
    _add_token_parser(sub, port)

    wait = sub.add_parser(
        "wait",
        help="wait until the local cloud answers and is ready (exit 1 on timeout)",
        parents=port,
    )
    wait.add_argument("--timeout", type=_seconds, default=60.0, metavar="SECONDS")
    wait.set_defaults(fn=cmd_wait)

    demo = sub.add_parser(
        "demo",
        help="run the workflows' scenarios on a local cloud (on a free port if --port is busy)",
        parents=port,
    )
    demo.add_argument(
        "workflow", nargs="*", help="only these workflows' scenarios (ids; default: all)"
    )
    demo.add_argument("--json", action="store_true", help="print the cases as JSON")
    demo.add_argument("--connectors", choices=("http", "sandbox"), default="http")
    demo.set_defaults(fn=cmd_demo)

    _add_tasks_parser(sub, port)

    clk = sub.add_parser(
        "clock", help="read or advance the virtual clock of a running cloud", parents=port
    )
    csub = clk.add_subparsers(dest="action", required=True)
    csub.add_parser("now", parents=port)
    adv = csub.add_parser(
        "advance", help="forward by a duration: 90s, 15m, 4h, 2d (at most 366d)", parents=port
    )
    adv.add_argument("by", type=clock_advance, metavar="DURATION")
    # `advance -1d` reaches the duration's check (which refuses it) rather than being
    # taken for an unknown option: argparse's own test for a negative number, widened.
    adv._negative_number_matcher = _SIGNED_DURATION
    clk.set_defaults(fn=cmd_clock)

    pas = sub.add_parser("pas", help="Da Vinci PAS tools for integration engineers")
    psub = pas.add_subparsers(dest="action", required=True)
    dec = psub.add_parser(
        "decision", help="the payer's decision in a PAS response or notification Bundle"
    )
    dec.add_argument("file")
    pas.set_defaults(fn=cmd_pas)

    from careflow.policies.cli import register as register_policy

    register_policy(sub, parents=port)
    from careflow.events.cli import register as register_parked

    register_parked(sub, parents=port)  # careflow parked
    return p


def _add_api_options(up: argparse.ArgumentParser) -> None:
    up.add_argument(
        "--mllp-port",
        type=port_number,
        default=2575,
        help="the HL7 v2 MLLP listener's port on 127.0.0.1 (default 2575)",
    )
    up.add_argument(
        "--api-port",
        type=port_number,
        default=8080,
        help="the /v1 API's port on 127.0.0.1 (default 8080)",
    )
    up.add_argument(
        "--api-rate",
        type=_positive(float),
        default=50.0,
        help="each client's usage plan: requests per second (default 50)",
    )
    up.add_argument(
        "--api-burst",
        type=_positive(int),
        default=100,
        help="each client's usage plan: burst (default 100)",
    )


def _add_tasks_parser(sub: Any, port: list[argparse.ArgumentParser]) -> None:
    tasks = sub.add_parser(
        "tasks",
        help="the human task inbox of a running local cloud, through its /v1 API",
        parents=port,
    )
    tsub = tasks.add_subparsers(dest="action", required=True)
    ls = tsub.add_parser(
        "list",
        help="open and claimed tasks of a queue at a facility, most urgent first (the task "
        "priority model's priority and reasons; unscored tasks after, by due time)",
        parents=port,
    )
    ls.add_argument("--queue", required=True)
    ls.add_argument("--facility", required=True)
    ls.add_argument(
        "--actor",
        type=_actor_id,
        help="list as this person (user:<id>); default: the CLI's own client token",
    )
    _add_api_port(ls)
    actor_help = "who does it: user:<id>, whose roles the actor directory names"
    for action, help_text in (
        ("claim", "take a task from its queue (before completing it)"),
        ("release", "put a claimed task back in its queue (its claimant, or a supervisor)"),
        ("reassign", "give a task to someone who may work its queue"),
        ("complete", "decide a claimed task: one of its allowed decisions"),
        ("acknowledge", "complete a claimed task that offers no decision"),
    ):
        act = tsub.add_parser(action, help=help_text, parents=port)
        act.add_argument("task_id")
        act.add_argument("--actor", required=True, type=_actor_id, help=actor_help)
        if action == "reassign":
            act.add_argument(
                "--to", required=True, type=_actor_id, help="the new claimant: user:<id>"
            )
        if action == "complete":
            act.add_argument("--decision", required=True)
            act.add_argument(
                "--document",
                action="append",
                metavar="ID",
                help="with ATTACHED: a patient's document id attached (DocumentReference/<id>);"
                " repeat for each",
            )
        act.add_argument("--reason", default="", help="why (audited; no patient details)")
        _add_api_port(act)
    tasks.set_defaults(fn=cmd_tasks)

    kpis = sub.add_parser(
        "kpis", help="the workflows' KPIs of a running local cloud (GET /v1/kpis)", parents=port
    )
    kpis.add_argument("--facility", help="one facility (default: every facility)")
    span = kpis.add_mutually_exclusive_group()
    span.add_argument("--window", help="an ISO 8601 duration back from now: P7D (default), PT12H")
    span.add_argument("--since", help="an ISO time with its offset")
    kpis.add_argument("--json", action="store_true", help="the API's answer as JSON")
    _add_api_port(kpis)
    kpis.set_defaults(fn=cmd_kpis)


def _add_api_port(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-port",
        type=port_number,
        default=None,
        help="the /v1 API's port (default: $CAREFLOW_API's, else the one the running "
        "cloud serves it on, else 8080)",
    )


def _actor_id(text: str) -> str:
    from careflow.actors import ACTOR_PATTERN

    if not re.match(ACTOR_PATTERN, text):
        raise argparse.ArgumentTypeError(f"not an actor id: {text!r} (user:<id>)")
    return text


def _add_token_parser(sub: Any, port: list[argparse.ArgumentParser]) -> None:

    from careflow.ml import cli as models_cli

    models_cli.register(sub, port)

    tok = sub.add_parser(
        "token",
        help="print an access token for the local API, minted by the running cloud",
        parents=port,
    )
    tok.add_argument("--client", required=True, help="the app client id (client_id)")
    tok.add_argument(
        "--scopes", required=True, help="comma-separated, e.g. workflows.read,tasks.work"
    )
    tok.add_argument(
        "--facility",
        action="append",
        default=[],
        help="a facility the token names (repeat, or comma-separate)",
    )
    tok.add_argument("--user", help="a person's username (task actions act as user:<name>)")
    tok.add_argument("--roles", help="comma-separated: narrows the person's roles")
    tok.add_argument("--minutes", type=float, default=60.0, help="lifetime (default 60)")
    tok.set_defaults(fn=cmd_token)


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"give a positive number, not {text}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"give 0 < SECONDS <= 3600, not {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Every failure a person can meet is one line on stderr; ``CAREFLOW_DEBUG=1`` shows
    the traceback of an unexpected one. argparse's own errors (usage, exit 2) stay."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.fn(args)
        return code
    except _Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except (CloudUnreachable, EndpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader (e.g. `| head`) has gone: nothing to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the interpreter's final flush
        return 0
    except Exception as exc:
        if os.environ.get("CAREFLOW_DEBUG") == "1":
            raise
        print(f"error: {_unexpected(exc)} (CAREFLOW_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


def _unexpected(exc: BaseException) -> str:
    """The exception's type and message on one line; for a validation error only where it
    failed, never the values (they may be a patient's)."""
    errors = getattr(exc, "errors", None)
    if type(exc).__name__ == "ValidationError" and callable(errors):
        where = ", ".join(".".join(map(str, e.get("loc", ()))) or "?" for e in errors()[:3])
        return f"ValidationError: invalid {where}"
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
