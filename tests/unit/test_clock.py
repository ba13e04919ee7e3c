"""careflow.clock: the system clock, the virtual clock and clock-aware waits."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from careflow import clock
from careflow.clock import ClockEvent, SystemClock, VirtualClock

START = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)


def in_thread(fn, *args):
    """Run fn(*args) in a thread; returns (thread, result dict with value and elapsed)."""
    result: dict = {}

    def run():
        t0 = time.monotonic()
        result["value"] = fn(*args)
        result["elapsed"] = time.monotonic() - t0

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_system_clock_is_utc_aware_and_real():
    now = SystemClock().now()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)
    assert abs((datetime.now(UTC) - now).total_seconds()) < 1


def test_virtual_clock_runs_at_speed_from_start():
    vc = VirtualClock(START, speed=1)
    assert timedelta(0) <= vc.now() - START < timedelta(seconds=1)
    fast = VirtualClock(START, speed=3600)  # an hour a second
    time.sleep(0.05)
    assert fast.now() - START >= timedelta(minutes=3)
    assert fast.now().tzinfo is not None


def test_virtual_clock_defaults_to_real_now():
    assert abs((VirtualClock().now() - datetime.now(UTC)).total_seconds()) < 1


def test_virtual_clock_rejects_naive_start_and_negative_speed():
    with pytest.raises(ValueError):
        VirtualClock(datetime(2030, 1, 1))
    with pytest.raises(ValueError):
        VirtualClock(START, speed=-1)


def test_frozen_clock_moves_only_on_advance():
    vc = VirtualClock(START, speed=0)
    time.sleep(0.02)
    assert vc.now() == START
    assert vc.advance(90) == START + timedelta(seconds=90)
    assert vc.advance(timedelta(days=2)) == START + timedelta(days=2, seconds=90)
    assert vc.now() == START + timedelta(days=2, seconds=90)
    with pytest.raises(ValueError):
        vc.advance(-1)


def test_wait_returns_true_when_the_event_is_set():
    vc = VirtualClock(START, speed=0)
    for event in (ClockEvent(vc), threading.Event()):
        thread, result = in_thread(vc.wait, event, 3600)
        time.sleep(0.05)
        event.set()
        thread.join(2)
        assert result["value"] is True
        assert result["elapsed"] < 1


def test_wait_times_out_in_real_time_at_speed_one():
    vc = VirtualClock(speed=1)
    t0 = time.monotonic()
    assert vc.wait(ClockEvent(vc), 0.15) is False
    assert vc.wait(threading.Event(), 0.15) is False
    elapsed = time.monotonic() - t0
    assert 0.29 <= elapsed < 1.5


@pytest.mark.parametrize("event_type", ["clock", "threading"])
def test_advance_wakes_a_long_wait_promptly(event_type):
    vc = VirtualClock(START, speed=1)
    event = ClockEvent(vc) if event_type == "clock" else threading.Event()
    thread, result = in_thread(vc.wait, event, 72 * 3600)
    time.sleep(0.05)
    assert thread.is_alive()
    vc.advance(timedelta(hours=71))
    time.sleep(0.05)
    assert thread.is_alive(), "71 h of a 72 h wait is not enough"
    woke = time.monotonic()
    vc.advance(timedelta(hours=1))
    thread.join(2)
    assert not thread.is_alive()
    assert result["value"] is False
    assert time.monotonic() - woke < 0.1


def test_frozen_clock_wait_needs_an_advance():
    vc = VirtualClock(START, speed=0)
    thread, result = in_thread(vc.wait, ClockEvent(vc), 10)
    time.sleep(0.2)
    assert thread.is_alive()
    vc.advance(10)
    thread.join(1)
    assert result["value"] is False


def test_many_long_waiters_sleep_without_spinning_and_all_wake():
    vc = VirtualClock(START, speed=1)
    threads = [in_thread(vc.wait, ClockEvent(vc), 3600 + i)[0] for i in range(200)]
    time.sleep(0.1)
    cpu0 = time.process_time()
    time.sleep(0.5)
    cpu_spent = time.process_time() - cpu0
    assert cpu_spent < 0.15, f"200 idle waiters burnt {cpu_spent:.3f}s of CPU in 0.5s"
    t0 = time.monotonic()
    vc.advance(2 * 3600)
    for thread in threads:
        thread.join(2)
    assert not any(thread.is_alive() for thread in threads)
    assert time.monotonic() - t0 < 1


def test_clock_event_behaves_like_threading_event():
    event = ClockEvent(SystemClock())
    assert not event.is_set()
    assert event.wait(0.01) is False
    event.set()
    assert event.is_set()
    assert event.wait() is True
    assert event.wait(0) is True
    event.clear()
    assert not event.is_set()


@pytest.mark.parametrize("source", ["system", "virtual"])
def test_clock_event_wakes_on_a_pulse(source):
    """moto pulses events (set() then clear()) to interrupt waiters."""
    chosen = SystemClock() if source == "system" else VirtualClock(START, speed=0)
    event = ClockEvent(chosen)
    thread, result = in_thread(event.wait, 3600)
    time.sleep(0.05)
    event.set()
    event.clear()
    thread.join(1)
    assert result["value"] is True
    assert not event.is_set()


def test_clock_event_timed_wait_follows_its_clock():
    vc = VirtualClock(START, speed=0)
    event = ClockEvent(lambda: vc)  # a provider, resolved at wait time
    thread, result = in_thread(event.wait, 60)
    time.sleep(0.1)
    assert thread.is_alive()
    vc.advance(60)
    thread.join(1)
    assert result["value"] is False


def test_sleep_on_virtual_time():
    vc = VirtualClock(START, speed=0)
    thread, _ = in_thread(vc.sleep, timedelta(hours=5))
    time.sleep(0.05)
    assert thread.is_alive()
    vc.advance(timedelta(hours=5))
    thread.join(1)
    assert not thread.is_alive()
    t0 = time.monotonic()
    VirtualClock(speed=100).sleep(5)  # 5 virtual seconds at 100x
    assert time.monotonic() - t0 < 0.5


def test_process_clock_functions():
    vc = VirtualClock(START, speed=0)
    previous = clock.set_clock(vc)
    try:
        assert clock.get_clock() is vc
        assert clock.now() == START
        vc.advance(60)
        assert clock.now() == START + timedelta(minutes=1)
        thread, _ = in_thread(ClockEvent().wait, 30)  # no clock given: the process clock
        time.sleep(0.05)
        assert thread.is_alive()
        vc.advance(30)
        thread.join(1)
        assert not thread.is_alive()
        thread, _ = in_thread(clock.sleep, 10)
        time.sleep(0.05)
        vc.advance(10)
        thread.join(1)
        assert not thread.is_alive()
    finally:
        assert clock.set_clock(previous) is vc
    assert clock.get_clock() is previous
    assert clock.now().tzinfo is not None


def test_clocks_satisfy_the_protocol():
    assert isinstance(SystemClock(), clock.Clock)
    assert isinstance(VirtualClock(), clock.Clock)


def test_pending_deadlines_and_wait_for_timer():
    vc = VirtualClock(START, speed=0)
    assert vc.pending_deadlines() == []
    assert vc.wait_for_timer(timeout=0.05) is None
    thread, _ = in_thread(vc.wait, ClockEvent(vc), 3600)
    assert vc.wait_for_timer(3000, 3600, timeout=2) == START + timedelta(hours=1)
    assert vc.wait_for_timer(0, 60, timeout=0.05) is None
    sleeper, _ = in_thread(vc.sleep, timedelta(minutes=5))
    assert vc.wait_for_timer(0, 600, timeout=2) == START + timedelta(minutes=5)
    foreign, _ = in_thread(vc.wait, threading.Event(), 7200)  # a plain Event counts too
    assert vc.wait_for_timer(7000, 7200, timeout=2) == START + timedelta(hours=2)
    assert vc.pending_deadlines() == [
        START + timedelta(minutes=5),
        START + timedelta(hours=1),
        START + timedelta(hours=2),
    ]
    # two of them within the first two hours; not three
    assert vc.wait_for_timer(0, 3600, timeout=2, count=2) == START + timedelta(minutes=5)
    assert vc.wait_for_timer(3000, 7200, timeout=0.05, count=3) is None
    vc.advance(7200)
    for waiter in (thread, sleeper, foreign):
        waiter.join(1)
        assert not waiter.is_alive()
    assert vc.pending_deadlines() == []
