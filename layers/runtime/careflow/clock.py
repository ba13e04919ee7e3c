"""Time, as the workflows see it.

On AWS this is the system clock. The local cloud installs a :class:`VirtualClock`
so that Wait states, task timeouts and SLA timers of hours or days pass in seconds.
Logic never calls ``datetime.now()``: it is given ``now`` or calls :func:`now`.

A :class:`VirtualClock` runs at ``speed`` times real time from ``start`` and can be
pushed forward with :meth:`VirtualClock.advance`. Anything that waits "for N seconds"
in the local cloud waits through :meth:`Clock.wait` (or on a :class:`ClockEvent`),
so an ``advance(72 * 3600)`` makes a 72 h wait elapse at once.

Pure standard library: this module ships to Lambda.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = [
    "Clock",
    "ClockEvent",
    "SystemClock",
    "VirtualClock",
    "get_clock",
    "now",
    "set_clock",
    "sleep",
]

# How often a wait on a foreign ``threading.Event`` re-checks the virtual time.
# Waits on a ClockEvent (what the local cloud uses) never poll: advance() wakes them.
_FOREIGN_EVENT_POLL_SECONDS = 0.02
# Longest single real sleep (a waiter re-reads the clock at least this often).
_MAX_REAL_WAIT_SECONDS = 3600.0


@runtime_checkable
class Clock(Protocol):
    """What the code needs from time."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def wait(self, event: threading.Event | ClockEvent, timeout_seconds: float | None) -> bool:
        """Wait until ``event`` is set or ``timeout_seconds`` of this clock's time pass.

        Returns True if the event was set during the wait (like ``threading.Event.wait``).
        """
        ...

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of this clock's time pass."""
        ...


