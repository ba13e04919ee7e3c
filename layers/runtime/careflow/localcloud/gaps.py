"""The moto gaps, filled in one place.

moto 5.2.5 runs the real ASL (``execute_state_machine``) but, for a local cloud,
it lacks a few things. :func:`install` patches them in the running process (the
``ThreadedMotoServer`` runs in-process); :func:`uninstall` puts moto back exactly.

Every patch replaces one method or one module attribute of moto 5.2.5, and
:func:`install` first checks that each target still has the shape it patches
(:class:`MotoShapeError` otherwise) rather than silently doing nothing.
Paths below are under ``moto/stepfunctions/parser/`` unless they start with ``moto/``.

1. Cached AWS clients. ``asl/utils/boto_client.py`` ``boto_client_for`` builds a new
   boto3 client on every call (each Lambda task, each DynamoDB/EventBridge/SQS/SNS
   integration). It is replaced there and in the 13 parser modules that imported it
   by name (:data:`_BOTO_CLIENT_IMPORTERS`) with a version that caches clients per
   (region, service, endpoint). For ``lambda`` it returns an
   :class:`InProcessLambdaClient` whose ``invoke`` calls the installed ``invoke``.
2. Lambda code. ``moto/awslambda_simple/models.py`` ``LambdaSimpleBackend.invoke``
   (which echoes the payload) is replaced, so ``lambda:Invoke`` through the HTTP API
   runs the installed ``invoke`` too (``X-Amz-Function-Error`` on errors).
3. EventBridge targets. ``moto/events/models.py`` ``Rule.send_to_targets`` is
   wrapped: Step Functions targets get a StartExecution, Lambda targets an
   asynchronous invoke (2 retries, then the target's SQS dead-letter queue), with the
   target's Input / InputPath / InputTransformer applied (:func:`target_input`).
   Other targets go through moto's code one at a time, so a failing target never
   breaks the others or PutEvents. ``moto/events/models.py`` ``unix_time`` reads the
   clock, so an event's ``time`` is the local cloud's time.
4. Virtual time in the interpreter:

   - ``asl/component/state/wait/wait_function/wait_function.py``
     ``WaitFunction._wait_interval``: Wait ``Seconds``/``SecondsPath``/``Timestamp*``;
   - ``asl/component/state/wait/wait_function/timestamp.py``
     ``Timestamp._get_wait_seconds``: measured against the clock, in UTC (moto
     compares a UTC timestamp with the naive *local* ``datetime.now()``);
   - ``asl/component/state/exec/execute_state.py`` module attribute ``threading``:
     ``_evaluate_with_timeout``'s ``threading.Event()`` is a :class:`ClockEvent`, so
     ``TimeoutSeconds``/``TimeoutSecondsPath`` run on the clock;
   - ``asl/eval/callback/callback.py`` module attribute ``Event``: the
     ``.waitForTaskToken`` wait and the ``HeartbeatSeconds`` wait;
   - ``asl/eval/environment.py`` module attribute ``threading``:
     ``program_state_event`` (what a Wait state sleeps on) is a :class:`ClockEvent`;
   - ``asl/component/common/retry/retrier_decl.py`` module attribute ``time``:
     ``RetrierDecl._eval_body``'s ``time.sleep`` (Retry intervals);
   - ``asl/component/program/program.py`` module attribute ``threading``:
     ``Program.eval``'s ``worker_thread.join(timeout)`` (state machine
     ``TimeoutSeconds``);
   - module attribute ``datetime`` of ``models.py`` (execution ``startDate``),
     ``backend/execution.py`` (``stopDate``), ``asl/eval/event/event_manager.py``
     (history timestamps) and ``asl/component/state/state.py``
     (``$$.State.EnteredTime``, written ``2030-01-01T08:00:00.000Z`` as on AWS).
5. ASL fidelity:

   - ``models.py`` ``StepFunctionsParserBackend.start_execution``: a StartExecution
     without ``name`` gets a UUID (moto names it ``None``: the second one fails with
     ExecutionAlreadyExists, or returns the first when the input is the same);
   - ``backend/execution_worker.py`` ``ExecutionWorker._get_evaluation_environment``:
     ``$$.Execution.StartTime`` is an ISO string (moto puts a datetime there, and an
     output holding it makes DescribeExecution fail with a 500);
   - ``Timestamp._from_timestamp_string`` and
     ``asl/component/state/choice/comparison/operator/implementations/is_operator.py``
     ``IsTimestamp.string_to_timestamp``: RFC 3339 timestamps with fractions or
     offsets (moto only takes ``...:SSZ``: ``EnteredTime`` was no valid Wait
     timestamp, and a Choice on ``2030-01-01T00:00:00.5Z`` was silently false).

With no ``advance`` a :class:`VirtualClock` at speed 1 behaves like real time.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import copy as _copy_module
import datetime as _datetime_module
import functools
import importlib
import inspect
import io
import json
import logging
import pickle
import queue
import re
import sys
import threading
import time as _time_module
import types
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from careflow import clock as process_clock
from careflow.clock import Clock, ClockEvent, SystemClock, VirtualClock

LOG = logging.getLogger(__name__)

MOTO_VERSION = "5.2.5"

InvokeFn = Callable[[str, bytes], tuple[bytes, str | None]]
"""(function name or ARN as the caller gave it, payload) -> (response payload, FunctionError)."""

StartExecutionFn = Callable[[str, str], None]
"""(state machine ARN, input JSON) -> None."""

# Lambda's asynchronous invocation retries a function error twice, after ~1 and ~2 min.
ASYNC_RETRY_DELAYS_SECONDS: tuple[float, ...] = (60.0, 120.0)
ASYNC_WORKERS = 16

_SFN = "moto.stepfunctions.parser"
_ASL = f"{_SFN}.asl"
_BOTO_CLIENT_MODULE = f"{_ASL}.utils.boto_client"
# Every module of moto 5.2.5 that did ``from ...boto_client import boto_client_for``.
_BOTO_CLIENT_IMPORTERS = (
    f"{_ASL}.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
    f"{_ASL}.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
    f"{_ASL}.component.state.exec.state_task.lambda_eval_utils",
    f"{_ASL}.component.state.exec.state_task.service.state_task_service_unsupported",
    f"{_ASL}.component.state.exec.state_task.service.state_task_service_glue",
    f"{_ASL}.component.state.exec.state_task.service.state_task_service_events",
    f"{_ASL}.component.state.exec.state_task.service.state_task_service_ecs",
    f"{_ASL}.component.state.exec.state_task.service.state_task_service_sqs",
    f"{_ASL}.component.state.exec.state_task.service.state_task_service_sfn",
    f"{_ASL}.component.state.exec.state_task.service.state_task_service_dynamodb",
    f"{_ASL}.component.state.exec.state_task.service.state_task_service_batch",
    f"{_ASL}.component.state.exec.state_task.service.state_task_service_sns",
    f"{_ASL}.component.state.exec.state_task.service.state_task_service_aws_sdk",
)


class MotoShapeError(RuntimeError):
    """moto is not shaped like the 5.2.5 these patches were written against."""


# --------------------------------------------------------------------------------------
# Installed state
# --------------------------------------------------------------------------------------


@dataclass
class _Installed:
    clock: VirtualClock
    invoke: InvokeFn
    start_execution: StartExecutionFn | None
    previous_process_clock: Clock
    originals: list[tuple[Any, str, Any]] = field(default_factory=list)
    boto_client_for: Callable[..., Any] | None = None  # moto's, for building clients
    clients: dict[tuple[str, str, str | None], Any] = field(default_factory=dict)
    clients_lock: threading.Lock = field(default_factory=threading.Lock)
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(
            max_workers=ASYNC_WORKERS, thread_name_prefix="careflow-async-invoke"
        )
    )


_installed: _Installed | None = None
_INHERITED = object()  # marks a patched attribute the owner did not define itself
_install_lock = threading.RLock()


def _clock() -> Clock:
    """The clock the patches run on: the installed one, else the process clock."""
    state = _installed
    return state.clock if state is not None else process_clock.get_clock()


def _new_event() -> ClockEvent:
    """``threading.Event()`` for the patched moto modules: timed waits run on the clock."""
    return ClockEvent(_clock)


def is_installed() -> bool:
    return _installed is not None


def clients_built() -> int:
    """How many AWS clients the cache holds (for tests and the bench)."""
    state = _installed
    return len(state.clients) if state is not None else 0


# --------------------------------------------------------------------------------------
# 1. Cached clients, and the in-process Lambda client
# --------------------------------------------------------------------------------------


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def _call_invoke(invoke: InvokeFn, function: str, payload: bytes) -> tuple[bytes, str | None]:
    """Run ``invoke``; an exception becomes an ``Unhandled`` error payload like Lambda's.

    A botocore ``ClientError`` (e.g. ResourceNotFoundException from the dispatcher)
    propagates: the interpreter maps it to ``Lambda.<Code>``.
    """
    from botocore.exceptions import ClientError

    try:
        body, error = invoke(function, payload)
    except ClientError:
        raise
    except Exception as ex:
        LOG.exception("lambda %s raised", function)
        return _error_payload(type(ex).__name__, str(ex)), "Unhandled"
    if isinstance(body, str):
        body = body.encode()
    return (body or b"null"), error


def _as_bytes(payload: Any) -> bytes:
    if payload is None:
        return b"{}"
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    if hasattr(payload, "read"):
        return _as_bytes(payload.read())
    return json.dumps(payload).encode()


def _qualified(function_name: str, qualifier: str | None) -> str:
    if not qualifier or function_name.endswith(f":{qualifier}"):
        return function_name
    return f"{function_name}:{qualifier}"


class InProcessLambdaClient:
    """The ``lambda`` client the interpreter gets: ``invoke`` runs in this process.

    Other operations go to a real (cached) boto3 client against the moto server.
    """

    def __init__(self, region: str, real_client: Callable[[], Any]) -> None:
        self.region = region
        self._real_client = real_client

    def invoke(
        self,
        *,
        FunctionName: str,
        Payload: Any = None,
        InvocationType: str = "RequestResponse",
        Qualifier: str | None = None,
        **_ignored: Any,
    ) -> dict[str, Any]:
        from botocore.response import StreamingBody

        state = _installed
        if state is None:  # uninstalled mid-flight: behave like moto's client
            return self._real_client().invoke(
                FunctionName=FunctionName, Payload=_as_bytes(Payload), InvocationType=InvocationType
            )
        function = _qualified(FunctionName, Qualifier)
        payload = _as_bytes(Payload)
        if InvocationType == "DryRun":
            status, body, error = 204, b"", None
        elif InvocationType == "Event":
            _invoke_async(state, function, payload, on_failure=None)
            status, body, error = 202, b"", None
        else:
            body, error = _call_invoke(state.invoke, function, payload)
            status = 200
        response: dict[str, Any] = {
            "StatusCode": status,
            "ExecutedVersion": "$LATEST",
            "Payload": StreamingBody(io.BytesIO(body), len(body)),
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "RequestId": str(uuid.uuid4()),
                "HTTPHeaders": {},
            },
        }
        if error:
            response["FunctionError"] = error
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real_client(), name)


def _cached_boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    """Replaces moto's ``boto_client_for``: one client per (region, service, endpoint)."""
    state = _installed
    if state is None or state.boto_client_for is None:  # pragma: no cover - uninstall race
        module = importlib.import_module(_BOTO_CLIENT_MODULE)
        return module.boto_client_for(region, service, state_credentials)
    if service == "lambda":
        return _client(state, region, "lambda#in-process", state_credentials)
    return _client(state, region, service, state_credentials)


