"""``make bench``: executions per second, local cloud vs stock moto, for the mix of every
registered workflow and for surgical case readiness alone.

Both modes use the same moto server, the same ASL (rendered from the catalog), the same
handlers and the same cases. ``stock`` is moto's interpreter with
``execute_state_machine`` and a single addition, a hook that runs the handler where
moto's Lambda backend would echo its input. ``local`` is ``careflow up``'s cloud, with
moto patched by :mod:`careflow.localcloud.moto` (cached clients, in-process Lambda, ...).

Before the speed runs (unless ``--no-cost``), what a case costs on AWS per registered
workflow, from the execution histories of its demo cases (:mod:`careflow.localcloud.cost`,
run in a child process so that the speed runs start from the same process as without it):
one ``cost workflow=<id> transitions=<n> lambda_invocations=<n> usd_per_1000=<x>`` line
per workflow with a demo, and one for the surgical happy path (``... case=appt-1001 ...``).

Then (unless ``--no-api``) the local ``/v1`` API under 32 concurrent clients:
``api route=GET/v1/instances/{id} clients=32 requests=<n> p50_ms=<x> p99_ms=<x>
req_per_s=<n> target_p99_ms=50``; and (unless ``--no-mllp``) HL7 v2 over MLLP on loopback
into the local cloud, one sender waiting for each ACK:
``mllp messages=<n> msg_per_s=<n> ack_p50_ms=<x> ack_p99_ms=<x>``.

The speed runs. First surgical case readiness's all-clear case alone, as the bench has
always measured it (``--executions``, ``--stock-executions``): a table of both modes and
``surgical ratio=<local/stock> local_exec_per_s=<n> stock_exec_per_s=<n>``. Then (unless
``--no-mix``) the mix: every registered workflow whose spec names a bench case
(``Workflow.bench``, :mod:`careflow.kit.bench`), one after another in one cloud per mode,
``--mix-executions`` (local) and ``--mix-stock-executions`` (stock) executions of each
started together and timed until all end. A case that waits for people or later events
has a driver (``drive`` beside its case, :mod:`careflow.kit.bench`): the bench hands it
each execution once started (:class:`Drivers`, a few worker threads), and it approves the
tasks or puts the events as the outside world would. Its work runs during the timed
interval, in this process: a driven workflow's seconds include its drivers' polls,
decisions and events. Before a driven case starts, the bench writes the subject record
intake would (so that the driver's later events find the instance). One line per workflow:

- ``mix workflow=<id> local_exec_per_s=<x> stock_exec_per_s=<y> ratio=<r>``;
- ``mix workflow=<id> local_exec_per_s=<x> stock=unsupported (<reason>)`` when stock moto
  does not bring its case to ``SUCCEEDED`` (its first execution fails, has not ended after
  ``STOCK_PROBE_SECONDS``, or its driver failed: e.g. stock moto's EventBridge delivers
  to no Lambda target, so a driver's event never reaches intake);
- ``mix workflow=<id> excluded (<why>)`` for a workflow without one (its spec's
  ``bench_excluded``, or ``no bench case``).

The last line is the mix: ``ratio=<local/stock> local_exec_per_s=<n> stock_exec_per_s=<n>
workflows=<k>``, over the ``k`` workflows both modes ran (all executions of those
workflows over all their seconds, in each mode); when stock moto could not run some,
`` stock_unsupported=<id>,...`` follows, and they are not in the ratio. With ``--no-mix``
the ``surgical ratio=...`` line is the last.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from careflow.domain import intake
from careflow.kit import bench as kit_bench
from careflow.kit.bench import BenchCase, BenchDriver, load, load_driver
from careflow.kit.registry import workflow as _workflow
from careflow.kit.registry import workflows
from careflow.localcloud.cloud import LocalCloud, free_port

# The one workflow this module names: the bench's history is surgical readiness's
# all-clear case (appt-1001: 11 Lambda tasks, a Parallel of five, one putEvents), kept as
# its own line; the mix takes every workflow from the registry.
SURGICAL_CASE_READINESS = _workflow("surgical-case-readiness")

WORKFLOW = SURGICAL_CASE_READINESS.id


def _surgical_case() -> BenchCase:
    assert SURGICAL_CASE_READINESS.bench, "surgical readiness names its bench case"
    return load(SURGICAL_CASE_READINESS.bench)


def _start_all(
    cloud: LocalCloud,
    run: str,
    n: int,
    case: BenchCase | None = None,
    drivers: Drivers | None = None,
) -> list[str]:
    """Starts ``n`` executions of the case (surgical readiness's by default); with
    ``drivers``, hands each started execution to its case's driver."""
    sfn = cloud.client("stepfunctions")
    case = case or _surgical_case()
    requests = []
    for i in range(n):
        key = f"{run}-{i}"
        request = intake.accept(case(cloud, key), state_machine_arns=cloud.state_machine_arns)
        assert isinstance(request, intake.StartRequest), "a bench case is a start event"
        requests.append((key, request))

    def start(keyed: tuple[str, intake.StartRequest]) -> str:
        key, req = keyed
        if drivers is not None and req.subject_id is not None:
            claim_subject(cloud, req)
        arn: str = sfn.start_execution(
            stateMachineArn=req.state_machine_arn, name=req.instance_id, input=json.dumps(req.input)
        )["executionArn"]
        if drivers is not None:
            drivers.drive(cloud, key, req.instance_id)
        return arn

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(start, requests))


