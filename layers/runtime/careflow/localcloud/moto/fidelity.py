"""Step Functions behaviour moto 5.2.5 gets wrong, made as AWS has it.

Patched (paths under ``moto/stepfunctions/parser/``):

- ``models.py`` ``StepFunctionsParserBackend.start_execution``: a StartExecution without
  ``name`` gets a UUID (moto names it ``None``: the second one fails with
  ExecutionAlreadyExists, or returns the first when the input is the same);
- ``backend/execution_worker.py`` ``ExecutionWorker._get_evaluation_environment``:
  ``$$.Execution.StartTime`` is an ISO string (moto puts a datetime there, and an output
  holding it makes DescribeExecution fail with a 500);
- ``asl/component/state/wait/wait_function/timestamp.py``
  ``Timestamp._from_timestamp_string`` and
  ``asl/component/state/choice/comparison/operator/implementations/is_operator.py``
  ``IsTimestamp.string_to_timestamp``: RFC 3339 timestamps with fractions or offsets
  (moto only takes ``...:SSZ``: ``EnteredTime`` was no valid Wait timestamp, and a
  Choice on ``2030-01-01T00:00:00.5Z`` was silently false);
- ``backend/execution.py`` ``Execution.stop``: StopExecution ends an execution that waits
  on a task token (moto marks the program stopped but leaves its thread blocked in the
  callback wait, so the execution stayed RUNNING for ever). The stop now wakes the
  execution's callback endpoints with no outcome; the state ends (a TaskTimedOut event,
  as moto records an interrupted wait), and the execution ends ABORTED with
  ``ExecutionAborted``; ``asl/eval/environment.py`` ``Environment.set_error`` and
  ``set_timed_out``: a stopped program stays stopped (moto let the interrupted state's
  failure turn an ABORTED execution into FAILED). A StopExecution right after the
  start waits (at most ``STOP_START_WAIT_S``) for the program to begin: moto failed
  with ``AttributeError`` before the worker had built its environment, and ignored
  the stop before the first state ran.

- ``models.py`` ``StepFunctionsParserBackend._get_executions``: only executions whose
  program environment exists. SendTaskSuccess/Failure/Heartbeat (and the Map-run calls)
  walk every execution and read ``exec_worker.env``; one started a moment before, whose
  worker thread had not built it yet, made them fail with ``AttributeError`` (an
  InternalFailure: a person's decision on a task was lost while another case started).
  Such an execution holds no task token and no Map run, so skipping it changes nothing
  else.

Child executions (``states:startExecution``) are :mod:`.children`.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .clock import aws_timestamp
from .shapes import Patch, all_of, params, source_has
from .state import ASL, SFN


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


#: How long a StopExecution waits for a just-started execution's program to begin.
STOP_START_WAIT_S = 5.0


def _await_program_start(worker: Any, wait_s: float = STOP_START_WAIT_S) -> None:
    """Returns once ``worker``'s program has begun (or ``wait_s`` passed).

    moto starts an execution's program in a thread that builds its environment, and
    only the first state marks the program running: a StopExecution that came before
    either failed (``None.set_stop``: an InternalFailure) or was ignored (the program
    then ran on, RUNNING after the stop). AWS stops such an execution.
    """
    deadline = time.monotonic() + wait_s
    while worker is not None and time.monotonic() < deadline:
        env = getattr(worker, "env", None)
        if env is not None and getattr(env, "_program_state", None) is not None:
            return
        time.sleep(0.001)


def _make_stop(original: Callable[..., None]) -> Callable[..., None]:
    def stop(self: Any, stop_date: datetime, error: str | None, cause: str | None) -> None:
        _await_program_start(getattr(self, "exec_worker", None))
        original(self, stop_date, error, cause)
        env = getattr(getattr(self, "exec_worker", None), "env", None)
        pool = getattr(getattr(env, "callback_pool_manager", None), "_pool", None)
        for endpoint in list((pool or {}).values()):
            endpoint._notify_event.set()  # the wait returns without an outcome

    return stop


def _make_unless_stopped(original: Callable[..., None]) -> Callable[..., None]:
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    def set_state(self: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(self._program_state, ProgramStopped):
            return  # StopExecution is final: an interrupted state's failure changes nothing
        original(self, *args, **kwargs)

    return set_state


def _make_get_executions(original: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    def _get_executions(self: Any, execution_status: Any = None) -> list[Any]:
        return [
            execution
            for execution in original(self, execution_status)
            if getattr(getattr(execution, "exec_worker", None), "env", None) is not None
        ]

    _get_executions.__wrapped__ = original  # type: ignore[attr-defined]
    return _get_executions


def patches() -> list[Patch]:
    choice_is = f"{ASL}.component.state.choice.comparison.operator.implementations.is_operator"
    return [
        Patch(
            f"{SFN}.models:StepFunctionsParserBackend",
            "_get_executions",
            _make_get_executions,
            all_of(
                params("self", "execution_status"),
                source_has("for execution in sm.executions:"),
            ),
        ),
        Patch(
            f"{SFN}.models:StepFunctionsParserBackend",
            "start_execution",
            _make_start_execution,
            params("self", "state_machine_arn", "name", "execution_input", "trace_header"),
        ),
        Patch(
            f"{ASL}.component.state.wait.wait_function.timestamp:Timestamp",
            "_from_timestamp_string",
            lambda _o: staticmethod(_wait_timestamp),
            params("timestamp"),
        ),
        Patch(
            f"{choice_is}:IsTimestamp",
            "string_to_timestamp",
            lambda _o: staticmethod(_choice_timestamp),
            params("string"),
        ),
        Patch(
            f"{SFN}.backend.execution:Execution",
            "stop",
            _make_stop,
            all_of(
                params("self", "stop_date", "error", "cause"),
                source_has("exec_worker.stop(stop_date=stop_date, cause=cause, error=error)"),
            ),
        ),
        Patch(
            f"{ASL}.eval.environment:Environment",
            "set_error",
            _make_unless_stopped,
            all_of(params("self", "error"), source_has("self._program_state = ProgramError(")),
        ),
        Patch(
            f"{ASL}.eval.environment:Environment",
            "set_timed_out",
            _make_unless_stopped,
            all_of(params("self"), source_has("self._program_state = ProgramTimedOut()")),
        ),
        Patch(
            f"{ASL}.eval.callback.callback:CallbackEndpoint",
            "wait",
            None,
            source_has("self._notify_event.wait(timeout=timeout)", "return self._outcome"),
        ),
        Patch(
            f"{SFN}.backend.execution_worker:ExecutionWorker",
            "_get_evaluation_environment",
            _make_evaluation_environment,
            params("self"),
        ),
    ]
