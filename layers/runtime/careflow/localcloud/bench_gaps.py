"""Executions per second of a Lambda-task state machine, with and without the gaps.

    PYTHONPATH=layers/runtime python -m careflow.localcloud.bench_gaps [--executions 50]

Modes (each on the same in-process moto server, fresh state machine each):

- ``stock``: moto as shipped, only ``LambdaSimpleBackend.invoke`` replaced by the same
  handler dispatch (so the Lambda tasks run code); ``boto_client_for`` builds a new
  boto3 client for every task;
- ``gaps``: :func:`careflow.localcloud.gaps.install` (cached clients, in-process Lambda);
- ``cached-http`` (optional): the gaps' client cache, but Lambda still invoked over
  HTTP through the server, to separate the two effects.

All executions are started concurrently, then ``describe_execution`` is polled until
all have finished. Never touches AWS: everything targets 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/bench"
MODES = ("stock", "gaps", "cached-http")


def _handler_dispatch(function: str, payload: bytes) -> tuple[bytes, str | None]:
    """A trivial handler for every function: count the step, echo the state."""
    event = json.loads(payload or b"{}")
    event["steps"] = int(event.get("steps", 0)) + 1
    return json.dumps(event).encode(), None


def _definition(tasks: int) -> dict[str, Any]:
    names = [f"Step{i}" for i in range(tasks)]
    states: dict[str, Any] = {}
    for i, name in enumerate(names):
        state: dict[str, Any] = {
            "Type": "Task",
            "Resource": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:bench-step-{i}",
        }
        if i + 1 < len(names):
            state["Next"] = names[i + 1]
        else:
            state["End"] = True
        states[name] = state
    return {"StartAt": names[0], "States": states}


@contextmanager
def moto_server() -> Iterator[str]:
    """An in-process moto server on a free port, executing state machines."""
    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    os.environ["MOTO_PORT"] = str(port)
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    default_user_config["lambda"]["use_docker"] = False
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@contextmanager
def _stock_lambda() -> Iterator[None]:
    """Only ``LambdaSimpleBackend.invoke`` replaced: the 'stock' baseline."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    original = LambdaSimpleBackend.__dict__["invoke"]

    def invoke(
        self: Any,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        payload = body.encode() if isinstance(body, str) else (body or b"{}")
        result, error = _handler_dispatch(function_name, payload)
        if error:
            response_headers["x-amz-function-error"] = error
        return result

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
    try:
        yield
    finally:
        LambdaSimpleBackend.invoke = original  # type: ignore[method-assign]


@contextmanager
def _mode(name: str) -> Iterator[None]:
    from careflow.clock import VirtualClock
    from careflow.localcloud import gaps

    if name == "stock":
        with _stock_lambda():
            yield
        return
    gaps.install(clock=VirtualClock(), invoke=_handler_dispatch)
    try:
        if name == "cached-http":
            # Keep the client cache but send Lambda calls over HTTP like stock moto.
            from moto.core.models import botocore_stubber
            from moto.settings import moto_server_port

            state = gaps._installed
            assert state is not None and state.boto_client_for is not None
            endpoint = (
                None if botocore_stubber.enabled else f"http://localhost:{moto_server_port()}"
            )
            state.clients[(REGION, "lambda#in-process", endpoint)] = state.boto_client_for(
                REGION, "lambda", None
            )
            with _stock_lambda():
                yield
        else:
            yield
    finally:
        gaps.uninstall()


def measure(
    endpoint: str, mode: str, executions: int = 50, tasks: int = 5, timeout: float = 600.0
) -> dict[str, Any]:
    """Start ``executions`` concurrently in ``mode``; time until all have finished."""
    import boto3
    from botocore.config import Config

    config = Config(max_pool_connections=max(10, executions))
    sfn = boto3.client("stepfunctions", endpoint_url=endpoint, region_name=REGION, config=config)
    machine = sfn.create_state_machine(
        name=f"bench-{mode}-{uuid.uuid4().hex[:6]}",
        definition=json.dumps(_definition(tasks)),
        roleArn=ROLE,
    )["stateMachineArn"]
    built: list[str] = []
    real_client: Callable[..., Any] = boto3.client

    def counting_client(*args: Any, **kwargs: Any) -> Any:
        built.append(str(kwargs.get("service_name") or (args[0] if args else "?")))
        return real_client(*args, **kwargs)

    with _mode(mode):
        boto3.client = counting_client
        try:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=min(executions, 50)) as pool:
                arns = list(
                    pool.map(
                        lambda i: sfn.start_execution(
                            stateMachineArn=machine, name=f"e{i}", input=json.dumps({"i": i})
                        )["executionArn"],
                        range(executions),
                    )
                )
            statuses = _wait_all(sfn, arns, timeout)
            elapsed = time.perf_counter() - t0
        finally:
            boto3.client = real_client
    succeeded = sum(1 for s in statuses.values() if s == "SUCCEEDED")
    return {
        "mode": mode,
        "executions": executions,
        "tasks_per_execution": tasks,
        "succeeded": succeeded,
        "seconds": round(elapsed, 2),
        "executions_per_second": round(executions / elapsed, 1),
        "boto3_clients_built": len(built),
    }


def _wait_all(sfn: Any, arns: list[str], timeout: float) -> dict[str, str]:
    pending = set(arns)
    statuses: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for arn in list(pending):
            status = sfn.describe_execution(executionArn=arn)["status"]
            if status != "RUNNING":
                statuses[arn] = status
                pending.discard(arn)
        if pending:
            time.sleep(0.05)
    statuses.update(dict.fromkeys(pending, "RUNNING"))
    return statuses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--modes", default="stock,gaps", help=f"comma-separated, of {MODES}")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}")
    results = []
    with moto_server() as endpoint:
        for mode in modes:
            result = measure(endpoint, mode, args.executions, args.tasks, args.timeout)
            results.append(result)
            print(json.dumps(result), flush=True)
    return 0 if all(r["succeeded"] == r["executions"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