def _client(state: _Installed, region: str, service: str, state_credentials: Any) -> Any:
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port

    endpoint = None if botocore_stubber.enabled else f"http://localhost:{moto_server_port()}"
    key = (region, service, endpoint)
    client = state.clients.get(key)
    if client is not None:
        return client
    with state.clients_lock:
        client = state.clients.get(key)
        if client is None:
            if service == "lambda#in-process":
                client = InProcessLambdaClient(
                    region, lambda: _client(state, region, "lambda", state_credentials)
                )
            else:
                from careflow.localcloud.inprocess import attach_in_process

                assert state.boto_client_for is not None
                client = attach_in_process(
                    state.boto_client_for(region, service, state_credentials)
                )
            state.clients[key] = client
    return client


# --------------------------------------------------------------------------------------
# 2. Lambda through the HTTP API
# --------------------------------------------------------------------------------------


def _lambda_simple_invoke(
    self: Any,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> bytes | None:
    """Replaces ``LambdaSimpleBackend.invoke``: run the function instead of echoing."""
    state = _installed
    self.get_function(function_name, qualifier)  # ResourceNotFoundException like AWS
    function = _qualified(function_name, qualifier)
    payload = _as_bytes(body) if body else b"{}"
    invocation_type = headers.get("X-Amz-Invocation-Type") or "RequestResponse"
    if state is None:  # pragma: no cover - uninstall race
        return payload
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":
        _invoke_async(state, function, payload, on_failure=None)
        return b""
    result, error = _call_invoke(state.invoke, function, payload)
    if error:
        response_headers["x-amz-function-error"] = error
    return result


# --------------------------------------------------------------------------------------
# Asynchronous invocations (Lambda API "Event", EventBridge Lambda targets)
# --------------------------------------------------------------------------------------

FailureHandler = Callable[[str, str, int], None]  # (error type, message, retries made)


def _invoke_async(
    state: _Installed,
    function: str,
    payload: bytes,
    on_failure: FailureHandler | None,
    max_retries: int = len(ASYNC_RETRY_DELAYS_SECONDS),
) -> None:
    """Invoke on the pool; retry a function error after 1 then 2 (virtual) minutes."""
    invoke = state.invoke
    pool = state.pool

    def attempt(number: int) -> None:
        try:
            body, error = _call_invoke(invoke, function, payload)
        except Exception as ex:  # a ClientError from the dispatcher
            body, error = _error_payload(type(ex).__name__, str(ex)), "Unhandled"
        if not error:
            return
        error_type, message = _error_of(body, error)
        if number < max_retries:
            delay = ASYNC_RETRY_DELAYS_SECONDS[min(number, len(ASYNC_RETRY_DELAYS_SECONDS) - 1)]
            LOG.warning(
                "async invoke of %s failed (%s: %s); retry %d in %gs",
                function,
                error_type,
                message,
                number + 1,
                delay,
            )
            threading.Thread(
                target=_retry_later,
                args=(pool, delay, attempt, number + 1),
                name="careflow-async-retry",
                daemon=True,
            ).start()
            return
        LOG.error(
            "async invoke of %s failed after %d retries (%s: %s)",
            function,
            number,
            error_type,
            message,
        )
        if on_failure is not None:
            try:
                on_failure(error_type, message, number)
            except Exception:
                LOG.exception("could not dead-letter the failed invocation of %s", function)

    _submit(pool, attempt, 0)


def _retry_later(pool: ThreadPoolExecutor, delay: float, fn: Callable[[int], None], n: int) -> None:
    _clock().sleep(delay)
    _submit(pool, fn, n)


def _submit(pool: ThreadPoolExecutor, fn: Callable[[int], None], n: int) -> None:
    try:
        pool.submit(fn, n)
    except RuntimeError:  # pool shut down by uninstall(): run inline rather than drop
        LOG.warning("async pool closed; running invocation inline")
        fn(n)


def _error_of(body: bytes, function_error: str) -> tuple[str, str]:
    try:
        document = json.loads(body)
    except ValueError:
        return function_error, body.decode(errors="replace")
    if isinstance(document, dict):
        return (
            str(document.get("errorType") or function_error),
            str(document.get("errorMessage") or ""),
        )
    return function_error, json.dumps(document)


# --------------------------------------------------------------------------------------
# 3. EventBridge targets
# --------------------------------------------------------------------------------------


def _iso(value: Any) -> Any:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


class _EventView(dict[str, Any]):
    """The event as AWS delivers it; moto's internal ``ingestion-time`` stays reachable
    by ``EventTemplateParser`` (``<aws.events.event.ingestion-time>``) but hidden from
    ``$`` and ``<aws.events.event.json>``."""

    def __init__(self, event: dict[str, Any]) -> None:
        self._ingestion_time = event.get("ingestion-time")
        super().__init__(
            {
                "version": event.get("version", "0"),
                "id": event.get("id"),
                "detail-type": event.get("detail-type"),
                "source": event.get("source"),
                "account": event.get("account"),
                "time": _iso(event.get("time")),
                "region": event.get("region"),
                "resources": event.get("resources", []),
                "detail": event.get("detail", {}),
                **({"replay-name": event["replay-name"]} if "replay-name" in event else {}),
            }
        )

    def __missing__(self, key: str) -> Any:
        if key == "ingestion-time":
            return self._ingestion_time
        raise KeyError(key)


def target_input(
    target: dict[str, Any], event: dict[str, Any], transform_input: bool = True
) -> Any:
    """What EventBridge delivers to ``target`` for ``event`` (a moto event message).

    ``Input`` (constant JSON), ``InputPath`` (JSONPath) or ``InputTransformer``
    (moto's ``EventTemplateParser``: InputPathsMap incl. ``"$"``, ``<aws.events.event>``
    placeholders); else the whole event. The event is shaped as AWS sends it: ``time``
    as an ISO-8601 string, ``account`` present, no ``ingestion-time``.
    """
    from jsonpath_ng.ext import parse as jsonpath
    from moto.events.utils import EventTemplateParser

    view = _EventView(event)
    if not transform_input or not any(
        key in target for key in ("Input", "InputPath", "InputTransformer")
    ):
        return dict(view)
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        matches = jsonpath(target["InputPath"]).find(view)
        return matches[0].value if matches else None
    transformer = target["InputTransformer"]
    result = EventTemplateParser.parse(
        input_template=transformer.get("InputTemplate"),
        input_paths_map=transformer.get("InputPathsMap", {}),
        event=view,  # type: ignore[arg-type]
    )
    if isinstance(result, dict) and isinstance(result.get("time"), int | float):
        result["time"] = _iso(result["time"])  # as moto does for SQS targets
    return result


def _target_kind(arn: str) -> str | None:
    parts = arn.split(":")
    if len(parts) < 6:
        return None
    service, resource = parts[2], parts[5]
    if service == "states" and resource == "stateMachine":
        return "states"
    if service == "lambda" and resource == "function":
        return "lambda"
    return None


class _RuleView:
    """A rule seen with only some of its targets (to run moto's code per target)."""

    def __init__(self, rule: Any, targets: list[dict[str, Any]]) -> None:
        self.__dict__["_rule"] = rule
        self.__dict__["targets"] = targets

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_rule"], name)


def _make_send_to_targets(original: Callable[..., None]) -> Callable[..., None]:
    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        """Replaces ``Rule.send_to_targets``: adds Step Functions and Lambda targets."""
        if not self.event_pattern.matches_event(original_event):
            return
        for target in list(self.targets):
            arn = target.get("Arn", "")
            kind = _target_kind(arn)
            try:
                if kind is None:
                    original(_RuleView(self, [target]), original_event, transform_input)
                elif self.state != "ENABLED":
                    continue
                elif kind == "states":
                    _deliver_to_state_machine(self, target, original_event, transform_input)
                else:
                    _deliver_to_lambda(self, target, original_event, transform_input)
            except Exception:
                LOG.exception("rule %s: delivery to target %s failed", self.name, arn)

    send_to_targets.__wrapped__ = original  # type: ignore[attr-defined]
    return send_to_targets


def _dead_letter(
    rule: Any,
    target: dict[str, Any],
    event: dict[str, Any],
    *,
    error_code: str,
    error_message: str,
    retries: int,
) -> bool:
    """Send ``event`` to the target's SQS dead-letter queue, like EventBridge."""
    dlq_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
    if not dlq_arn:
        LOG.error(
            "rule %s target %s: event %s dropped (%s: %s); the target has no DeadLetterConfig",
            rule.name,
            target.get("Arn"),
            event.get("id"),
            error_code,
            error_message,
        )
        return False
    from moto.sqs.models import sqs_backends
    from moto.utilities.arns import parse_arn

    queue = parse_arn(dlq_arn)

    def attribute(value: Any) -> dict[str, str]:
        return {"DataType": "String", "StringValue": str(value) or "-"}

    sqs_backends[queue.account][queue.region].send_message(
        queue_name=queue.resource_id,
        message_body=json.dumps(dict(_EventView(event))),
        message_attributes={
            "RULE_ARN": attribute(rule.arn),
            "TARGET_ARN": attribute(target.get("Arn")),
            "ERROR_CODE": attribute(error_code),
            "ERROR_MESSAGE": attribute(error_message[:4096]),
            "RETRY_ATTEMPTS": attribute(retries),
            "EXHAUSTED_RETRY_CONDITION": attribute("MaximumRetryAttempts"),
        },
    )
    LOG.warning(
        "rule %s target %s: event %s sent to DLQ %s (%s: %s)",
        rule.name,
        target.get("Arn"),
        event.get("id"),
        dlq_arn,
        error_code,
        error_message,
    )
    return True


def _deliver_to_state_machine(
    rule: Any, target: dict[str, Any], event: dict[str, Any], transform_input: bool
) -> None:
    state = _installed
    arn = target["Arn"]
    try:
        execution_input = json.dumps(target_input(target, event, transform_input))
        if state is not None and state.start_execution is not None:
            state.start_execution(arn, execution_input)
        else:
            from moto.stepfunctions.responses import get_backend
            from moto.utilities.arns import parse_arn

            parsed = parse_arn(arn)
            get_backend(parsed.account, parsed.region).start_execution(
                arn, str(uuid.uuid4()), execution_input
            )
    except Exception as ex:
        LOG.exception("rule %s: StartExecution of %s failed", rule.name, arn)
        _dead_letter(
            rule, target, event, error_code=type(ex).__name__, error_message=str(ex), retries=0
        )


def _deliver_to_lambda(
    rule: Any, target: dict[str, Any], event: dict[str, Any], transform_input: bool
) -> None:
    state = _installed
    if state is None:  # pragma: no cover - uninstall race
        return
    try:
        payload = json.dumps(target_input(target, event, transform_input)).encode()
    except Exception as ex:
        LOG.exception("rule %s: input transformation for %s failed", rule.name, target["Arn"])
        _dead_letter(
            rule, target, event, error_code=type(ex).__name__, error_message=str(ex), retries=0
        )
        return
    retries = (target.get("RetryPolicy") or {}).get("MaximumRetryAttempts")
    max_retries = len(ASYNC_RETRY_DELAYS_SECONDS) if retries is None else int(retries)
    event_copy = dict(event)

    def on_failure(error_type: str, message: str, made: int) -> None:
        _dead_letter(
            rule, target, event_copy, error_code=error_type, error_message=message, retries=made
        )

    _invoke_async(state, target["Arn"], payload, on_failure, min(max_retries, 185))


def _make_start_execution(original: Callable[..., Any]) -> Callable[..., Any]:
    def start_execution(
        self: Any,
        state_machine_arn: str,
        name: str | None = None,
        execution_input: str | None = None,
        trace_header: str | None = None,
    ) -> Any:
        """Wraps ``StepFunctionsParserBackend.start_execution``: a StartExecution without
        a name gets a UUID, as on AWS (moto names it ``None``, so a second one fails
        with ExecutionAlreadyExists or returns the first)."""
        return original(
            self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header
        )

    start_execution.__wrapped__ = original  # type: ignore[attr-defined]
    return start_execution


def _virtual_unix_time(dt: datetime | None = None) -> float:
    """Replaces ``moto.events.models.unix_time``: now on the clock, as epoch seconds."""
    if dt is not None:
        from moto.core.utils import unix_time

        return unix_time(dt)
    return _clock().now().timestamp()


# --------------------------------------------------------------------------------------
# 4. Virtual time in the interpreter
# --------------------------------------------------------------------------------------


def _wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
    """Replaces ``WaitFunction._wait_interval``: wait on the clock; end early when the
    execution stops (moto pulses ``program_state_event``)."""
    clock = _clock()
    deadline = clock.now() + timedelta(seconds=wait_seconds)
    while env.is_running():
        remaining = (deadline - clock.now()).total_seconds()
        if remaining <= 0:
            return
        clock.wait(env.program_state_event, remaining)


def _make_get_wait_seconds(failure_exception: type[Exception]) -> Callable[..., float]:
    def _get_wait_seconds(self: Any, env: Any) -> float:
        """Replaces ``Timestamp._get_wait_seconds``: seconds until the UTC timestamp."""
        self.string.eval(env=env)
        timestamp_str = env.stack.pop()
        timestamp = self._from_timestamp_string(timestamp=timestamp_str)
        if timestamp is None:
            raise failure_exception(self._create_failure_event(env, timestamp_str))
        return (timestamp.replace(tzinfo=UTC) - _clock().now()).total_seconds()

    return _get_wait_seconds


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def parse_timestamp(value: Any) -> datetime | None:
    """An ASL timestamp (RFC 3339: ``Z`` or an offset, optional fraction) as a naive
    UTC datetime, what moto's comparisons use; None if it is not one."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC).replace(tzinfo=None)


def _wait_timestamp(timestamp: str) -> datetime | None:
    """Replaces ``Timestamp._from_timestamp_string``: RFC 3339, offsets included."""
    return parse_timestamp(timestamp)


def _choice_timestamp(string: str) -> datetime | None:
    """Replaces ``IsTimestamp.string_to_timestamp``: RFC 3339, fractions and offsets."""
    return parse_timestamp(string)


def aws_timestamp(moment: datetime) -> str:
    """``2030-01-01T08:00:00.123Z``: how Step Functions writes context-object times."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _make_evaluation_environment(original: Callable[..., Any]) -> Callable[..., Any]:
    def _get_evaluation_environment(self: Any) -> Any:
        """Wraps ``ExecutionWorker._get_evaluation_environment``: ``$$.Execution.StartTime``
        is an ISO-8601 string as on AWS (moto puts a datetime there, and an execution
        whose output holds it makes DescribeExecution fail with a 500)."""
        env = original(self)
        execution = env.states.context_object.context_object_data["Execution"]
        if isinstance(execution.get("StartTime"), datetime):
            execution["StartTime"] = aws_timestamp(execution["StartTime"])
        return env

    _get_evaluation_environment.__wrapped__ = original  # type: ignore[attr-defined]
    return _get_evaluation_environment


class _ModuleShim(types.ModuleType):
    """A stand-in for a stdlib module with a few attributes replaced."""

    def __init__(self, real: types.ModuleType, **replaced: Any) -> None:
        super().__init__(real.__name__, real.__doc__)
        self.__dict__["_careflow_real"] = real
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_careflow_real"], name)


class _ClockJoinThread(threading.Thread):
    """``Thread`` whose ``join(timeout)`` counts the timeout on the clock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._careflow_done = _new_event()

    def run(self) -> None:
        try:
            super().run()
        finally:
            self._careflow_done.set()

    def join(self, timeout: float | None = None) -> None:
        if timeout is None or self._careflow_done.wait(timeout):
            super().join()


class _ClockDatetime(_datetime_module.datetime):
    """``datetime.datetime`` whose ``now()`` reads the clock."""

    @classmethod
    def now(cls, tz: _datetime_module.tzinfo | None = None) -> datetime:  # type: ignore[override]
        current = _clock().now()
        if tz is None:
            return current.astimezone().replace(tzinfo=None)
        return current.astimezone(tz)


class _AwsIsoDatetime(_datetime_module.datetime):
    """A datetime whose ``isoformat()`` is Step Functions' (``...:SS.mmmZ``)."""

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return aws_timestamp(self)


class _ClockDatetimeAwsIso(_datetime_module.datetime):
    """``datetime.datetime`` whose ``now()`` reads the clock and formats like AWS."""

    @classmethod
    def now(cls, tz: _datetime_module.tzinfo | None = None) -> datetime:  # type: ignore[override]
        current = _ClockDatetime.now(tz or UTC)
        return _AwsIsoDatetime.fromtimestamp(current.timestamp(), current.tzinfo)


def _clock_sleep(seconds: float) -> None:
    _clock().sleep(seconds)


_THREADING_WITH_CLOCK_EVENTS = _ModuleShim(threading, Event=_new_event)
_THREADING_WITH_CLOCK_JOIN = _ModuleShim(threading, Thread=_ClockJoinThread)
_TIME_WITH_CLOCK_SLEEP = _ModuleShim(_time_module, sleep=_clock_sleep)
_DATETIME_WITH_CLOCK = _ModuleShim(_datetime_module, datetime=_ClockDatetime)
_DATETIME_WITH_CLOCK_AWS_ISO = _ModuleShim(_datetime_module, datetime=_ClockDatetimeAwsIso)


# --------------------------------------------------------------------------------------
# 5. Speed: moto's serializer, parse each ASL once, compile each JSONPath once, copy
#    through pickle, start fewer threads (AWS calls in-process: see .inprocess)
# --------------------------------------------------------------------------------------


# (picker class, its alias providers, object type, key, shape, shape's parent) ->
# (shape, parent, the keys to try): see _make_cached_picker_call.
_PICKER_KEYS: dict[tuple[Any, ...], tuple[Any, Any, tuple[str, ...]]] = {}
_PICKER_KEYS_MAX = 65536


def _providers_key(picker: Any, default: Any) -> Any:
    """The picker's alias providers as part of a cache key: moto's default list
    (``default``, that every picker moto builds has) by a marker, any other list by its
    contents."""
    providers = picker.alias_providers
    return "default" if providers is default else tuple(providers)


def _make_cached_picker_call(original: Any) -> Any:
    """Replaces ``moto/core/serialize.py`` ``AttributePicker.__call__``, which asks every
    alias provider for every member of every structure it serializes, on every response
    (a DynamoDB item's AttributeValue has ten members: most of a GetItem's cost). The keys
    to try depend only on the picker's providers, the object's class (its ``Meta``
    aliases and class name), the member and its shape: they are worked out once and the
    object is searched in the same order as before. An object with a ``Meta`` of its own
    takes moto's path.
    """
    from moto.core.serialize import DEFAULT_ALIAS_PROVIDERS, MISSING
    from moto.core.utils import get_value

    def __call__(self: Any, context: Any) -> Any:
        obj = context.obj
        if "Meta" in getattr(obj, "__dict__", ()):
            return original(self, context)
        shape = context.shape
        parent = getattr(shape, "parent", None)
        cache_key = (
            type(self),
            _providers_key(self, DEFAULT_ALIAS_PROVIDERS),
            type(obj),
            context.key,
            id(shape),
            id(parent),
        )
        hit = _PICKER_KEYS.get(cache_key)
        if hit is None or hit[0] is not shape or hit[1] is not parent:
            keys = tuple(self.get_possible_keys(context))
            if len(_PICKER_KEYS) >= _PICKER_KEYS_MAX:
                _PICKER_KEYS.clear()
            _PICKER_KEYS[cache_key] = (shape, parent, keys)
        else:
            keys = hit[2]
        for possible_key in keys:
            value = get_value(obj, possible_key, MISSING)
            if value is not MISSING:
                break
        else:
            value = None
        if self.response_transformers:
            key_path = f"{context.key_path}.{context.key}"
            for transform_path, transform in self.response_transformers.items():
                if key_path.endswith(transform_path):
                    return transform(value)
        return value

    return __call__


def _make_skip_absent_members(original: Any) -> Any:
    """Wraps ``moto/core/serialize.py`` ``ResponseSerializer._serialize_structure_member``
    for the members of a plain ``dict`` whose keys to try are known (see
    :func:`_make_cached_picker_call`): the value is the first of those keys the dict holds,
    as the picker would find it, without building the picker's context; a member the dict
    does not hold serializes to nothing. Anything else takes moto's path."""
    from moto.core.serialize import DEFAULT_ALIAS_PROVIDERS, AttributePicker

    def member(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        picker = self._value_picker
        if (
            type(value) is dict
            and isinstance(picker, AttributePicker)
            and not picker.response_transformers
        ):
            parent = getattr(shape, "parent", None)
            hit = _PICKER_KEYS.get(
                (
                    type(picker),
                    _providers_key(picker, DEFAULT_ALIAS_PROVIDERS),
                    dict,
                    key,
                    id(shape),
                    id(parent),
                )
            )
            if hit is not None and hit[0] is shape and hit[1] is parent:
                keys = hit[2]
                if not any("." in k for k in keys):  # a dotted key is a path: moto's way
                    for k in keys:
                        if k in value:
                            member_value = value[k]
                            if member_value is not None:
                                self._serialize(serialized, member_value, shape, key)
                            return
                    return
        original(self, serialized, value, shape, key)

    return member


def _request_id(headerdict: dict[str, Any] | None = None) -> str:
    """moto's ``x-amzn-requestid``: 52 upper-case letters and digits (as DynamoDB's look)
    from moto's seedable random, drawn in one call rather than 52."""
    from moto.moto_api._internal import mock_random

    request_id = base64.b32encode(mock_random.randbytes(35)).decode()[:52]
    if isinstance(headerdict, dict):
        headerdict["x-amzn-requestid"] = request_id
    return request_id


_PARSED: dict[str, tuple[Any, Any]] = {}  # definition -> (shared program or None, tree)
_PARSED_MAX = 256


def _shares_safely(definition: str) -> bool:
    """Whether the evaluation components built for ``definition`` can serve several
    executions at once. They keep per-execution state in the Environment (retry counts
    live in ``env.heap``, Parallel builds its worker pool per evaluation), except Map
    states, whose components hold run state: a definition with a Map is rebuilt per run.
    """
    try:
        document = json.loads(definition)
    except ValueError:
        return False

    def states(d: Any) -> Any:
        for state in (d.get("States") or {}).values():
            yield state
            for branch in state.get("Branches", []):
                yield from states(branch)
            for key in ("Iterator", "ItemProcessor"):
                if isinstance(state.get(key), dict):
                    yield from states(state[key])

    return isinstance(document, dict) and all(s.get("Type") != "Map" for s in states(document))


def _make_cached_asl_parse(original: Any) -> Any:
    """Replaces ``AmazonStateLanguageParser.parse``, which runs the ANTLR parser and the
    Preprocessor on the whole definition for every execution (most of an execution's
    CPU). The evaluation program is kept per definition when its components can be
    shared (see :func:`_shares_safely`); otherwise the parse tree, which is immutable, is
    kept and the Preprocessor builds fresh components for each execution.
    """
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    parse = original.__func__ if isinstance(original, staticmethod) else original

    def cached_parse(definition: str) -> tuple[Any, Any]:
        cached = _PARSED.get(definition)
        if cached is None:
            program, tree = parse(definition)  # syntax errors raise, and are not cached
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[definition] = (program if _shares_safely(definition) else None, tree)
            return program, tree
        program, tree = cached
        return (program if program is not None else Preprocessor().visit(tree)), tree

    return staticmethod(cached_parse)


_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


def _pickle_deepcopy(value: Any, memo: Any = None) -> Any:
    """``copy.deepcopy`` through pickle: the same copy for the JSON values, dates and
    enums the interpreter copies, made in C instead of one Python call per object. What
    pickle cannot take goes to ``copy.deepcopy``.
    """
    if type(value) in _IMMUTABLE:
        return value
    try:
        return pickle.loads(pickle.dumps(value, -1))  # noqa: S301 - our own bytes, in memory
    except Exception:  # unpicklable (a lock, a lambda): the slow, general copy
        return _copy_module.deepcopy(value, memo)


_COPY_VIA_PICKLE = _ModuleShim(_copy_module, deepcopy=_pickle_deepcopy)


_INLINE = threading.local()


class _MaybeInlineThread(threading.Thread):
    """The ``Thread`` of ``execute_state``: when the state being evaluated has no timeout
    or heartbeat of its own (see :func:`_make_evaluate_maybe_inline`), ``start`` runs the
    target in the calling thread. Nothing then waits on a clock for it: the wait that
    follows finds the work already done.
    """

    def start(self) -> None:
        if getattr(_INLINE, "on", False):
            self.run()
        else:
            super().start()


def _make_evaluate_maybe_inline(original: Any) -> Any:
    """Wraps ``ExecutionState._evaluate_with_timeout``. moto runs every Task and Parallel
    state in a new thread so it can give up at ``TimeoutSeconds``; most states have no
    timeout of their own (moto's default is 99999999 s), and a new thread for each costs
    more than many states' work. Those run inline; states with ``TimeoutSeconds``,
    ``TimeoutSecondsPath`` or a heartbeat (task tokens, SLAs) keep moto's thread, on the
    clock. (A Lambda task with a timeout of its own would then not be cut short at it:
    the local cloud does not enforce Lambda timeouts anyway.)
    """
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import (
        TimeoutSeconds,
    )

    def evaluate(self: Any, env: Any) -> None:
        timeout = self.timeout
        inline = (
            self.heartbeat is None
            and isinstance(timeout, TimeoutSeconds)
            and timeout.is_default_value()
        )
        previous = getattr(_INLINE, "on", False)
        _INLINE.on = inline
        try:
            original(self, env)
        finally:
            _INLINE.on = previous

    return evaluate


def release_finished_threads() -> int:
    """moto keeps every thread it starts (one per Task state) in ``TMP_THREADS``, a list
    it never reads: a long-running local cloud would hold them all. Drops the finished
    ones; returns how many are left.
    """
    from moto.stepfunctions.parser.utils import TMP_THREADS

    TMP_THREADS[:] = [t for t in list(TMP_THREADS) if t.is_alive()]
    return len(TMP_THREADS)


def _make_program_eval(original: Any) -> Any:
    """Wraps ``Program.eval``, which evaluates every program (the state machine, and each
    Parallel branch) in a thread of its own only to ``join`` it with the state machine's
    ``TimeoutSeconds``. Without a timeout that join waits for the end anyway: the program
    runs in the calling thread (the execution's worker, or the branch's worker), which
    saves one thread per execution and per branch. With a timeout, moto's code runs (on
    the clock). An exception escaping the program is logged, as the thread would have.
    """
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    def eval_program(self: Any, env: Any) -> None:
        if self.timeout_seconds is not None:
            original(self, env)
            return
        env.next_state_name = self.start_at.start_at_name
        try:
            EvalComponent.eval(self, env)
        except Exception:  # moto's thread would end with it, and Program.eval return
            LOG.exception("step functions program ended with an exception")

    return eval_program


class _ReusedThreads:
    """Threads for moto's per-execution and per-branch workers, kept for reuse. A task
    gets an idle thread at once, or a new one when none is idle: as many run at a time as
    with a thread each (a branch waiting for a task token never holds up another). Each
    task runs in a fresh ``contextvars`` context, as in a new thread. A thread idle for
    ``idle_seconds`` ends.
    """

    def __init__(self, name: str, idle_seconds: float = 30.0) -> None:
        self._name = name
        self._idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[Callable[[], None]]] = []
        self._count = 0

    def submit(self, fn: Callable[[], None]) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
            self._count += inbox is None
            number = self._count
        if inbox is not None:
            inbox.put(fn)
            return
        inbox = queue.SimpleQueue()
        threading.Thread(
            target=self._loop, args=(inbox, fn), name=f"{self._name}-{number}", daemon=True
        ).start()

    def _loop(self, inbox: queue.SimpleQueue[Callable[[], None]], fn: Callable[[], None]) -> None:
        while True:
            try:
                contextvars.Context().run(fn)
            except Exception:  # a thread of its own would have ended with it
                LOG.exception("step functions worker ended with an exception")
            with self._lock:
                self._idle.append(inbox)
            try:
                fn = inbox.get(timeout=self._idle_seconds)
            except queue.Empty:
                with self._lock:
                    if inbox in self._idle:  # nobody picked it meanwhile: end
                        self._idle.remove(inbox)
                        return
                fn = inbox.get()  # picked while timing out: its task is coming


_WORKER_THREADS = _ReusedThreads("careflow-sfn-worker")


def _branch_worker_start(self: Any) -> None:
    """Replaces ``BranchWorker.start``, which starts a new thread for each branch of each
    Parallel evaluation, named after ``str(program)`` (a walk of the branch's whole
    component tree, for a thread name). The branch runs on a reused thread
    (:class:`_ReusedThreads`), concurrently with the others as before.
    """
    if self._worker_thread is not None:
        raise RuntimeError(f"Attempted to rerun BranchWorker for program ${self._program}.")
    self._worker_thread = threading.current_thread()  # replaced by the worker's own below

    def routine() -> None:
        self._worker_thread = threading.current_thread()  # moto logs its native_id
        self._thread_routine()

    _WORKER_THREADS.submit(routine)


def _execution_worker_start(self: Any) -> None:
    """Replaces ``ExecutionWorker.start``: the execution's program runs on a reused
    thread (:class:`_ReusedThreads`) instead of a new one per execution."""
    _WORKER_THREADS.submit(self._execution_logic)


def _make_cached_method_names(original: Any) -> Any:
    """Replaces ``method_names_from_class`` where moto's ``BaseResponse.call_action`` uses
    it: ``inspect.getmembers`` of the response class on every request. A class's methods
    do not change while the cloud runs."""
    return functools.lru_cache(maxsize=512)(original)


def _make_backend_lookup(original: Any) -> Any:
    """Replaces ``BackendDict.__getitem__``, which takes moto's global backend lock and
    scans every backend on every lookup (several per request) to create an account's
    backend the first time. Once created, the lookup is a plain dict read.
    """

    def getitem(self: Any, account_id: str) -> Any:
        try:
            return dict.__getitem__(self, account_id)
        except KeyError:
            return original(self, account_id)

    return getitem


def _make_cached_jsonpath_parse(original: Any) -> Any:
    """Replaces a module's ``parse`` from jsonpath_ng, which builds a new PLY parser for
    every path evaluated. Compiled paths are immutable; one per distinct path string.
    """
    return functools.lru_cache(maxsize=4096)(original)


_NOT_SET = object()


class _DottedPath:
    """A compiled ``$.a.b`` path (only named fields, as most ASL paths are) that answers
    ``find`` and ``update_or_create`` on plain dicts directly, as jsonpath_ng would: a
    match is a present key (its value may be null); ``update_or_create`` creates missing
    objects on the way and sets the last field. Anything else (a missing key on ``find``,
    a value on the way that is not a dict) goes to jsonpath_ng's expression, untouched.
    ``find`` gives its one match without the parent chain: moto's ``extract_json``, the
    only caller, reads the match's value and path.
    """

    def __init__(self, expression: Any, fields: tuple[str, ...]) -> None:
        from jsonpath_ng.jsonpath import DatumInContext, Fields

        self._expression = expression
        self._fields = fields
        self._last = Fields(fields[-1])
        self._datum = DatumInContext

    def find(self, data: Any) -> Any:
        value = data
        for name in self._fields:
            if type(value) is not dict:
                return self._expression.find(data)
            value = value.get(name, _NOT_SET)
            if value is _NOT_SET:
                return self._expression.find(data)
        return [self._datum(value, path=self._last)]

    def update_or_create(self, data: Any, value: Any) -> Any:
        node = data
        for name in self._fields[:-1]:  # first make sure nothing on the way is not a dict
            if type(node) is not dict:
                return self._expression.update_or_create(data, value)
            node = node.get(name)
            if node is None:
                break
        if type(node) is not dict and node is not None:
            return self._expression.update_or_create(data, value)
        if type(data) is not dict or callable(value):
            return self._expression.update_or_create(data, value)
        node = data
        for name in self._fields[:-1]:
            child = node.get(name, _NOT_SET)
            if child is _NOT_SET:
                child = node[name] = {}
            node = child
        node[self._fields[-1]] = value
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._expression, name)


