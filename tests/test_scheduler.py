"""Earliest deadline first across real threads, and the playback clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from blocks.scheduler import START_GRACE_S, URGENT_S, Clock, DeadlineScheduler


def _wait_for(condition: Any, what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def run_queued(scheduler: DeadlineScheduler, steps: list[tuple[float, Callable[[], Any], float | None]]) -> None:
    """Hold the scheduler's one slot, queue ``steps`` (deadline, step, urgent_at) behind it, then let them run."""
    gate = threading.Event()
    holder = threading.Thread(target=scheduler.run, args=(0.0, lambda: gate.wait(5)))
    holder.start()
    _wait_for(lambda: scheduler.running == 1, "the holder to take the slot")
    threads = [threading.Thread(target=scheduler.run, args=step) for step in steps]
    for thread in threads:
        thread.start()
    _wait_for(lambda: scheduler.waiting == len(steps), "every step to queue")
    gate.set()
    for thread in [holder, *threads]:
        thread.join(5)


def test_waiting_steps_run_in_deadline_order_not_arrival_order() -> None:
    scheduler = DeadlineScheduler(slots=1)
    order: list[float] = []
    deadlines = [5.0, 1.0, 4.0, 2.0, 3.0]
    run_queued(scheduler, [(d, lambda d=d: order.append(d), None) for d in deadlines])
    assert order == sorted(deadlines)


def test_no_more_than_slots_steps_run_at_once() -> None:
    scheduler = DeadlineScheduler(slots=2)
    running, peak = [0], [0]
    lock = threading.Lock()
    pair = threading.Barrier(2, timeout=10)  # each step waits for a second one to run beside it

    def step() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        pair.wait()
        with lock:
            running[0] -= 1

    threads = [threading.Thread(target=scheduler.run, args=(float(i), step)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert peak[0] == 2 and scheduler.running == 0 and scheduler.waiting == 0


def test_a_step_that_fails_frees_its_slot() -> None:
    scheduler = DeadlineScheduler(slots=1)

    def fail() -> None:
        raise ValueError("boom")

    try:
        scheduler.run(0.0, fail)
    except ValueError:
        pass
    assert scheduler.run(1.0, lambda: 7) == 7


def test_the_clock_owes_a_new_stream_its_arrival_and_grace_then_its_playback() -> None:
    clock = Clock(arrival=100.0)
    assert clock.deadline() == 100.0 + START_GRACE_S and clock.slack() == 0.0
    clock.advance(2.5)
    assert clock.started is not None and abs(clock.deadline() - (clock.started + 2.5)) < 1e-9
    assert 2.0 < clock.slack() <= 2.5


def test_a_held_start_owes_the_second_chunk_by_the_arrival() -> None:
    clock = Clock(arrival=100.0, lead=2)
    clock.advance(0.37)
    assert clock.started is None and clock.deadline() == 100.0 + START_GRACE_S  # owed as the first was
    clock.advance(0.74)
    assert clock.started is not None and abs(clock.deadline() - (clock.started + 1.11)) < 1e-9


def test_a_stream_about_to_run_dry_computes_before_a_start_that_just_arrived() -> None:
    now = time.time()
    playing = Clock(arrival=now - 5.0, started=now - 4.8, produced_s=4.9)  # runs out 0.1 s from now
    arriving = Clock(arrival=now)
    assert playing.deadline() < arriving.deadline()
    relaxed = Clock(arrival=now - 5.0, started=now - 4.8, produced_s=10.0)  # seconds buffered: the start first
    assert arriving.deadline() < relaxed.deadline()


def test_a_playing_stream_about_to_run_dry_goes_before_overdue_starts() -> None:
    """Starts owed long ago wait while a playing stream with less than URGENT_S left computes; a playing
    stream with room waits behind them."""
    scheduler = DeadlineScheduler(slots=1)
    order: list[str] = []
    now = time.time()
    steps = {"start a": (now - 2.0, None), "start b": (now - 1.0, None),
             "playing, room": (now + 3.0, now + 3.0 - URGENT_S),
             "playing, dry soon": (now + 0.2, now + 0.2 - URGENT_S)}
    run_queued(scheduler, [(deadline, lambda n=name: order.append(n), urgent)
                           for name, (deadline, urgent) in steps.items()])
    assert order == ["playing, dry soon", "start a", "start b", "playing, room"]


def test_a_clock_is_urgent_only_once_playing() -> None:
    clock = Clock(arrival=100.0)
    assert clock.urgent_at() is None
    clock.advance(2.0)
    assert clock.started is not None and clock.urgent_at() == clock.started + 2.0 - URGENT_S
