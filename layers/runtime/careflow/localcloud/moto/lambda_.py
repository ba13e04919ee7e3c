"""Lambda on the local cloud: functions run in this process (the installed ``invoke``),
synchronously or as an asynchronous invocation with Lambda's retries.

Patched: ``moto/awslambda_simple/models.py`` ``LambdaSimpleBackend.invoke`` (which
echoes the payload), so ``lambda:Invoke`` through the HTTP API runs the function
(``X-Amz-Function-Error`` on errors). The interpreter's Lambda tasks get the in-process
client of :mod:`.clients`, which calls the helpers here. ``Event`` invocations (and
EventBridge's Lambda targets, :mod:`.events`) run on the installed pool and retry a
function error after 1 then 2 (virtual) minutes.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .shapes import Patch, params
from .state import (
    ASYNC_RETRY_DELAYS_SECONDS,
    Installed,
    InvokeFn,
    current,
    current_clock,
)

LOG = logging.getLogger(__name__)

_INVOKE_PARAMS = ("self", "function_name", "qualifier", "body", "headers", "response_headers")


def error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def call_invoke(invoke: InvokeFn, function: str, payload: bytes) -> tuple[bytes, str | None]:
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
        return error_payload(type(ex).__name__, str(ex)), "Unhandled"
    if isinstance(body, str):
        body = body.encode()
    return (body or b"null"), error


def as_bytes(payload: Any) -> bytes:
    if payload is None:
        return b"{}"
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    if hasattr(payload, "read"):
        return as_bytes(payload.read())
    return json.dumps(payload).encode()


def qualified(function_name: str, qualifier: str | None) -> str:
    if not qualifier or function_name.endswith(f":{qualifier}"):
        return function_name
    return f"{function_name}:{qualifier}"


def _lambda_simple_invoke(
    self: Any,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> bytes | None:
    """Replaces ``LambdaSimpleBackend.invoke``: run the function instead of echoing."""
    state = current()
    self.get_function(function_name, qualifier)  # ResourceNotFoundException like AWS
    function = qualified(function_name, qualifier)
    payload = as_bytes(body) if body else b"{}"
    invocation_type = headers.get("X-Amz-Invocation-Type") or "RequestResponse"
    if state is None:  # pragma: no cover - uninstall race
        return payload
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":
        invoke_async(state, function, payload, on_failure=None)
        return b""
    result, error = call_invoke(state.invoke, function, payload)
    if error:
        response_headers["x-amz-function-error"] = error
    return result


FailureHandler = Callable[[str, str, int], None]  # (error type, message, retries made)


def invoke_async(
    state: Installed,
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
            body, error = call_invoke(invoke, function, payload)
        except Exception as ex:  # a ClientError from the dispatcher
            body, error = error_payload(type(ex).__name__, str(ex)), "Unhandled"
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
    current_clock().sleep(delay)
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


def patches() -> list[Patch]:
    return [
        Patch(
            "moto.awslambda_simple.models:LambdaSimpleBackend",
            "invoke",
            lambda _o: _lambda_simple_invoke,
            params(*_INVOKE_PARAMS),
        )
    ]


def stock_invoke_replacement(invoke: InvokeFn) -> Callable[..., bytes]:
    """For the benchmark's baseline (stock moto plus only this): a
    ``LambdaSimpleBackend.invoke`` that runs ``invoke`` synchronously, and nothing else."""

    def run(
        _backend: Any,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        payload = body.encode() if isinstance(body, str) else (body or b"{}")
        result, error = invoke(function_name, payload)
        if error:
            response_headers["x-amz-function-error"] = error
        return result

    return run