def _dotted_fields(expression: Any) -> tuple[str, ...] | None:
    """The field names of ``$.a.b``-shaped compiled paths, or None."""
    from jsonpath_ng.jsonpath import Child, Fields, Root, auto_id_field

    fields: list[str] = []
    node = expression
    while isinstance(node, Child):
        right = node.right
        if (
            type(right) is not Fields
            or len(right.fields) != 1
            or right.fields[0] in ("*", auto_id_field)
            or getattr(right, "_deprecated_wildcard_use", False)
        ):
            return None
        fields.append(right.fields[0])
        node = node.left
    if type(node) is not Root or not fields:
        return None
    return tuple(reversed(fields))


def _make_state_entered_event_details(_original: Any) -> Any:
    """Replaces ``CommonStateField._get_state_entered_event_details``: the same details,
    without its copy of the state's input (which is only written out as JSON)."""
    from moto.stepfunctions.parser.api import (
        HistoryEventExecutionDataDetails,
        StateEnteredEventDetails,
    )
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    def details(self: Any, env: Any) -> Any:
        return StateEnteredEventDetails(
            name=self.name,
            input=to_json_str(env.states._states_data["input"], separators=(",", ":")),
            inputDetails=HistoryEventExecutionDataDetails(truncated=False),
        )

    return details