def claim_subject(cloud: LocalCloud, req: intake.StartRequest) -> None:
    """The subject record intake writes before it starts an instance: a driver's later
    events for the subject (an A03) find the running instance by it. Only for driven
    cases: the others hear no later event, and start as the bench always started them."""
    from careflow import wiring
    from careflow.domain.records import SubjectRecord

    assert req.subject_id is not None
    wiring.store().claim_subject(
        SubjectRecord(
            workflow_id=req.workflow_id,
            facility_id=req.facility_id,
            subject_id=req.subject_id,
            instance_id=req.instance_id,
            event_id=req.event_id,
            at=cloud.clock.now(),
            occurred_at=req.occurred_at,
        )
    )


@dataclass
class Drivers:
    """A case's driver (:mod:`careflow.kit.bench`) at work on each execution of a run, in
    a pool of :data:`careflow.kit.bench.DRIVER_THREADS` worker threads."""

    driver: BenchDriver
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(
            max_workers=kit_bench.DRIVER_THREADS, thread_name_prefix="bench-driver"
        )
    )
    futures: list[Future[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        kit_bench.STOP.clear()

    def drive(self, cloud: LocalCloud, key: str, instance_id: str) -> None:
        self.futures.append(self.pool.submit(self.driver, cloud, key, instance_id))

    def failed(self) -> bool:
        """A driver has failed (not stopped by the bench): its execution will not end."""
        return any(
            f.done()
            and f.exception() is not None
            and not isinstance(f.exception(), kit_bench.DriverStopped)
            for f in self.futures
        )

    def finish(self) -> str | None:
        """Stops the drivers still waiting (the run is over) and waits for them: the first
        driver's error, if one failed before the stop."""
        kit_bench.STOP.set()
        self.pool.shutdown(wait=True)
        kit_bench.STOP.clear()
        errors = [f.exception() for f in self.futures]
        failed = [e for e in errors if e is not None and not isinstance(e, kit_bench.DriverStopped)]
        stopped = [e for e in errors if isinstance(e, kit_bench.DriverStopped)]
        first = (failed or stopped or [None])[0]
        return " ".join(str(first).split())[:160] if first is not None else None


POLL_SECONDS = 0.05  # between describes while many executions still run
LAST_POLL_SECONDS = 0.005  # for the last few: the run's end is seen within 5 ms, not 50
LAST_FEW = 3


def _drop_metrics() -> None:
    """Empties the handlers' shared Powertools metric set. Nothing flushes it in-process,
    and Powertools prints it to stdout (as EMF JSON, whatever POWERTOOLS_METRICS_DISABLED
    says) once one metric holds 100 values: in the middle of the bench's lines."""
    from careflow.observability import metrics

    metrics.clear_metrics()


def _wait_all(
    cloud: LocalCloud,
    arns: list[str],
    timeout: float,
    given_up: Callable[[], bool] = lambda: False,
) -> dict[str, int]:
    """Waits for each execution in turn with one cheap describe at a time: a list call
    over every execution would compete with the executions for the interpreter's core.
    Polls are sparse while many run and close together for the last few, so that when
    the run ended is known to a few milliseconds (for either mode). ``given_up()`` true
    (a driver failed: its execution will not end) ends the wait as the timeout would.
    """
    sfn = cloud.client("stepfunctions")
    counts: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    for index, arn in enumerate(arns):
        pause = LAST_POLL_SECONDS if len(arns) - index <= LAST_FEW else POLL_SECONDS
        while True:
            status = sfn.describe_execution(executionArn=arn)["status"]
            if status != "RUNNING":
                counts[status] = counts.get(status, 0) + 1
                break
            if time.monotonic() > deadline or given_up():
                counts["TIMED_OUT"] = counts.get("TIMED_OUT", 0) + 1
                break
            time.sleep(pause)
    _drop_metrics()
    return counts


def measure(mode: str, executions: int, timeout: float = 600.0) -> dict[str, Any]:
    with LocalCloud(free_port(), payer_ticker=False, fill_gaps=(mode == "local")) as cloud:
        warm = _start_all(cloud, f"warm-{mode}", 2)  # imports and first-call costs
        _wait_all(cloud, warm, timeout)
        t0 = time.perf_counter()
        arns = _start_all(cloud, f"run-{mode}", executions)
        counts = _wait_all(cloud, arns, timeout)
        elapsed = time.perf_counter() - t0
    if counts.get("SUCCEEDED") != executions:
        raise SystemExit(f"{mode}: not every execution succeeded: {counts}")
    return {
        "mode": mode,
        "executions": executions,
        "seconds": round(elapsed, 2),
        "exec_per_s": round(executions / elapsed, 1),
    }


STOCK_PROBE_SECONDS = 60.0  # a stock execution not ended by then: its case is unsupported
MIX_EXECUTIONS = 60  # local executions of each workflow of the mix
MIX_STOCK_EXECUTIONS = 10  # stock moto's: it is slow


@dataclass
class MixResult:
    """One workflow of the mix in one mode: executions per second, or why it did not run."""

    workflow_id: str
    executions: int = 0
    seconds: float = 0.0
    unsupported: str | None = None

    @property
    def exec_per_s(self) -> float:
        return self.executions / self.seconds if self.seconds else 0.0


def _failure(
    cloud: LocalCloud, arns: list[str], counts: dict[str, int], driver: str | None = None
) -> str:
    """Why a run did not succeed, in a few words: the first failed execution's error, or
    for one still running, its driver's error or what the driver was waiting for."""
    sfn = cloud.client("stepfunctions")
    for arn in arns:
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] == "RUNNING" and driver:
            return f"{driver}; the execution still running"
        if d["status"] == "RUNNING":
            return "still running after the wait"
        if d["status"] != "SUCCEEDED":
            error = d.get("error") or d["status"]
            cause = " ".join(str(d.get("cause") or "").split())[:80]
            return f"{error}: {cause}" if cause else str(error)
    return driver or f"not every execution succeeded: {counts}"


def _never() -> bool:
    return False


def _mix_run(
    cloud: LocalCloud,
    mode: str,
    workflow_id: str,
    case: BenchCase,
    executions: int,
    driver: BenchDriver | None = None,
) -> MixResult:
    probe_timeout = STOCK_PROBE_SECONDS if mode == "stock" else 120.0
    drivers = Drivers(driver) if driver else None
    warm = _start_all(cloud, f"mix-warm-{mode}-{workflow_id}", 1, case, drivers)
    counts = _wait_all(cloud, warm, probe_timeout, drivers.failed if drivers else _never)
    failed = drivers.finish() if drivers else None
    if counts.get("SUCCEEDED") != 1:
        return MixResult(workflow_id, unsupported=_failure(cloud, warm, counts, failed))
    # the seconds run from the first start to the last end: the drivers' work is in them
    drivers = Drivers(driver) if driver else None
    t0 = time.perf_counter()
    arns = _start_all(cloud, f"mix-{mode}-{workflow_id}", executions, case, drivers)
    counts = _wait_all(cloud, arns, 600.0, drivers.failed if drivers else _never)
    elapsed = time.perf_counter() - t0
    failed = drivers.finish() if drivers else None
    if counts.get("SUCCEEDED") != executions:
        return MixResult(workflow_id, unsupported=_failure(cloud, arns, counts, failed))
    return MixResult(workflow_id, executions, elapsed)


def measure_mix(mode: str, executions: int) -> dict[str, MixResult]:
    """Each registered workflow's bench case in one cloud, one workflow after another: a
    warm-up execution (which also tells whether the mode runs the case at all), then
    ``executions`` started together and timed until all end."""
    results: dict[str, MixResult] = {}
    with LocalCloud(free_port(), payer_ticker=False, fill_gaps=(mode == "local")) as cloud:
        for wf in workflows():
            if wf.bench is None:
                continue
            case, driver = load(wf.bench), load_driver(wf.bench)
            results[wf.id] = _mix_run(cloud, mode, wf.id, case, executions, driver)
    return results


def mix_lines(local: dict[str, MixResult], stock: dict[str, MixResult]) -> list[str]:
    """A line per registered workflow, then the mix's (the last)."""
    lines = []
    both: list[str] = []
    unsupported: list[str] = []
    for wf in workflows():
        if wf.id not in local:
            why = wf.bench_excluded or "no bench case"
            lines.append(f"mix workflow={wf.id} excluded ({why})")
            continue
        mine = local[wf.id]
        if mine.unsupported:
            raise SystemExit(f"local: {wf.id}'s bench case did not succeed: {mine.unsupported}")
        theirs = stock[wf.id]
        if theirs.unsupported:
            unsupported.append(wf.id)
            lines.append(
                f"mix workflow={wf.id} local_exec_per_s={mine.exec_per_s:.1f} "
                f"stock=unsupported ({theirs.unsupported})"
            )
            continue
        both.append(wf.id)
        lines.append(
            f"mix workflow={wf.id} local_exec_per_s={mine.exec_per_s:.1f} "
            f"stock_exec_per_s={theirs.exec_per_s:.2f} "
            f"ratio={mine.exec_per_s / theirs.exec_per_s:.1f}"
        )
    if not both:
        raise SystemExit("mix: stock moto ran none of the bench cases")

    def rate(results: dict[str, MixResult]) -> float:
        return sum(results[w].executions for w in both) / sum(results[w].seconds for w in both)

    local_rate, stock_rate = rate(local), rate(stock)
    last = (
        f"ratio={local_rate / stock_rate:.1f} local_exec_per_s={local_rate:.1f} "
        f"stock_exec_per_s={stock_rate:.2f} workflows={len(both)}"
    )
    if unsupported:
        last += f" stock_unsupported={','.join(unsupported)}"
    return [*lines, last]


# What a handler would pay with the usual eager imports: all of the FHIR models a
# careflow handler may touch, Powertools' logger, metrics and tracer, and boto3 with a client.
NAIVE_IMPORT = """
import boto3, pydantic
from aws_lambda_powertools import Logger, Metrics, Tracer
import fhir.resources.R4B
from fhir.resources.R4B import (appointment, patient, coverage, claim, claimresponse, bundle,
    servicerequest, encounter, task, location, practitioner, practitionerrole, organization,
    slot, schedule, supplyrequest, supplydelivery, invoice, coverageeligibilityrequest,
    coverageeligibilityresponse)
boto3.client("dynamodb", region_name="us-east-1")
"""


def _import_ms(code: str, runs: int) -> float:
    """The best of ``runs`` fresh interpreters importing ``code`` (milliseconds)."""
    import subprocess

    probe = (
        "import time\nt = time.perf_counter()\n"
        + code
        + "\nprint((time.perf_counter() - t) * 1000)"
    )
    env = {
        **os.environ,
        "TABLE_NAME": "t",
        "EVENT_BUS_NAME": "b",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "Careflow",
        "POWERTOOLS_SERVICE_NAME": "careflow",
    }
    times = []
    for _ in range(runs):
        out = subprocess.run(  # noqa: S603 - this interpreter, our own probe
            [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return min(times)


def cold_starts(runs: int = 3) -> list[tuple[str, float]]:
    from careflow.catalog import all_functions

    def probe(spec: Any) -> str:
        # A step function: the generic entry point, then its own step's module (only it).
        if spec.step:
            return (
                f"import lambdas.step; from careflow.kit.steps import lookup; lookup({spec.step!r})"
            )
        return f"import lambdas.{spec.module}"

    return [
        (spec.name, _import_ms(probe(spec), runs))
        for spec in sorted(all_functions().values(), key=lambda f: f.name)
    ]


def cost_lines() -> list[str]:
    """:mod:`careflow.localcloud.cost` in a fresh interpreter: its lines."""
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", "careflow.localcloud.cost"],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:  # an uncaught error is logged on stdout, as JSON, last
        tail = "\n".join(out.stdout.splitlines()[-3:])[-3000:]
        raise SystemExit(f"cost: exit {out.returncode}\n{tail}\n{out.stderr[-2000:]}")
    return out.stdout.strip().splitlines()


API_CLIENTS = 32  # concurrent partner clients for the local API's latency line
API_TARGET_P99_MS = 50.0


def api_latency(requests_per_client: int = 20, clients_in: str = "process") -> dict[str, float]:
    """``GET /v1/instances/{id}`` on the local API (gateway: JWT check, scope, usage plan;
    the handler; DynamoDB on the local cloud) under :data:`API_CLIENTS` concurrent
    closed-loop clients on keep-alive connections: p50 and p99 latency (ms) and requests
    per second. The clients run in a process of their own (``clients_in="process"``,
    :mod:`careflow.localcloud.api_clients`), as partners do, or as threads of this
    process (``"threads"``, the first method: their CPU contends with the server's under
    one interpreter lock)."""
    import statistics
    import subprocess

    from careflow.localcloud import api_clients
    from careflow.localcloud.api_server import ApiServer, LocalIssuer, Throttle, UsagePlan

    with LocalCloud(free_port(), payer_ticker=False, fill_gaps=True) as cloud:
        (arn,) = _start_all(cloud, "api", 1)
        _wait_all(cloud, [arn], 120.0)
        instance_id = arn.rsplit(":", 1)[1]
        issuer = LocalIssuer("http://127.0.0.1/issuer")
        unlimited = Throttle(plans={"bench": UsagePlan(rate=1e9, burst=10**9)})
        server = ApiServer(free_port(), issuer, throttle=unlimited).start()
        token = issuer.mint(client="bench", scopes=["workflows.read"], facilities=["fac-north"])
        path = f"/v1/instances/{instance_id}"
        try:
            if clients_in == "threads":
                result = api_clients.run(server.port, path, token, API_CLIENTS, requests_per_client)
            else:
                out = subprocess.run(  # noqa: S603 - this interpreter, our own module
                    [
                        sys.executable,
                        "-m",
                        api_clients.__name__,
                        str(server.port),
                        path,
                        str(API_CLIENTS),
                        str(requests_per_client),
                    ],
                    capture_output=True,
                    text=True,
                    env={**os.environ, "CAREFLOW_BENCH_TOKEN": token},
                    check=False,
                )
                if out.returncode != 0:
                    raise SystemExit(f"api clients: exit {out.returncode}\n{out.stderr[-2000:]}")
                result = json.loads(out.stdout)
        finally:
            server.stop()
    latencies: list[float] = result["latencies_ms"]  # type: ignore[assignment]
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "p50_ms": statistics.median(latencies),
        "p99_ms": cuts[98],
        "req_per_s": len(latencies) / float(result["seconds"]),  # type: ignore[arg-type]
    }


MLLP_MESSAGES = 300  # ADT A01s on one connection, each waiting for its ACK, as a sender does


def mllp_throughput(messages: int = MLLP_MESSAGES) -> dict[str, float]:
    """HL7 v2 over MLLP on loopback into the local cloud: each message recorded in the
    state table before its AA, its event put on the bus; one sender that waits for each
    ACK (as interface engines do). Messages per second and p50/p99 ACK latency (ms)."""
    import socket
    import statistics

    from careflow.adapters.hl7v2.mllp import END, MllpServer, frame
    from careflow.adapters.hl7v2.mllp_service import handler

    a01 = (
        "MSH|^~\\&|ADT|NVMC|CAREFLOW|CAREFLOW|20261130080000||ADT^A01^ADT_A01|{id}|P|2.5.1\r"
        "PID|1||MRN{n}^^^NVMC^MR\r"
        "PV1|1|I|4W^401^A||||||||||||||||V{n}|||||||||||||||||||||||||20261130075500\r"
    )
    with (
        LocalCloud(free_port(), payer_ticker=False, fill_gaps=True),
        MllpServer(free_port(), handler()) as listener,
        socket.create_connection(("127.0.0.1", listener.port), timeout=30) as conn,
    ):
        run = uuid.uuid4().hex[:8]
        times = []
        t0 = time.perf_counter()
        for n in range(messages):
            started = time.perf_counter()
            conn.sendall(frame(a01.format(id=f"B{run}{n}", n=n)))
            answer = b""
            while not answer.endswith(END):
                chunk = conn.recv(65536)
                if not chunk:
                    raise SystemExit("mllp: the listener closed the connection")
                answer += chunk
            times.append((time.perf_counter() - started) * 1000)
            if b"MSA|AA|" not in answer:
                raise SystemExit(f"mllp: message {n} was not acknowledged AA")
        elapsed = time.perf_counter() - t0
    cuts = statistics.quantiles(times, n=100)
    return {
        "messages": messages,
        "msg_per_s": messages / elapsed,
        "p50_ms": statistics.median(times),
        "p99_ms": cuts[98],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--executions", type=int, default=60)
    p.add_argument(
        "--stock-executions",
        type=int,
        default=20,
        help="stock moto is slow; fewer executions measure it as well",
    )
    p.add_argument(
        "--mix-executions",
        type=int,
        default=MIX_EXECUTIONS,
        help="local executions of each workflow in the mix",
    )
    p.add_argument(
        "--mix-stock-executions",
        type=int,
        default=MIX_STOCK_EXECUTIONS,
        help="stock moto's executions of each workflow in the mix",
    )
    p.add_argument("--no-mix", action="store_true", help="skip the mix of all workflows")
    p.add_argument(
        "--no-cold-start", action="store_true", help="skip the handlers' cold-start section"
    )
    p.add_argument(
        "--no-cost", action="store_true", help="skip the cost per case (demo histories) section"
    )
    p.add_argument("--no-api", action="store_true", help="skip the local API's latency line")
    p.add_argument("--no-mllp", action="store_true", help="skip the MLLP line")
    p.add_argument(
        "--no-models", action="store_true", help="skip the triage models' lines (vs scikit-learn)"
    )
    p.add_argument("--model-samples", type=int, default=300, help="predictions per model")
    p.add_argument("--mllp-messages", type=int, default=MLLP_MESSAGES)
    p.add_argument(
        "--api-requests", type=int, default=20, help="requests per API client (32 clients)"
    )
    p.add_argument(
        "--api-clients-in",
        choices=("process", "threads"),
        default="process",
        help="the API clients in a process of their own (as partners) or as threads here",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    for name in ("werkzeug", "moto", "botocore"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # stock moto answers a PutEvents it cannot deliver with a 500 and werkzeug logs the
    # traceback; the mix line says so in one line (stock=unsupported (...))
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
    if not args.no_cold_start:
        handlers = cold_starts()
        naive = _import_ms(NAIVE_IMPORT, 3)
        print("cold start: import and init of each handler module in a fresh interpreter")
        print(f"  {'handler':<28}{'ms':>7}")
        for module, ms in handlers:
            print(f"  {module:<28}{ms:>7.0f}")
        slowest = max(ms for _, ms in handlers)
        print(f"  {'naive eager imports':<28}{naive:>7.0f}")
        print(
            f"cold_start_slowest_ms={slowest:.0f} naive_ms={naive:.0f} "
            f"speedup={naive / slowest:.2f}"
        )
    if not args.no_cost:
        for line in cost_lines():
            print(line, flush=True)
    if not args.no_api:
        api = api_latency(args.api_requests, args.api_clients_in)
        print(
            f"api route=GET/v1/instances/{{id}} clients={API_CLIENTS} requests={api['requests']} "
            f"p50_ms={api['p50_ms']:.1f} p99_ms={api['p99_ms']:.1f} "
            f"req_per_s={api['req_per_s']:.0f} target_p99_ms={API_TARGET_P99_MS:.0f}",
            flush=True,
        )
    if not args.no_mllp:
        mllp = mllp_throughput(args.mllp_messages)
        print(
            f"mllp messages={mllp['messages']:.0f} msg_per_s={mllp['msg_per_s']:.0f} "
            f"ack_p50_ms={mllp['p50_ms']:.1f} ack_p99_ms={mllp['p99_ms']:.1f}",
            flush=True,
        )
    if not args.no_models:
        from careflow.ml import bench as model_bench

        for line in model_bench.lines(args.model_samples):
            print(line, flush=True)
    stock = measure("stock", args.stock_executions)
    local = measure("local", args.executions)
    print(f"{'mode':<7}{'executions':>11}{'seconds':>9}{'exec/s':>8}")
    for r in (stock, local):
        print(f"{r['mode']:<7}{r['executions']:>11}{r['seconds']:>9}{r['exec_per_s']:>8}")
    ratio = local["exec_per_s"] / stock["exec_per_s"]
    print(
        f"surgical ratio={ratio:.1f} local_exec_per_s={local['exec_per_s']} "
        f"stock_exec_per_s={stock['exec_per_s']}",
        flush=True,
    )
    if not args.no_mix:
        mix_stock = measure_mix("stock", args.mix_stock_executions)
        mix_local = measure_mix("local", args.mix_executions)
        for line in mix_lines(mix_local, mix_stock):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
