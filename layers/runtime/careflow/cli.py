"""The ``careflow`` command: the local cloud, the demo, human tasks, the clock, policies."""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

DEFAULT_PORT = 4566
CONTROL_PORT_OFFSET = 1  # the clock's control endpoint listens on port + 1

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``4h``, ``2d``."""
    m = _DURATION.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 90s, 15m, 4h, 2d)")
    value, unit = float(m.group(1)), m.group(2)
    return timedelta(seconds=value * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit])


def _quiet_logs() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    for name in ("werkzeug", "moto", "botocore", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _pick_port(port: int, say: Any) -> int:
    from careflow.localcloud.cloud import free_port, port_in_use

    if port_in_use(port):
        new = free_port()
        say(f"port {port} is in use; using {new}")
        return new
    return port


def cmd_up(args: argparse.Namespace) -> int:
    from careflow import clock
    from careflow.localcloud.cloud import LocalCloud
    from careflow.localcloud.control import ControlServer

    _quiet_logs()
    cloud = LocalCloud(
        args.port, virtual_clock=clock.VirtualClock(speed=args.speed), connectors=args.connectors
    ).start()
    control = ControlServer(cloud, args.port + CONTROL_PORT_OFFSET).start()
    stop = threading.Event()

    def _shutdown(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _shutdown)
    signal.signal(signal.SIGTERM, _shutdown)
    print(f"careflow local cloud on {cloud.endpoint}  (clock control on port {control.port})")
    print(
        "  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
        "AWS_DEFAULT_REGION=us-east-1"
    )
    print(f"  aws --endpoint-url {cloud.endpoint} stepfunctions list-state-machines")
    print(
        f"  aws --endpoint-url {cloud.endpoint} events put-events "
        "--entries file://examples/events/appointment-booked.json"
    )
    print("  Ctrl-C to stop", flush=True)
    try:
        stop.wait()
    finally:
        print("stopping ...", flush=True)
        control.stop()
        cloud.stop()
        print("stopped", flush=True)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from careflow.localcloud import demo

    _quiet_logs()
    try:
        demo.demos(args.workflow)
    except demo.UnknownWorkflow as exc:
        print(f"careflow demo: {exc}", file=sys.stderr)
        return 2
    port = _pick_port(args.port, (lambda m: print(m, file=sys.stderr)) if args.json else print)
    reports = demo.run(port, as_json=args.json, connectors=args.connectors, only=args.workflow)
    if args.json:
        print(json.dumps(reports, indent=2))
    return 0


def _store_and_engine(endpoint: str) -> tuple[Any, Any]:
    import boto3

    from careflow.adapters.aws import StepFunctionsEngine
    from careflow.adapters.dynamodb_state import DynamoStateStore
    from careflow.localcloud.cloud import REGION, TABLE_NAME

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return DynamoStateStore(client("dynamodb"), TABLE_NAME), StepFunctionsEngine(
        client("stepfunctions")
    )


def cmd_tasks(args: argparse.Namespace) -> int:
    from careflow import clock
    from careflow.domain.tasks import TaskError, claim_task, complete_task
    from careflow.localcloud.control import remote_now

    endpoint = f"http://127.0.0.1:{args.port}"
    store, engine = _store_and_engine(endpoint)
    now = remote_now(args.port + CONTROL_PORT_OFFSET) or clock.now()
    try:
        if args.action == "list":
            tasks = store.open_tasks(args.queue, args.facility)
            print(
                json.dumps(
                    [t.model_dump(mode="json", exclude={"task_token"}) for t in tasks], indent=2
                )
            )
        elif args.action == "claim":
            t = claim_task(store, task_id=args.task_id, actor=args.actor, now=now)
            print(json.dumps({"task_id": t.task_id, "status": t.status.value}))
        else:
            t = complete_task(
                store,
                engine,
                task_id=args.task_id,
                actor=args.actor,
                decision=args.decision,
                reason=args.reason,
                now=now,
            )
            print(
                json.dumps({"task_id": t.task_id, "status": t.status.value, "decision": t.decision})
            )
    except TaskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_clock(args: argparse.Namespace) -> int:
    from careflow.localcloud.control import call

    port = args.port + CONTROL_PORT_OFFSET
    if args.action == "advance":
        result = call(port, "POST", f"/clock/advance?seconds={args.by.total_seconds()}")
    else:
        result = call(port, "GET", "/clock")
    print(json.dumps(result))
    return 0


def cmd_pas(args: argparse.Namespace) -> int:
    from careflow.adapters.pas import PasError, decision_summary

    try:
        with open(args.file, encoding="utf-8") as handle:
            document = json.load(handle)
        print(json.dumps(decision_summary(document)))
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"error: {args.file} is not JSON (line {exc.lineno})", file=sys.stderr)
        return 2
    except PasError as exc:
        print(f"error: {exc.reason}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="careflow", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the local cloud until stopped")
    up.add_argument("--port", type=int, default=DEFAULT_PORT)
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
    up.set_defaults(fn=cmd_up)

    demo = sub.add_parser("demo", help="run the workflows' scenarios on a local cloud")
    demo.add_argument(
        "workflow", nargs="*", help="only these workflows' scenarios (ids; default: all)"
    )
    demo.add_argument("--port", type=int, default=DEFAULT_PORT)
    demo.add_argument("--json", action="store_true", help="print the cases as JSON")
    demo.add_argument("--connectors", choices=("http", "sandbox"), default="http")
    demo.set_defaults(fn=cmd_demo)

    tasks = sub.add_parser("tasks", help="the human task inbox of a running local cloud")
    tasks.add_argument("--port", type=int, default=DEFAULT_PORT)
    tsub = tasks.add_subparsers(dest="action", required=True)
    ls = tsub.add_parser("list")
    ls.add_argument("--queue", required=True)
    ls.add_argument("--facility", required=True)
    cl = tsub.add_parser("claim")
    cl.add_argument("task_id")
    cl.add_argument("--actor", required=True)
    co = tsub.add_parser("complete")
    co.add_argument("task_id")
    co.add_argument("--actor", required=True)
    co.add_argument("--decision", required=True)
    co.add_argument("--reason", default="")
    tasks.set_defaults(fn=cmd_tasks)

    clk = sub.add_parser("clock", help="read or advance the virtual clock of a running cloud")
    clk.add_argument("--port", type=int, default=DEFAULT_PORT)
    csub = clk.add_subparsers(dest="action", required=True)
    csub.add_parser("now")
    adv = csub.add_parser("advance")
    adv.add_argument("by", type=parse_duration)
    clk.set_defaults(fn=cmd_clock)

    pas = sub.add_parser("pas", help="Da Vinci PAS tools for integration engineers")
    psub = pas.add_subparsers(dest="action", required=True)
    dec = psub.add_parser(
        "decision", help="the payer's decision in a PAS response or notification Bundle"
    )
    dec.add_argument("file")
    pas.set_defaults(fn=cmd_pas)

    from careflow.policies.cli import register as register_policy

    register_policy(sub)
    __import__("careflow.events.cli", fromlist=["register"]).register(sub)  # careflow parked
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.fn(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