def _make_state_exited_event_details(_original: Any) -> Any:
    """Replaces ``CommonStateField._get_state_exited_event_details``: the same details,
    without its copy of the state's output (its input by then, only written out as JSON)."""
    from moto.stepfunctions.parser.api import (
        HistoryEventExecutionDataDetails,
        StateExitedEventDetails,
    )
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    def details(self: Any, env: Any) -> Any:
        event_details = StateExitedEventDetails(
            name=self.name,
            output=to_json_str(env.states._states_data["input"], separators=(",", ":")),
            outputDetails=HistoryEventExecutionDataDetails(truncated=False),
        )
        assigned_variables = env.variable_store.get_assigned_variables()
        env.variable_store.reset_tracing()
        if assigned_variables:
            event_details["assignedVariables"] = assigned_variables
            event_details["assignedVariablesDetails"] = {"truncated": False}
        return event_details

    return details


def _make_dotted_jsonpath_parse(original: Any) -> Any:
    """:func:`_make_cached_jsonpath_parse`, and ``$.a.b`` paths as :class:`_DottedPath`."""

    @functools.lru_cache(maxsize=4096)
    def parse(path: str) -> Any:
        expression = original(path)
        fields = _dotted_fields(expression)
        return expression if fields is None else _DottedPath(expression, fields)

    return parse


