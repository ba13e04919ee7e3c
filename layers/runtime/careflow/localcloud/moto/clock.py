"""Virtual time: every timer moto's interpreter and EventBridge run reads the clock.

Patched (paths under ``moto/stepfunctions/parser/`` unless they start with ``moto/``):

- ``asl/component/state/wait/wait_function/wait_function.py``
  ``WaitFunction._wait_interval``: Wait ``Seconds``/``SecondsPath``/``Timestamp*``;
- ``asl/component/state/wait/wait_function/timestamp.py``
  ``Timestamp._get_wait_seconds``: measured against the clock, in UTC (moto compares a
  UTC timestamp with the naive *local* ``datetime.now()``);
- ``asl/component/state/exec/execute_state.py`` module attribute ``threading``:
  ``_evaluate_with_timeout``'s ``threading.Event()`` is a ``ClockEvent``, so
  ``TimeoutSeconds``/``TimeoutSecondsPath`` run on the clock;
- ``asl/eval/callback/callback.py`` module attribute ``Event``: the
  ``.waitForTaskToken`` wait and the ``HeartbeatSeconds`` wait;
- ``asl/eval/environment.py`` module attribute ``threading``: ``program_state_event``
  (what a Wait state sleeps on) is a ``ClockEvent``;
- ``asl/component/common/retry/retrier_decl.py`` module attribute ``time``:
  ``RetrierDecl._eval_body``'s ``time.sleep`` (Retry intervals);
- ``asl/component/program/program.py`` module attribute ``threading``:
  ``Program.eval``'s ``worker_thread.join(timeout)`` (state machine ``TimeoutSeconds``);
- module attribute ``datetime`` of ``models.py`` (execution ``startDate``),
  ``backend/execution.py`` (``stopDate``), ``asl/eval/event/event_manager.py`` (history
  timestamps) and ``asl/component/state/state.py`` (``$$.State.EnteredTime``, written
  ``2030-01-01T08:00:00.000Z`` as on AWS);
- ``moto/events/models.py`` ``unix_time``: an event's ``time`` is the clock's.

With no ``advance`` a ``VirtualClock`` at speed 1 behaves like real time.
"""

from __future__ import annotations

import datetime as _datetime_module
import threading
import time as _time_module
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from .shapes import Patch, is_, params
from .state import ASL, SFN, ModuleShim, current_clock, new_event


def _virtual_unix_time(dt: datetime | None = None) -> float:
    """Replaces ``moto.events.models.unix_time``: now on the clock, as epoch seconds."""
    if dt is not None:
        from moto.core.utils import unix_time

        return unix_time(dt)
    return current_clock().now().timestamp()


def _wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
    """Replaces ``WaitFunction._wait_interval``: wait on the clock; end early when the
    execution stops (moto pulses ``program_state_event``)."""
    clock = current_clock()
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
        return (timestamp.replace(tzinfo=UTC) - current_clock().now()).total_seconds()

    return _get_wait_seconds


def aws_timestamp(moment: datetime) -> str:
    """``2030-01-01T08:00:00.123Z``: how Step Functions writes context-object times."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class _ClockJoinThread(threading.Thread):
    """``Thread`` whose ``join(timeout)`` counts the timeout on the clock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._careflow_done = new_event()

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
        current = current_clock().now()
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
    current_clock().sleep(seconds)


_THREADING_WITH_CLOCK_EVENTS = ModuleShim(threading, Event=new_event)
_THREADING_WITH_CLOCK_JOIN = ModuleShim(threading, Thread=_ClockJoinThread)
_TIME_WITH_CLOCK_SLEEP = ModuleShim(_time_module, sleep=_clock_sleep)
_DATETIME_WITH_CLOCK = ModuleShim(_datetime_module, datetime=_ClockDatetime)
_DATETIME_WITH_CLOCK_AWS_ISO = ModuleShim(_datetime_module, datetime=_ClockDatetimeAwsIso)


def patches() -> list[Patch]:
    from moto.core import utils as moto_core_utils
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEventException,
    )

    exec_state = f"{ASL}.component.state.exec.execute_state"
    callback = f"{ASL}.eval.callback.callback"
    environment = f"{ASL}.eval.environment"
    retrier = f"{ASL}.component.common.retry.retrier_decl"
    program = f"{ASL}.component.program.program"
    patches = [
        Patch(
            "moto.events.models",
            "unix_time",
            lambda _o: _virtual_unix_time,
            is_(
                moto_core_utils.unix_time,
                used_in=[("moto.events.models:EventsBackend.put_events", "unix_time()")],
            ),
        ),
        Patch(
            f"{ASL}.component.state.wait.wait_function.wait_function:WaitFunction",
            "_wait_interval",
            lambda _o: _wait_interval,
            params("self", "env", "wait_seconds"),
        ),
        Patch(
            f"{ASL}.component.state.wait.wait_function.timestamp:Timestamp",
            "_get_wait_seconds",
            lambda _o: _make_get_wait_seconds(FailureEventException),
            params("self", "env"),
        ),
        Patch(
            exec_state,
            "threading",
            lambda _o: _THREADING_WITH_CLOCK_EVENTS,
            is_(
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
        Patch(
            callback,
            "Event",
            lambda _o: new_event,
            is_(
                threading.Event,
                used_in=[
                    (f"{callback}:CallbackEndpoint.__init__", "Event()"),
                    (f"{callback}:HeartbeatEndpoint.__init__", "Event()"),
                ],
            ),
        ),
        Patch(
            environment,
            "threading",
            lambda _o: _THREADING_WITH_CLOCK_EVENTS,
            is_(
                threading,
                used_in=[
                    (f"{environment}:Environment.__init__", "threading.Event()"),
                    (f"{environment}:Environment.set_stop", "program_state_event.set()"),
                ],
            ),
        ),
        Patch(
            retrier,
            "time",
            lambda _o: _TIME_WITH_CLOCK_SLEEP,
            is_(_time_module, used_in=[(f"{retrier}:RetrierDecl._eval_body", "time.sleep(")]),
        ),
        Patch(
            program,
            "threading",
            lambda _o: _THREADING_WITH_CLOCK_JOIN,
            is_(
                threading,
                used_in=[
                    (f"{program}:Program.eval", "threading.Thread("),
                    (f"{program}:Program.eval", "join(timeout=timeout)"),
                ],
            ),
        ),
        Patch(
            f"{ASL}.component.state.state",
            "datetime",
            lambda _o: _DATETIME_WITH_CLOCK_AWS_ISO,
            is_(
                _datetime_module,
                used_in=[
                    (
                        f"{ASL}.component.state.state:CommonStateField._eval_body",
                        "datetime.datetime.now(tz=datetime.timezone.utc).isoformat()",
                    )
                ],
            ),
        ),
    ]
    for module, function in (
        (f"{SFN}.models", "StepFunctionsParserBackend.start_execution"),
        (f"{SFN}.backend.execution", "BaseExecutionWorkerCommunication._reflect_execution_status"),
        (f"{ASL}.eval.event.event_manager", "EventManager._get_current_timestamp"),
    ):
        class_name, _, method = function.partition(".")
        patches.append(
            Patch(
                module,
                "datetime",
                lambda _o: _DATETIME_WITH_CLOCK,
                is_(
                    _datetime_module,
                    used_in=[(f"{module}:{class_name}.{method}", "datetime.datetime.now(")],
                ),
            )
        )
    return patches