class SystemClock:
    """The real clock (what runs on AWS)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, event: threading.Event | ClockEvent, timeout_seconds: float | None) -> bool:
        if isinstance(event, ClockEvent):
            return event._wait_real(timeout_seconds)
        return event.wait(timeout_seconds)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


def _to_seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class VirtualClock:
    """A clock that runs at ``speed`` x real time from ``start`` and can jump forward.

    ``now() = start + advanced + real_elapsed * speed``. ``speed=0`` freezes time
    between :meth:`advance` calls (handy for deterministic tests).
    """

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        if start is None:
            start = datetime.now(UTC)
        elif start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._start = start.astimezone(UTC)
        self._speed = float(speed)
        self._real_origin = time.monotonic()
        self._offset = 0.0  # seconds added by advance()
        self._lock = threading.Lock()
        # Notified when a timed wait starts or ends, and on advance() (wait_for_timer).
        self._changed = threading.Condition(self._lock)
        # Timed waits in progress on this clock: id -> (event to poke or None, deadline
        # in virtual seconds since start). Waits on foreign events poll, so need no poke.
        self._timers: dict[int, tuple[ClockEvent | None, float]] = {}
        self._next_timer = 0

    # -- reading ---------------------------------------------------------------------

    @property
    def speed(self) -> float:
        return self._speed

    def _elapsed(self) -> float:
        """Virtual seconds since ``start``."""
        return self._offset + (time.monotonic() - self._real_origin) * self._speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed())

    def _real_seconds_for(self, virtual_seconds: float) -> float | None:
        """Real seconds until ``virtual_seconds`` pass on their own (None: never)."""
        if self._speed == 0:
            return None
        return min(max(virtual_seconds, 0.0) / self._speed, _MAX_REAL_WAIT_SECONDS)

    # -- moving ----------------------------------------------------------------------

    def advance(self, seconds: float | timedelta) -> datetime:
        """Jump forward by ``seconds`` and wake every waiter; returns the new now."""
        delta = _to_seconds(seconds)
        if delta < 0:
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._offset += delta
            self._changed.notify_all()
            waiting = {event for event, _ in self._timers.values() if event is not None}
        # Outside the clock lock: a waiter holds its event's lock while registering.
        for event in waiting:
            event._poke()
        return self.now()

    # -- timers ----------------------------------------------------------------------

    def _register(self, event: ClockEvent | None, deadline: float) -> int:
        with self._lock:
            self._next_timer += 1
            self._timers[self._next_timer] = (event, deadline)
            self._changed.notify_all()
            return self._next_timer

    def _unregister(self, timer: int) -> None:
        with self._lock:
            self._timers.pop(timer, None)
            self._changed.notify_all()

    def pending_deadlines(self) -> list[datetime]:
        """When the timed waits now in progress on this clock end, soonest first."""
        with self._lock:
            deadlines = sorted(deadline for _, deadline in self._timers.values())
        return [self._start + timedelta(seconds=d) for d in deadlines]

    def wait_for_timer(
        self,
        at_least: float | timedelta = 0.0,
        at_most: float | timedelta | None = None,
        timeout: float = 5.0,
        count: int = 1,
    ) -> datetime | None:
        """Block (real time) until a timed wait is pending whose deadline is between
        ``at_least`` and ``at_most`` from now; return that deadline (None on timeout).
        With ``count``, until that many such waits are pending (two executions that start
        the same timer: advancing after the first alone would skip the other's start).

        Lets a test or demo advance the clock only once a workflow's timer has started,
        e.g. ``clock.wait_for_timer(timedelta(hours=47), timedelta(hours=48))`` before
        ``clock.advance(timedelta(hours=48))``.
        """
        low = _to_seconds(at_least)
        high = None if at_most is None else _to_seconds(at_most)
        give_up = time.monotonic() + timeout
        with self._lock:
            while True:
                now = self._elapsed()
                matching = sorted(
                    deadline
                    for _, deadline in self._timers.values()
                    if deadline - now >= low and (high is None or deadline - now <= high)
                )
                if len(matching) >= count:
                    return self._start + timedelta(seconds=matching[0])
                remaining = give_up - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(min(remaining, 0.05))

    # -- waiting ---------------------------------------------------------------------

    def wait(self, event: threading.Event | ClockEvent, timeout_seconds: float | None) -> bool:
        """Wait until ``event`` is set or ``timeout_seconds`` of virtual time pass.

        Returns True if the event was set during the wait. Reacts to :meth:`advance`
        at once for a :class:`ClockEvent` (it sleeps in real time until its deadline
        or the next advance), within ~20 ms for a plain ``threading.Event``.
        """
        if isinstance(event, ClockEvent):
            return event._wait_virtual(self, timeout_seconds)
        if timeout_seconds is None:
            return event.wait()
        deadline = self._elapsed() + timeout_seconds
        timer = self._register(None, deadline)
        try:
            while True:
                remaining = deadline - self._elapsed()
                if remaining <= 0:
                    return event.is_set()
                real = self._real_seconds_for(remaining)
                step = (
                    _FOREIGN_EVENT_POLL_SECONDS
                    if real is None
                    else min(real, _FOREIGN_EVENT_POLL_SECONDS)
                )
                if event.wait(step):
                    return True
        finally:
            self._unregister(timer)

    def sleep(self, seconds: float | timedelta) -> None:
        """Let ``seconds`` of virtual time pass (returns early on advance past them)."""
        self.wait(ClockEvent(self), _to_seconds(seconds))

    def __repr__(self) -> str:
        return f"VirtualClock(now={self.now().isoformat()}, speed={self._speed:g})"


ClockSource = Clock | Callable[[], Clock] | None


class ClockEvent:
    """A drop-in ``threading.Event`` whose timed ``wait`` runs on a clock.

    ``clock`` is a Clock, a zero-argument callable returning one (resolved at each
    wait), or None for the process clock (:func:`get_clock`). On a VirtualClock a
    timed wait ends when the event is set, when the timeout passes in virtual time,
    or at once when :meth:`VirtualClock.advance` moves past it; no polling.
    Like ``threading.Event.wait``, ``wait`` returns True if the event was set during
    the wait, even if it was cleared again before the waiter woke up.
    """

    def __init__(self, clock: ClockSource = None) -> None:
        self._source = clock
        self._cond = threading.Condition(threading.Lock())
        self._flag = False
        self._sets = 0  # incremented by set(): lets a waiter see a set()+clear() pulse

    def _clock(self) -> Clock:
        source = self._source
        if source is None:
            return get_clock()
        if type(source) is VirtualClock or type(source) is SystemClock:
            return source
        if not (inspect.isfunction(source) or inspect.ismethod(source)) and isinstance(
            source, Clock
        ):  # functions first: the structural check of a Clock is slow
            return source
        return source()

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        with self._cond:
            self._flag = True
            self._sets += 1
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._flag = False

    def wait(self, timeout: float | None = None) -> bool:
        clock = self._clock()
        if timeout is not None and isinstance(clock, VirtualClock):
            return self._wait_virtual(clock, timeout)
        return self._wait_real(timeout)

    def _poke(self) -> None:
        """Wake the waiters so they re-read the clock (called by advance)."""
        with self._cond:
            self._cond.notify_all()

    def _wait_real(self, timeout: float | None) -> bool:
        with self._cond:
            if self._flag:
                return True
            sets = self._sets
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._sets == sets:
                if deadline is None:
                    self._cond.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, _MAX_REAL_WAIT_SECONDS))
            return True

    def _wait_virtual(self, clock: VirtualClock, timeout: float | None) -> bool:
        if timeout is None:
            return self._wait_real(None)
        with self._cond:
            if self._flag:
                return True
            sets = self._sets
            deadline = clock._elapsed() + timeout
            timer = clock._register(self, deadline)
            try:
                while self._sets == sets:
                    remaining = deadline - clock._elapsed()
                    if remaining <= 0:
                        return False
                    # Sleeps until set(), the deadline in real time, or advance() (_poke).
                    self._cond.wait(clock._real_seconds_for(remaining))
                return True
            finally:
                clock._unregister(timer)

    def __repr__(self) -> str:
        return f"ClockEvent(set={self._flag})"


_clock: Clock = SystemClock()


def get_clock() -> Clock:
    """The process clock."""
    return _clock


def set_clock(clock: Clock) -> Clock:
    """Install ``clock`` as the process clock; returns the previous one."""
    global _clock
    previous, _clock = _clock, clock
    return previous


def now() -> datetime:
    """The current time on the process clock (UTC, timezone-aware)."""
    return _clock.now()


def sleep(seconds: float) -> None:
    """Let ``seconds`` pass on the process clock."""
    _clock.sleep(seconds)