# --------------------------------------------------------------------------------------
# The patch list, its shape checks, install / uninstall
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Patch:
    owner: str  # module, or "module:Class"
    attribute: str
    replacement: Callable[[Any], Any] | None  # original -> replacement; None: only checked
    expect: Callable[[Any, Any], str | None]  # (owner, original) -> problem or None


def _resolve(owner: str) -> Any:
    module_name, _, class_name = owner.partition(":")
    target: Any = importlib.import_module(module_name)
    if class_name:
        target = getattr(target, class_name)
    return target


def _params(*names: str) -> Callable[[Any, Any], str | None]:
    def check(_owner: Any, original: Any) -> str | None:
        try:
            actual = list(inspect.signature(original).parameters)
        except (TypeError, ValueError):
            return "is not a function"
        return None if actual == list(names) else f"has parameters {actual}, expected {list(names)}"

    return check


def _is(
    expected: Any, *, used_in: Iterable[tuple[str, str]] = ()
) -> Callable[[Any, Any], str | None]:
    """The attribute is ``expected`` and the named functions still call it as patched."""

    def check(_owner: Any, original: Any) -> str | None:
        if original is not expected:
            return f"is {original!r}, expected {expected!r}"
        for function_path, needle in used_in:
            source = inspect.getsource(_resolve_function(function_path))
            if needle not in source:
                return f"is no longer used as '{needle}' in {function_path}"
        return None

    return check


