"""``careflow up``: the catalog's resources on one machine.

An AWS-compatible endpoint (moto server) with DynamoDB, EventBridge, SQS, SNS,
CloudWatch and Step Functions executing the real ASL files; the Lambda handlers
run in this process; EventBridge rules deliver to Step Functions and Lambda
targets; a virtual clock drives every timer. What moto lacks is filled in
:mod:`careflow.localcloud.moto`, nowhere else.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import socket
import sys
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from careflow import catalog, clock, wiring
from careflow.adapters.sandbox import Sandbox, reset_sandbox
from careflow.catalog import EXECUTION_STATUS
from careflow.domain.executions import DETAIL_TYPE as EXECUTION_DETAIL_TYPE
from careflow.domain.executions import ENDED_BADLY, execution_status_pattern
from careflow.domain.executions import SOURCE as EXECUTION_SOURCE
from careflow.events.envelope import envelope
from careflow.events.routing import UNROUTED_ROUTE, unrouted_pattern
from careflow.localcloud.endpoint import REGION
from careflow.localcloud.sandboxes.workforce_seed import reset_workforce_sandbox
from careflow.localcloud.sandboxes.workforce_server import WorkforceSandboxServer
from careflow.policies import seed as seed_policies
from careflow.policies.store_dynamodb import DynamoPolicyStore

log = logging.getLogger("careflow.localcloud")

ACCOUNT = "123456789012"
TABLE_NAME = "careflow-state"
# Allocations between young-generation collections while the cloud runs (Python's is 700):
# an execution allocates tens of thousands of short-lived objects.
GC_YOUNG_THRESHOLD = 10_000
# How long a thread keeps the interpreter before another may take it (Python's is 5 ms).
SWITCH_INTERVAL_SECONDS = 0.05
PARKED_QUEUE = "careflow-parked"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/careflow-local"
GSIS = ("GSI1", "GSI2", "GSI3")


def state_table_definition(name: str) -> dict[str, Any]:
    """CreateTable's arguments for careflow's state table (keys and the three GSIs, as
    ``careflow.adapters.dynamodb_state`` uses them), on-demand."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": "S"}
            for n in ("PK", "SK", *(f"{g}{k}" for g in GSIS for k in ("PK", "SK")))
        ],
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": g,
                "KeySchema": [
                    {"AttributeName": f"{g}PK", "KeyType": "HASH"},
                    {"AttributeName": f"{g}SK", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for g in GSIS
        ],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_run(count: int = 2) -> int:
    """A port P with P..P+count-1 all free (``careflow up`` takes P and P+1), drawn below
    the kernel's ephemeral range so that no client socket is handed P+1 meanwhile."""
    import random

    for _ in range(200):
        base = random.randrange(20000, 32000 - count)
        if all(_bindable(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no run of {count} free ports found")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class _Context:
    """What a Lambda handler may read from its context object."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    deadline: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.deadline - time.monotonic()) * 1000), 0)


class NotificationEndpoint:
    """careflow's rest-hook endpoint for payer notifications, on loopback: what API
    Gateway will front on AWS. A notification it cannot read is refused with an
    OperationOutcome (the payer retries); a good one becomes ``PriorAuth.Decided`` events."""

    def __init__(self, cloud: LocalCloud) -> None:
        from careflow.localcloud.sandboxes.http_base import LoopbackServer

        self.cloud = cloud
        self._server = LoopbackServer()

    @property
    def url(self) -> str:
        return f"{self._server.origin}/notifications/pas"

    def start(self) -> NotificationEndpoint:
        from careflow.localcloud.sandboxes.fhir_server import outcome
        from careflow.localcloud.sandboxes.http_base import SandboxHandler
        from careflow.ports import ConnectorError

        cloud = self.cloud

        class Handler(SandboxHandler):
            json_type = error_type = "application/fhir+json"

            def error_body(self, status: int, kind: str, message: str) -> Any:
                return outcome(kind, message)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.path.rstrip("/") != "/notifications/pas":
                    self._send(404, outcome("not-found", "no such endpoint"))
                    return
                try:
                    count = cloud.receive_payer_notification(json.loads(raw or b"null"))
                except (ValueError, ConnectorError) as exc:
                    reason = getattr(exc, "reason", None) or type(exc).__name__
                    self._send(400, outcome("invalid", str(reason)[:300]))
                    return
                self._send(
                    200,
                    {
                        "resourceType": "OperationOutcome",
                        "issue": [
                            {
                                "severity": "information",
                                "code": "informational",
                                "diagnostics": f"{count} decision(s) accepted",
                            }
                        ],
                    },
                )

        self._server._serve(Handler, "pas-notifications")
        return self

    def stop(self) -> None:
        self._server.stop()


def stop_together(*servers: Any) -> None:
    """``stop()`` each server (None skipped) at the same time: each http.server waits up to
    its poll interval (0.5 s) to notice, so one after another a cloud with its sandboxes,
    API, control and MLLP listeners took 5 to 6 s to stop (over 30 s on a loaded machine)."""
    threads = [
        threading.Thread(target=server.stop, name="stop", daemon=True)
        for server in servers
        if server is not None
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _sandbox_encounter(encounter_id: str) -> Any:
    """What the process's in-process sandbox holds for an encounter (read at the time of
    the search: a reset replaces the sandbox)."""
    from careflow.adapters.sandbox import sandbox

    return sandbox().encounter_record(encounter_id)


def _sandbox_documents(patient_ref: str) -> Any:
    """The patient's documents in the process's in-process sandbox (read at the search)."""
    from careflow.adapters.sandbox import sandbox

    return sandbox().documents_of(patient_ref)


def _smart_key_pair() -> tuple[str, Any]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem, key.public_key()


def _optional_erp_server() -> Any:
    """The ERP REST sandbox server class, once it exists in this checkout."""
    try:
        from careflow.localcloud.sandboxes.erp_server import ErpSandboxServer
    except ImportError:
        return None
    return ErpSandboxServer


def _step_handler(ref: str) -> Callable[[Any, Any], Any]:
    """What ``lambdas/step.py`` does on AWS, with the step bound here instead of read from
    the function's environment (every in-process function shares one environment)."""
    from careflow.kit.runtime import invoke
    from careflow.observability import step as observed

    @observed(ref.rpartition(":")[2])
    def handler(event: Any, context: Any) -> Any:
        return invoke(ref, event)

    return handler


def _own_handler(spec: catalog.FunctionSpec) -> Callable[[Any, Any], Any]:
    module = importlib.import_module(f"lambdas.{spec.module}")
    handler: Callable[[Any, Any], Any] = getattr(module, spec.attribute)
    return handler


class LocalCloud:
    def __init__(
        self,
        port: int = 4566,
        *,
        virtual_clock: clock.VirtualClock | None = None,
        sandbox: Sandbox | None = None,
        payer_ticker: bool = True,
        fill_gaps: bool = True,
        connectors: str = "sandbox",
    ) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.clock = virtual_clock or clock.VirtualClock()
        self._sandbox = sandbox
        self._server: Any = None
        # fill_gaps=False: stock moto plus only a Lambda hook, the benchmark's baseline.
        self._fill_gaps = fill_gaps
        # "http": the EHR (FHIR R4), payer (Da Vinci PAS) and ERP sandboxes run as servers
        # on loopback and the handlers reach them through the protocol adapters.
        self.connectors = connectors
        self.ehr_server: Any = None
        self.payer_server: Any = None
        self.erp_server: Any = None
        self.workforce_server: Any = None
        self.notifications: Any = None
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self._specs = catalog.all_functions()
        self.function_arns = {
            name: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:careflow-{name}"
            for name in self._specs
        }
        self.state_machine_arns = {
            wf.id: f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{wf.name}"
            for wf in catalog.CATALOG
        }
        self.parked_queue_url = ""
        self._ticker_on = payer_ticker
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._ticker: threading.Thread | None = None
        self.invocations: dict[str, int] = {}
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._gc_threshold: tuple[int, ...] | None = None
        self._switch_interval: float | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> LocalCloud:
        """Binds the endpoint (``OSError`` at once if the port is taken), deploys the
        catalog, and only then lets the endpoint answer (503 before: :attr:`ready`)."""
        from moto.core.config import default_user_config

        from careflow.localcloud import moto as patched_moto
        from careflow.localcloud.server import MotoEndpoint

        self._ready.clear()
        self._server = MotoEndpoint("127.0.0.1", self.port, self.health).start()
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "MOTO_PORT": str(self.port),
        }.items():
            os.environ[key] = value
        os.environ.pop("AWS_PROFILE", None)
        default_user_config["stepfunctions"]["execute_state_machine"] = True
        default_user_config["lambda"]["use_docker"] = False
        # moto's backends live in this process: a new cloud starts from nothing.
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()
        clock.set_clock(self.clock)
        if self._fill_gaps:
            patched_moto.install(
                clock=self.clock, invoke=self.invoke, execution_ended=self._execution_ended
            )
            if patched_moto.attach_in_process not in wiring.CLIENT_HOOKS:
                wiring.CLIENT_HOOKS.append(patched_moto.attach_in_process)
        else:
            patched_moto.install_baseline(self.invoke)
            # stock moto (the benchmark's baseline) deploys over HTTP, through the gate
            self._ready.set()
        self._configure_handlers()
        self.deploy()
        sandbox = reset_sandbox(self._sandbox or Sandbox.seeded(self.clock.now()))
        reset_workforce_sandbox()
        if self.connectors == "http":
            assert sandbox is not None
            self._start_protocol_sandboxes(sandbox)
        if self._ticker_on:
            self._ticker = threading.Thread(target=self._tick, name="payer-ticker", daemon=True)
            self._ticker.start()
        if self._fill_gaps:
            self._tune_runtime()
        self._ready.set()
        return self

    @property
    def ready(self) -> bool:
        """Tables created, state machines deployed, sandboxes up: the endpoint answers."""
        return self._ready.is_set()

    def health(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "endpoint": self.endpoint,
            "state_machines": len(self.state_machine_arns) if self.ready else 0,
        }

    def _tune_runtime(self) -> None:
        """Sets this process up for many executions at once, as a server would be:

        - loads every handler (as provisioned concurrency would);
        - moves what start-up built (moto, botocore's models, the handlers' modules: some
          300,000 objects) out of the garbage collector's sight with ``gc.freeze``, and
          lets the young generation grow larger before a collection. Without it, a full
          collection walks all of start-up's objects, about 0.3 s during which every
          execution stands still, every few dozen executions;
        - lets a thread keep the interpreter for 50 ms rather than 5 ms before another
          takes over (``sys.setswitchinterval``): an execution's threads hand over less
          often, about 9% more executions a second; a request to the endpoint waits a
          little longer for its turn while executions run.

        :meth:`stop` undoes all three."""
        import gc

        for name in self._specs:
            self.handler_for(name)
        gc.collect()
        gc.freeze()
        self._gc_threshold = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *self._gc_threshold[1:])
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)

    def stop(self) -> None:
        import gc

        from careflow.localcloud import moto as patched_moto

        self._stop.set()
        self._ready.clear()
        if self._gc_threshold is not None:
            gc.set_threshold(*self._gc_threshold)
            gc.unfreeze()
            self._gc_threshold = None
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None
        if self._ticker:
            self._ticker.join(timeout=2)
        servers = (
            self.ehr_server,
            self.payer_server,
            self.erp_server,
            self.workforce_server,
            self.notifications,
        )
        stop_together(*servers)
        patched_moto.uninstall()
        patched_moto.uninstall_baseline()
        if patched_moto.attach_in_process in wiring.CLIENT_HOOKS:
            wiring.CLIENT_HOOKS.remove(patched_moto.attach_in_process)
        if self._server is not None:
            self._server.stop()
            self._server = None
        clock.set_clock(clock.SystemClock())
        self._clients.clear()
        wiring.reset()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, service: str) -> Any:
        """A client of this cloud's endpoint, built once per service (the payer ticker and
        the notification endpoint put events many times; boto3 clients are thread-safe)."""
        with self._lock:
            built = self._clients.get(service)
            if built is None:
                import boto3

                from careflow.localcloud import moto as patched_moto

                built = boto3.client(
                    service,
                    region_name=REGION,
                    endpoint_url=self.endpoint,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                )
                if self._fill_gaps:
                    built = patched_moto.attach_in_process(built)
                self._clients[service] = built
            return built

    def _start_protocol_sandboxes(self, sandbox: Sandbox) -> None:
        from careflow.localcloud.sandboxes import ehr_seed
        from careflow.localcloud.sandboxes.fhir_server import FhirSandboxServer, FhirStore
        from careflow.localcloud.sandboxes.payer_server import Behaviour, PayerSandboxServer

        store = FhirStore()
        ehr_seed.seed(store, sandbox.cases, sandbox.participants)
        # The EHR wants SMART Backend Services tokens, as a hospital's would: a key pair for
        # careflow's client is made here and its public half registered with the EHR.
        private_pem, public_key = _smart_key_pair()
        self.ehr_server = FhirSandboxServer(
            store,
            require_token=True,
            client_keys={"careflow-local": public_key},
            # encounters come by HL7 v2 with any visit number: made when first searched
            # and each patient's documents, as the in-process sandbox holds them
            on_search_miss=ehr_seed.on_demand(
                ehr_seed.encounters_on_demand(_sandbox_encounter),
                ehr_seed.documents_on_demand(_sandbox_documents),
            ),
        ).start()
        self.payer_server = PayerSandboxServer().start()
        self.notifications = NotificationEndpoint(self).start()
        self.payer_server.subscribe(self.notifications.url, payload="id-only")
        for case_id, rule in sandbox.payer_rules.items():
            coverage = (sandbox.cases[case_id].coverage_ref or "").split("/")[-1]
            self.payer_server.behaviours[coverage] = Behaviour(
                rule.decision, rule.pend_for, rule.final
            )
        env = {
            "CAREFLOW_CONNECTORS": "http",
            "EHR_FHIR_BASE_URL": self.ehr_server.base_url,
            "PAYER_PAS_BASE_URL": self.payer_server.base_url,
            "EHR_SMART_CLIENT_ID": "careflow-local",
            "EHR_SMART_KEY_ID": "local-1",
            "EHR_SMART_TOKEN_URL": self.ehr_server.token_url,
            "EHR_SMART_PRIVATE_KEY": private_pem,
        }
        erp_server_class = _optional_erp_server()
        if erp_server_class is not None:
            self.erp_server = erp_server_class().start()
            env["ERP_BASE_URL"] = self.erp_server.base_url
        self.workforce_server = WorkforceSandboxServer().start()
        env["WORKFORCE_BASE_URL"] = self.workforce_server.base_url
        os.environ.update(env)
        wiring.reset()

    def add_case(self, seed: Any) -> Any:
        """A new case in every sandbox (in-process, and the EHR/payer servers if running)."""
        from careflow.adapters.sandbox import sandbox
        from careflow.localcloud.sandboxes import ehr_seed
        from careflow.localcloud.sandboxes.payer_server import Behaviour

        sb = sandbox()
        case = sb.add_case(seed, self.clock.now())
        if self.ehr_server is not None:
            ehr_seed.seed(
                self.ehr_server.store,
                {case.case_id: case},
                {case.case_id: sb.participants[case.case_id]},
            )
            rule = seed.payer_rule
            coverage = (case.coverage_ref or "").split("/")[-1]
            self.payer_server.behaviours[coverage] = Behaviour(
                rule.decision, rule.pend_for, rule.final
            )
        return case

    def set_payer_rule(self, request_id: str, coverage_id: str, rule: Any) -> None:
        """How the payer treats one request, in every sandbox: the in-process one (by request)
        and the PAS server if running (by coverage)."""
        from careflow.adapters.sandbox import sandbox
        from careflow.localcloud.sandboxes.payer_server import Behaviour

        sandbox().payer_rules[request_id] = rule
        if self.payer_server is not None:
            self.payer_server.behaviours[coverage_id] = Behaviour(
                rule.decision, rule.pend_for, rule.final, rule.documents
            )

    def transfer_stock(
        self, item_id: str, quantity: int, from_facility: str, to_facility: str
    ) -> None:
        """An inter-facility transfer in the ERP that the handlers read."""
        from careflow.adapters.sandbox import sandbox

        target = self.erp_server if self.erp_server is not None else sandbox()
        target.transfer_stock(item_id, quantity, from_facility, to_facility)

    # -- the catalog's resources --------------------------------------------------------------
    def _configure_handlers(self) -> None:
        os.environ.update(
            {
                "EHR_SMART_CLIENT_ID": "",
                "CAREFLOW_CONNECTORS": "sandbox",
                "TABLE_NAME": TABLE_NAME,
                "EVENT_BUS_NAME": catalog.EVENT_BUS_NAME,
                "PARKED_QUEUE_URL": f"{self.endpoint}/{ACCOUNT}/{PARKED_QUEUE}",
                "STATE_MACHINE_ARNS": json.dumps(self.state_machine_arns),
                "AWS_ENDPOINT_URL": self.endpoint,
                "POWERTOOLS_SERVICE_NAME": "careflow",
                "POWERTOOLS_METRICS_NAMESPACE": "Careflow",
                "POWERTOOLS_METRICS_DISABLED": os.environ.get(
                    "POWERTOOLS_METRICS_DISABLED", "true"
                ),
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
            }
        )
        wiring.reset()

    def deploy(self) -> None:
        """Creates what the CDK app creates, from the same catalog."""
        ddb, sqs, events, sfn = (
            self.client(s) for s in ("dynamodb", "sqs", "events", "stepfunctions")
        )
        ddb.create_table(
            **state_table_definition(TABLE_NAME),
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        seed_policies(DynamoPolicyStore(ddb, TABLE_NAME))  # what `careflow policy` publishes on
        self.parked_queue_url = sqs.create_queue(QueueName=PARKED_QUEUE)["QueueUrl"]
        bus_arn = events.create_event_bus(Name=catalog.EVENT_BUS_NAME)["EventBusArn"]
        events.create_archive(
            ArchiveName="careflow-archive", EventSourceArn=bus_arn, RetentionDays=365
        )
        self._deploy_functions()
        for wf in catalog.CATALOG:
            sfn.create_state_machine(
                name=wf.name,
                roleArn=ROLE_ARN,
                type=wf.type,
                definition=json.dumps(
                    wf.render(
                        self.function_arns,
                        event_bus_name=catalog.EVENT_BUS_NAME,
                        table_name=TABLE_NAME,
                        state_machine_arns=self.state_machine_arns,
                    )
                ),
            )
            for i, trigger in enumerate(wf.triggers):
                self._rule(
                    events,
                    sqs,
                    f"{wf.id}-start-{i}",
                    trigger.pattern(),
                    "Intake",
                    {
                        "InputPathsMap": {"event": "$"},
                        "InputTemplate": '{"workflow_id": "' + wf.id + '", "event": <event>}',
                    },
                )
        # Each (source, detail-type, function) once, however many workflows subscribe to it
        # (as the CDK app does): a callback invoked twice would resume nothing the second time.
        subscribed: set[tuple[str, str, str]] = set()
        for wf in catalog.CATALOG:
            for sub in wf.subscriptions:
                key = (sub.source, sub.detail_type, sub.function)
                if key not in subscribed:
                    subscribed.add(key)
                    self._rule(events, sqs, f"{wf.id}-{sub.function}", sub.pattern(), sub.function)
        # Step Functions' announcement of a careflow execution's bad end, on the default bus.
        self._rule(
            events,
            sqs,
            "careflow-execution-ended-badly",
            execution_status_pattern(list(self.state_machine_arns.values())),
            EXECUTION_STATUS.name,
            bus="default",
        )
        # What no rule above takes, recorded by intake as unrouted (the CDK app's catch-all).
        self._rule(
            events,
            sqs,
            "careflow-unrouted",
            unrouted_pattern(catalog.CATALOG),
            "Intake",
            {
                "InputPathsMap": {"event": "$"},
                "InputTemplate": '{"route": "' + UNROUTED_ROUTE + '", "event": <event>}',
            },
        )

    def _rule(
        self,
        events: Any,
        sqs: Any,
        name: str,
        pattern: Mapping[str, Any],
        function: str,
        transformer: Mapping[str, Any] | None = None,
        bus: str = catalog.EVENT_BUS_NAME,
    ) -> None:
        rules = events.list_rules(EventBusName=bus, NamePrefix=name)["Rules"]
        if any(r["Name"] == name for r in rules):
            return
        dlq_url = sqs.create_queue(QueueName=f"careflow-dlq-{name}")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
        target: dict[str, Any] = {
            "Id": function,
            "Arn": self.function_arns[function],
            "DeadLetterConfig": {"Arn": dlq_arn},
            "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600},
        }
        if transformer:
            target["InputTransformer"] = dict(transformer)
        events.put_targets(Rule=name, EventBusName=bus, Targets=[target])

    def _execution_ended(self, detail: dict[str, Any]) -> None:
        """What Step Functions announces on the default bus when an execution ends; only
        the bad ends of careflow's own, which the ExecutionStatus rule takes."""
        if detail.get("status") not in ENDED_BADLY:
            return
        if detail.get("stateMachineArn") not in self.state_machine_arns.values():
            return
        try:
            self.client("events").put_events(
                Entries=[
                    {
                        "Source": EXECUTION_SOURCE,
                        "DetailType": EXECUTION_DETAIL_TYPE,
                        "Detail": json.dumps(detail, default=str),
                        "Resources": [str(detail.get("executionArn"))],
                    }
                ]
            )
        except Exception:  # a cloud shutting down: nothing to announce to
            log.debug("execution end not announced", exc_info=True)

    def _deploy_functions(self) -> None:
        iam, lam = self.client("iam"), self.client("lambda")
        iam.create_role(
            RoleName="careflow-local",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sts:AssumeRole",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                        }
                    ],
                }
            ),
        )
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("README.txt", "careflow local cloud: handlers run in-process")
        code = buf.getvalue()
        for name, spec in self._specs.items():
            lam.create_function(
                FunctionName=f"careflow-{name}",
                Runtime="python3.12",
                Role=ROLE_ARN,
                Handler=spec.handler,
                Code={"ZipFile": code},
                Timeout=spec.timeout_seconds,
                MemorySize=spec.memory_mb,
                Description=spec.description,
            )

    # -- Lambda, in this process ----------------------------------------------------------------
    def handler_for(self, function: str) -> tuple[str, Callable[[Any, Any], Any]]:
        name = function.rsplit(":", 1)[-1].removeprefix("careflow-")
        spec = self._specs.get(name)
        if spec is None:
            raise KeyError(f"no function {function} in the catalog")
        with self._lock:
            fn = self._handlers.get(name)
            if fn is None:
                fn = _step_handler(spec.step) if spec.step else _own_handler(spec)
                self._handlers[name] = fn
        return name, fn

    def invoke(self, function: str, payload: bytes) -> tuple[bytes, str | None]:
        """Runs the handler like Lambda would: JSON in, JSON out, errors as errorType/Message."""
        name, fn = self.handler_for(function)
        spec = self._specs[name]
        with self._lock:
            self.invocations[name] = self.invocations.get(name, 0) + 1
        ctx = _Context(
            function_name=f"careflow-{name}",
            invoked_function_arn=self.function_arns[name],
            memory_limit_in_mb=spec.memory_mb,
            deadline=time.monotonic() + spec.timeout_seconds,
        )
        try:
            event = json.loads(payload or b"{}")
            result = fn(event, ctx)
            return json.dumps(result, default=str).encode(), None
        except Exception as exc:  # Lambda reports every error the same way
            log.debug("handler %s raised %s", name, type(exc).__name__)
            body = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc)[:2000],
                "stackTrace": traceback.format_tb(exc.__traceback__)[-3:],
            }
            return json.dumps(body).encode(), "Unhandled"

    # -- the sandbox payer's notifications ------------------------------------------------------
    def deliver_payer_notifications(self) -> int:
        """Turns the payer's due decisions into ``PriorAuth.Decided`` events: from the PAS
        payer server, through an id-only Subscription notification read by the payer
        adapter (as a rest-hook delivery would be), or from the in-process sandbox."""
        from careflow.adapters.sandbox import sandbox

        now = self.clock.now()
        if self.payer_server is not None:
            count: int = self.payer_server.notify_due(now)  # POSTs to the rest-hook endpoint
            return count
        decisions = sandbox().due_decisions(now)
        for d in decisions:
            self.put_event(
                "careflow.payer",
                "PriorAuth.Decided",
                facility_id="payer",
                data={
                    "preauth_ref": d.preauth_ref,
                    "decision": d.decision.value,
                    "decided_at": now.isoformat(),
                    "items": [i.model_dump(mode="json") for i in d.items],
                },
                idempotency_key=f"{d.preauth_ref}:decided",
            )
        return len(decisions)

    def receive_payer_notification(self, bundle: Mapping[str, Any]) -> int:
        """What careflow's notification endpoint does with a payer's notification."""
        from careflow.domain.payer_decisions import decided_event_data

        now = self.clock.now()
        decisions = wiring.payer().decisions_from_notification(bundle)
        for d in decisions:
            self.put_event(
                "careflow.payer",
                "PriorAuth.Decided",
                facility_id="payer",
                data=decided_event_data(d, now),
                idempotency_key=f"{d.preauth_ref}:decided",
            )
        return len(decisions)

    def _tick(self) -> None:
        from careflow.localcloud import moto as patched_moto

        ticks = 0
        while not self._stop.wait(0.05):
            ticks += 1
            try:
                self.deliver_payer_notifications()
            except Exception:  # keep ticking: a failed delivery is retried next tick
                log.exception("payer notification delivery failed")
            if ticks % 200 == 0:  # every ten seconds
                patched_moto.release_finished_threads()

    # -- conveniences for the CLI, the demo and tests -------------------------------------------
    def put_event(
        self,
        source: str,
        detail_type: str,
        *,
        data: Mapping[str, Any],
        facility_id: str,
        idempotency_key: str | None = None,
        event_id: str | None = None,
        correlation_id: str | None = None,
    ) -> str:
        event_id = event_id or str(uuid.uuid4())
        detail = envelope(
            event_id=event_id,
            idempotency_key=idempotency_key or event_id,
            facility_id=facility_id,
            occurred_at=self.clock.now(),
            correlation_id=correlation_id or event_id,
            data=dict(data),
        )
        resp = self.client("events").put_events(
            Entries=[
                {
                    "EventBusName": catalog.EVENT_BUS_NAME,
                    "Source": source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                }
            ]
        )
        if resp.get("FailedEntryCount"):
            raise RuntimeError(f"put_events failed: {resp['Entries']}")
        return event_id

    def book_appointment(
        self,
        appointment_id: str,
        scheduled_start: datetime,
        facility_id: str,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        return self.put_event(
            "careflow.scheduling",
            "Appointment.Booked",
            facility_id=facility_id,
            idempotency_key=idempotency_key or f"appointment:{appointment_id}:booked",
            data={
                "appointment_id": appointment_id,
                "appointment_type": "procedure",
                "scheduled_start": scheduled_start.isoformat(),
            },
        )

    def executions(self, workflow_id: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        out: list[dict[str, Any]] = []
        kwargs = {"stateMachineArn": self.state_machine_arns[workflow_id]}
        while True:
            page = sfn.list_executions(**kwargs)
            out.extend(page["executions"])
            if not page.get("nextToken"):
                return out
            kwargs["nextToken"] = page["nextToken"]

    def execution_arn(self, instance_id: str, workflow_id: str) -> str:
        name = self.state_machine_arns[workflow_id].split(":")[-1]
        return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{name}:{instance_id}"

    def describe(self, execution_arn: str) -> dict[str, Any]:
        result: dict[str, Any] = self.client("stepfunctions").describe_execution(
            executionArn=execution_arn
        )
        return result

    def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition"
    ) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")

    def wait_for_execution(self, execution_arn: str, timeout: float = 30.0) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            try:
                d = self.describe(execution_arn)
            except Exception:
                return None
            return d if d["status"] != "RUNNING" else None

        result: dict[str, Any] = self.wait_for(done, timeout, f"execution {execution_arn}")
        return result
