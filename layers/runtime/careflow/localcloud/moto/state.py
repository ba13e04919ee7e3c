"""What every patch reads while installed: the clock, the Lambda dispatcher, the
StartExecution hook, the client cache and the async pool; and the few names the patch
modules share. Imports nothing of this package (every module may import it)."""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from careflow import clock as process_clock
from careflow.clock import Clock, ClockEvent, VirtualClock

MOTO_VERSION = "5.2.5"
"""The moto release every patch was written against (and is pinned in pyproject.toml)."""

InvokeFn = Callable[[str, bytes], tuple[bytes, str | None]]
"""(function name or ARN as the caller gave it, payload) -> (response payload, FunctionError)."""

StartExecutionFn = Callable[[str, str], None]
"""(state machine ARN, input JSON) -> None."""

ExecutionEndedFn = Callable[[dict[str, Any]], None]
"""An execution's end, as Step Functions' status-change event's ``detail`` gives it."""

# Lambda's asynchronous invocation retries a function error twice, after ~1 and ~2 min.
ASYNC_RETRY_DELAYS_SECONDS: tuple[float, ...] = (60.0, 120.0)
ASYNC_WORKERS = 16

SFN = "moto.stepfunctions.parser"
ASL = f"{SFN}.asl"


class MotoShapeError(RuntimeError):
    """moto is not shaped like the 5.2.5 these patches were written against."""


@dataclass
class Installed:
    clock: VirtualClock
    invoke: InvokeFn
    start_execution: StartExecutionFn | None
    previous_process_clock: Clock
    execution_ended: ExecutionEndedFn | None = None
    originals: list[tuple[Any, str, Any]] = field(default_factory=list)
    boto_client_for: Callable[..., Any] | None = None  # moto's, for building clients
    clients: dict[tuple[str, str, str | None], Any] = field(default_factory=dict)
    clients_lock: threading.Lock = field(default_factory=threading.Lock)
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(
            max_workers=ASYNC_WORKERS, thread_name_prefix="careflow-async-invoke"
        )
    )


_installed: Installed | None = None


def current() -> Installed | None:
    """The installed state, or None when moto is as released."""
    return _installed


def set_current(state: Installed | None) -> None:
    """For :mod:`.patches` only: install and uninstall set it."""
    global _installed
    _installed = state


def is_installed() -> bool:
    return _installed is not None


def clients_built() -> int:
    """How many AWS clients the cache holds (for tests and the bench)."""
    state = _installed
    return len(state.clients) if state is not None else 0


def current_clock() -> Clock:
    """The clock the patches run on: the installed one, else the process clock."""
    state = _installed
    return state.clock if state is not None else process_clock.get_clock()


def new_event() -> ClockEvent:
    """``threading.Event()`` for the patched moto modules: timed waits run on the clock."""
    return ClockEvent(current_clock)


class ModuleShim(types.ModuleType):
    """A stand-in for a stdlib module with a few attributes replaced."""

    def __init__(self, real: types.ModuleType, **replaced: Any) -> None:
        super().__init__(real.__name__, real.__doc__)
        self.__dict__["_careflow_real"] = real
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_careflow_real"], name)