def _source_has(*needles: str) -> Callable[[Any, Any], str | None]:
    """The replaced function's source still holds each of ``needles``."""

    def check(_owner: Any, original: Any) -> str | None:
        source = inspect.getsource(original)
        missing = [n for n in needles if n not in source]
        return f"no longer contains {missing}" if missing else None

    return check


def _all(*checks: Callable[[Any, Any], str | None]) -> Callable[[Any, Any], str | None]:
    def check(owner: Any, original: Any) -> str | None:
        for one in checks:
            problem = one(owner, original)
            if problem:
                return problem
        return None

    return check


def _resolve_function(path: str) -> Any:
    owner, _, name = path.rpartition(".")
    return getattr(_resolve(owner), name)


def _patches() -> list[_Patch]:
    from moto.core import utils as moto_core_utils
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEventException,
    )

    exec_state = f"{_ASL}.component.state.exec.execute_state"
    callback = f"{_ASL}.eval.callback.callback"
    environment = f"{_ASL}.eval.environment"
    retrier = f"{_ASL}.component.common.retry.retrier_decl"
    program = f"{_ASL}.component.program.program"
    client_params = _params("region", "service", "state_credentials")

    patches = [
        # 1. cached clients (the defining module first, then every importer)
        *(
            _Patch(module, "boto_client_for", lambda _o: _cached_boto_client_for, client_params)
            for module in (_BOTO_CLIENT_MODULE, *_BOTO_CLIENT_IMPORTERS)
        ),
        # 2. Lambda code through the HTTP API
        _Patch(
            "moto.awslambda_simple.models:LambdaSimpleBackend",
            "invoke",
            lambda _o: _lambda_simple_invoke,
            _params("self", "function_name", "qualifier", "body", "headers", "response_headers"),
        ),
        # 3. EventBridge targets, and event time on the clock
        _Patch(
            "moto.events.models:Rule",
            "send_to_targets",
            _make_send_to_targets,
            _params("self", "original_event", "transform_input"),
        ),
        _Patch(
            "moto.events.models",
            "unix_time",
            lambda _o: _virtual_unix_time,
            _is(
                moto_core_utils.unix_time,
                used_in=[("moto.events.models:EventsBackend.put_events", "unix_time()")],
            ),
        ),
        # StartExecution without a name
        _Patch(
            f"{_SFN}.models:StepFunctionsParserBackend",
            "start_execution",
            _make_start_execution,
            _params("self", "state_machine_arn", "name", "execution_input", "trace_header"),
        ),
        # 4. virtual time in the interpreter
        _Patch(
            f"{_ASL}.component.state.wait.wait_function.wait_function:WaitFunction",
            "_wait_interval",
            lambda _o: _wait_interval,
            _params("self", "env", "wait_seconds"),
        ),
        _Patch(
            f"{_ASL}.component.state.wait.wait_function.timestamp:Timestamp",
            "_get_wait_seconds",
            lambda _o: _make_get_wait_seconds(FailureEventException),
            _params("self", "env"),
        ),
        _Patch(
            exec_state,
            "threading",
            lambda _o: _THREADING_WITH_CLOCK_EVENTS,
            _is(
                threading,
                used_in=[
                    (f"{exec_state}:ExecutionState._evaluate_with_timeout", "threading.Event()"),
                    (
                        f"{exec_state}:ExecutionState._evaluate_with_timeout",
                        ".wait(timeout_seconds)",
                    ),
                ],
            ),
        ),
        _Patch(
            callback,
            "Event",
            lambda _o: _new_event,
            _is(
                threading.Event,
                used_in=[
                    (f"{callback}:CallbackEndpoint.__init__", "Event()"),
                    (f"{callback}:HeartbeatEndpoint.__init__", "Event()"),
                ],
            ),
        ),
        _Patch(
            environment,
            "threading",
            lambda _o: _THREADING_WITH_CLOCK_EVENTS,
            _is(
                threading,
                used_in=[
                    (f"{environment}:Environment.__init__", "threading.Event()"),
                    (f"{environment}:Environment.set_stop", "program_state_event.set()"),
                ],
            ),
        ),
        _Patch(
            retrier,
            "time",
            lambda _o: _TIME_WITH_CLOCK_SLEEP,
            _is(_time_module, used_in=[(f"{retrier}:RetrierDecl._eval_body", "time.sleep(")]),
        ),
        _Patch(
            program,
            "threading",
            lambda _o: _THREADING_WITH_CLOCK_JOIN,
            _is(
                threading,
                used_in=[
                    (f"{program}:Program.eval", "threading.Thread("),
                    (f"{program}:Program.eval", "join(timeout=timeout)"),
                ],
            ),
        ),
    ]
    choice_is = f"{_ASL}.component.state.choice.comparison.operator.implementations.is_operator"
    patches += [
        # ASL fidelity: timestamps as AWS writes and reads them
        _Patch(
            f"{_ASL}.component.state.wait.wait_function.timestamp:Timestamp",
            "_from_timestamp_string",
            lambda _o: staticmethod(_wait_timestamp),
            _params("timestamp"),
        ),
        _Patch(
            f"{choice_is}:IsTimestamp",
            "string_to_timestamp",
            lambda _o: staticmethod(_choice_timestamp),
            _params("string"),
        ),
        _Patch(
            f"{_SFN}.backend.execution_worker:ExecutionWorker",
            "_get_evaluation_environment",
            _make_evaluation_environment,
            _params("self"),
        ),
        _Patch(
            f"{_ASL}.component.state.state",
            "datetime",
            lambda _o: _DATETIME_WITH_CLOCK_AWS_ISO,
            _is(
                _datetime_module,
                used_in=[
                    (
                        f"{_ASL}.component.state.state:CommonStateField._eval_body",
                        "datetime.datetime.now(tz=datetime.timezone.utc).isoformat()",
                    )
                ],
            ),
        ),
    ]
    import jsonpath_ng
    import jsonpath_ng.ext
    from moto.utilities import aws_headers as moto_aws_headers

    patches += [
        # 5. speed
        _Patch(
            f"{exec_state}:ExecutionState",
            "_evaluate_with_timeout",
            _make_evaluate_maybe_inline,
            _params("self", "env"),
        ),
        _Patch(
            exec_state,
            "Thread",
            lambda _o: _MaybeInlineThread,
            _is(
                threading.Thread,
                used_in=[(f"{exec_state}:ExecutionState._evaluate_with_timeout", "Thread(")],
            ),
        ),
        _Patch(
            f"{program}:Program",
            "eval",
            _make_program_eval,
            _all(
                _params("self", "env"),
                _source_has(
                    "threading.Thread(target=super().eval, args=(env,)",
                    "worker_thread.join(timeout=timeout)",
                ),
            ),
        ),
        _Patch(
            f"{_ASL}.component.state.exec.state_parallel.branch_worker:BranchWorker",
            "start",
            lambda _o: _branch_worker_start,
            _all(
                _params("self"),
                _source_has(
                    'name=f"BranchWorker_${self._program}"',
                    "TMP_THREADS.append(self._worker_thread)",
                ),
            ),
        ),
        _Patch(
            f"{_SFN}.backend.execution_worker:ExecutionWorker",
            "start",
            lambda _o: _execution_worker_start,
            _all(
                _params("self"),
                _source_has(
                    "Thread(target=self._execution_logic, daemon=True)",
                    "execution_logic_thread.start()",
                ),
            ),
        ),
        _Patch(
            "moto.core.responses",
            "method_names_from_class",
            _make_cached_method_names,
            _params("clazz"),
        ),
        _Patch(
            "moto.core.base_backend:BackendDict",
            "__getitem__",
            _make_backend_lookup,
            _params("self", "account_id"),
        ),
        _Patch(
            f"{_ASL}.parse.asl_parser:AmazonStateLanguageParser",
            "parse",
            _make_cached_asl_parse,
            _params("definition"),
        ),
        _Patch(
            f"{_ASL}.utils.json_path",
            "parse",
            _make_dotted_jsonpath_parse,
            _is(
                jsonpath_ng.ext.parse,
                used_in=[(f"{_ASL}.utils.json_path.extract_json", "input_expr.find(data)")],
            ),
        ),
        _Patch(
            f"{_ASL}.component.common.path.result_path",
            "parse",
            _make_dotted_jsonpath_parse,
            _is(
                jsonpath_ng.parse,
                used_in=[
                    (
                        f"{_ASL}.component.common.path.result_path:ResultPath._eval_body",
                        "result_expr.update_or_create(",
                    )
                ],
            ),
        ),
        _Patch(
            "jsonpath_ng.ext",
            "parse",
            _make_cached_jsonpath_parse,
            _is(
                jsonpath_ng.ext.parse,
                used_in=[
                    (
                        "moto.events.utils:EventTemplateParser.parse",
                        "from jsonpath_ng.ext import parse",
                    )
                ],
            ),
        ),
        _Patch(
            f"{_ASL}.eval.states:States",
            "get_input",
            None,
            _source_has('return self._extract(query, self._states_data["input"])'),
        ),
        _Patch(
            f"{_ASL}.component.state.state:CommonStateField",
            "_get_state_entered_event_details",
            _make_state_entered_event_details,
            _all(
                _params("self", "env"),
                _source_has(
                    "name=self.name",
                    'input=to_json_str(env.states.get_input(), separators=(",", ":"))',
                    "inputDetails=HistoryEventExecutionDataDetails(",
                    "truncated=False",
                ),
            ),
        ),
        _Patch(
            f"{_ASL}.component.state.state:CommonStateField",
            "_get_state_exited_event_details",
            _make_state_exited_event_details,
            _all(
                _params("self", "env"),
                _source_has(
                    'output=to_json_str(env.states.get_input(), separators=(",", ":"))',
                    "assigned_variables = env.variable_store.get_assigned_variables()",
                    "env.variable_store.reset_tracing()",
                    'event_details["assignedVariables"] = assigned_variables',
                    'event_details["assignedVariablesDetails"] = {"truncated": False}',
                ),
            ),
        ),
        # The DynamoDB lane (no replacement: what it relies on is checked)
        _Patch(
            "moto.core.responses:BaseResponse",
            "call_action",
            None,
            _source_has(
                "self._authenticate_and_authorize_normal_action(resource)",
                "action = camelcase_to_underscores(self._get_action())",
                "except ServiceException as e:",
                "se_status, se_headers, se_body = self.serialized(ActionResult(e))",
                "except HTTPException as http_error:",
                "status, headers, body = self.serialized(response)",
                "status, headers, body = self._transform_response(headers, response)",
                "headers, body = self._enrich_response(headers, body)",
            ),
        ),
        _Patch(
            "moto.dynamodb.responses:DynamoHandler",
            "call_action",
            None,
            _source_has('self.body = getattr(self, "params", {})', "return super().call_action()"),
        ),
        _Patch(
            "moto.dynamodb.responses:DynamoHandler",
            "__init__",
            None,
            _source_has("self.automated_parameter_parsing = True"),
        ),
        _Patch(
            "moto.core.responses:BaseResponse",
            "setup_class",
            None,
            _source_has(
                "self.uri_match: dict[str, Any] = {}",
                "self.current_account = self.get_current_account()",
                "self.parse_parameters(request)",
            ),
        ),
        _Patch(
            "moto.core.serialize:AttributePicker",
            "__call__",
            _make_cached_picker_call,
            _all(
                _params("self", "context"),
                _source_has("self.get_possible_keys(context)", "self.response_transformers"),
            ),
        ),
        _Patch(
            "moto.core.serialize:ResponseSerializer",
            "_serialize_structure_member",
            _make_skip_absent_members,
            _all(
                _params("self", "serialized", "value", "shape", "key"),
                _source_has(
                    "member_value = self.get_value(value, key, shape)",
                    "if member_value is not None:",
                    "self._serialize(serialized, member_value, shape, key)",
                ),
            ),
        ),
        _Patch(
            "moto.core.responses",
            "gen_amzn_requestid_long",
            lambda _o: _request_id,
            _is(
                moto_aws_headers.gen_amzn_requestid_long,
                used_in=[
                    (
                        "moto.core.responses:BaseResponse._enrich_response",
                        "gen_amzn_requestid_long(headers)",
                    )
                ],
            ),
        ),
    ]
    # The interpreter deep-copies the state on every read (``States.get_input``), every
    # path and every result: most of its Python-level calls.
    for module, function in (
        (f"{_ASL}.eval.states", "States._extract"),
        (f"{_ASL}.eval.states", "States.reset"),
        (f"{_ASL}.component.common.string.string_expression", "StringJsonPath._eval_body"),
        (f"{_ASL}.component.common.path.result_path", "ResultPath._eval_body"),
        (exec_state, "ExecutionState._evaluate_with_timeout"),
        (f"{_ASL}.component.state.exec.state_parallel.state_parallel", "StateParallel._eval_state"),
        (
            f"{_ASL}.component.state.exec.state_task.service.state_task_service",
            "StateTaskService._eval_execution",
        ),
        (f"{_ASL}.eval.event.event_manager", "EventManager._create_history_log"),
        (environment, "Environment.program_state"),
        (environment, "Environment.as_inner_frame_of"),
    ):
        class_name, _, method = function.partition(".")
        patches.append(
            _Patch(
                module,
                "copy",
                lambda _o: _COPY_VIA_PICKLE,
                _is(_copy_module, used_in=[(f"{module}:{class_name}.{method}", "copy.deepcopy(")]),
            )
        )
    for module, function in (
        (f"{_SFN}.models", "StepFunctionsParserBackend.start_execution"),
        (f"{_SFN}.backend.execution", "BaseExecutionWorkerCommunication._reflect_execution_status"),
        (f"{_ASL}.eval.event.event_manager", "EventManager._get_current_timestamp"),
    ):
        class_name, _, method = function.partition(".")
        patches.append(
            _Patch(
                module,
                "datetime",
                lambda _o: _DATETIME_WITH_CLOCK,
                _is(
                    _datetime_module,
                    used_in=[(f"{module}:{class_name}.{method}", "datetime.datetime.now(")],
                ),
            )
        )
    return patches


def _check_shape(patches: list[_Patch]) -> None:
    import moto

    problems = []
    for patch in patches:
        try:
            owner = _resolve(patch.owner)
        except (ImportError, AttributeError) as ex:
            problems.append(f"{patch.owner}: cannot be imported ({ex})")
            continue
        if not hasattr(owner, patch.attribute):
            problems.append(f"{patch.owner}.{patch.attribute}: missing")
            continue
        try:
            problem = patch.expect(owner, getattr(owner, patch.attribute))
        except (ImportError, AttributeError, OSError, TypeError) as ex:
            problem = f"cannot be checked ({ex})"
        if problem:
            problems.append(f"{patch.owner}.{patch.attribute}: {problem}")
    if problems:
        raise MotoShapeError(
            f"careflow.localcloud.gaps was written for moto {MOTO_VERSION}; installed moto "
            f"{moto.__version__} differs where it patches:\n  " + "\n  ".join(problems)
        )
    if moto.__version__ != MOTO_VERSION:
        LOG.warning(
            "moto %s (gaps written for %s): shapes match, patching anyway",
            moto.__version__,
            MOTO_VERSION,
        )


def install(
    *,
    clock: VirtualClock,
    invoke: InvokeFn,
    start_execution: StartExecutionFn | None = None,
) -> None:
    """Fill moto's gaps in this process. Idempotent: a second call replaces the
    clock, ``invoke`` and ``start_execution`` and keeps the patches.

    Also installs ``clock`` as the process clock (:func:`careflow.clock.set_clock`),
    so in-process handlers see the same time as the interpreter.
    """
    global _installed
    with _install_lock:
        if _installed is not None:
            _installed.clock = clock
            _installed.invoke = invoke
            _installed.start_execution = start_execution
            process_clock.set_clock(clock)
            return
        for module in _BOTO_CLIENT_IMPORTERS:  # import them all, so all get patched
            importlib.import_module(module)
        patches = _patches()
        _check_shape(patches)
        boto_module = importlib.import_module(_BOTO_CLIENT_MODULE)
        state = _Installed(
            clock=clock,
            invoke=invoke,
            start_execution=start_execution,
            previous_process_clock=process_clock.get_clock(),
            boto_client_for=boto_module.boto_client_for,
        )
        for patch in patches:
            if patch.replacement is None:
                continue  # code careflow relies on as it is (see the DynamoDB lane)
            owner = _resolve(patch.owner)
            own = patch.attribute in vars(owner)
            original = vars(owner)[patch.attribute] if own else getattr(owner, patch.attribute)
            setattr(owner, patch.attribute, patch.replacement(original))
            state.originals.append((owner, patch.attribute, original if own else _INHERITED))
        # Any other parser module holding moto's function (imported by name later on).
        for name, loaded in list(sys.modules.items()):
            if (
                name.startswith(_SFN)
                and loaded is not None
                and vars(loaded).get("boto_client_for") is state.boto_client_for
            ):
                vars(loaded)["boto_client_for"] = _cached_boto_client_for
                state.originals.append((loaded, "boto_client_for", state.boto_client_for))
        _installed = state
        process_clock.set_clock(clock)
        LOG.info("moto gaps installed (%d patches)", len(state.originals))


def uninstall() -> None:
    """Undo :func:`install`: moto's original functions and attributes come back."""
    global _installed
    with _install_lock:
        state = _installed
        if state is None:
            return
        for owner, attribute, original in reversed(state.originals):
            if original is _INHERITED:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)
        # A parser module imported while installed took our function by name.
        for name, loaded in list(sys.modules.items()):
            if (
                name.startswith(_SFN)
                and loaded is not None
                and vars(loaded).get("boto_client_for") is _cached_boto_client_for
            ):
                vars(loaded)["boto_client_for"] = state.boto_client_for
        _installed = None
        process_clock.set_clock(state.previous_process_clock)
        state.pool.shutdown(wait=False)
        with contextlib.suppress(Exception):
            for client in state.clients.values():
                if isinstance(client, InProcessLambdaClient):
                    continue  # getattr would build the real client it stands in for
                close = getattr(client, "close", None)
                if callable(close):
                    close()
        state.clients.clear()
        LOG.info("moto gaps uninstalled")


__all__ = [
    "ASYNC_RETRY_DELAYS_SECONDS",
    "MOTO_VERSION",
    "ClockEvent",
    "InProcessLambdaClient",
    "InvokeFn",
    "MotoShapeError",
    "StartExecutionFn",
    "SystemClock",
    "clients_built",
    "install",
    "is_installed",
    "release_finished_threads",
    "target_input",
    "uninstall",
]
