"""Earliest deadline first: which stream's next chunk a process computes when more are ready than cores.

Every compute step of a stream (one pull of its block chain) asks the process's scheduler for a slot,
with the moment its client runs out of audio as the deadline. At most ``slots`` steps run at once; a
waiting step runs in deadline order, so one stream's long utterance cannot starve another's start,
and a stream with seconds of audio buffered yields to one about to run dry. A start is owed by its
arrival, so a burst of starts goes before streams already playing, except a playing stream with less than
``URGENT_S`` of audio left: it goes first, whatever the starts owe. A late start delays first audio; a late
chunk of a playing stream is a stall.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


START_GRACE_S = 0.25
"""A new stream's start is owed this long after its arrival: a playing stream whose audio runs out sooner
computes first, so a burst of starts delays first audio rather than stalling what already plays."""
URGENT_S = 0.5
"""A playing stream with less audio than this left computes before every start, however overdue."""


@dataclass
class Clock:
    """A stream's playback clock: when its audio started to play, and how much audio it has produced.

    ``deadline()`` is the moment the client runs out of audio if nothing more arrives: the request's
    arrival before any audio exists (the most a new stream can be owed), the end of playback after.
    """

    arrival: float = field(default_factory=time.time)
    """Wall time (epoch seconds) the request arrived."""
    started: float | None = None
    """Wall time its first audio left (None: no audio yet)."""
    produced_s: float = 0.0
    """Seconds of audio produced so far."""
    lead: int = 1
    """Audio chunks produced before playback starts: 2 when the ingress holds a stream's start until its
    second piece, so that piece is owed as the first one is (by the arrival), not after it has played."""
    chunks: int = 0
    """Audio chunks produced so far."""

    def deadline(self) -> float:
        if self.started is None:
            return self.arrival + START_GRACE_S
        return self.started + self.produced_s

    def urgent_at(self) -> float | None:
        """When its steps go before every start: ``URGENT_S`` before playback runs dry (None: not playing)."""
        return None if self.started is None else self.deadline() - URGENT_S

    def slack(self) -> float:
        """Seconds of audio still unplayed (0 before the first audio, negative once it ran dry)."""
        return 0.0 if self.started is None else self.deadline() - time.time()

    def advance(self, seconds: float) -> None:
        """Count an audio chunk produced; the ``lead``-th starts the playback clock."""
        self.chunks += 1
        self.produced_s += seconds
        if self.started is None and self.chunks >= self.lead:
            self.started = time.time()


@dataclass(frozen=True)
class _Waiting:
    deadline: float
    order: int
    urgent_at: float | None


class DeadlineScheduler:
    """A gate of ``slots`` concurrent compute steps, granted in deadline order (thread-safe)."""

    def __init__(self, slots: int | None = None) -> None:
        self.slots = slots or os.cpu_count() or 1
        self._running = 0
        self._waiting: list[_Waiting] = []
        self._order = itertools.count()
        self._lock = threading.Condition()

    @property
    def waiting(self) -> int:
        """Steps waiting for a slot now."""
        return len(self._waiting)

    @property
    def running(self) -> int:
        return self._running

    def _next(self) -> _Waiting:
        """The step a free slot goes to: the earliest deadline among the urgent ones, if any are, else overall."""
        now = time.time()
        urgent = [w for w in self._waiting if w.urgent_at is not None and w.urgent_at <= now]
        return min(urgent or self._waiting, key=lambda w: (w.deadline, w.order))

    def run(self, deadline: float, step: Callable[[], T], urgent_at: float | None = None) -> T:
        """Run ``step`` once a slot is free and it is next (``_next``); from ``urgent_at`` on (a playing
        stream's, see ``Clock.urgent_at``) it goes before every step that is not urgent."""
        ticket = _Waiting(deadline, next(self._order), urgent_at)
        with self._lock:
            self._waiting.append(ticket)
            while self._running >= self.slots or self._next() is not ticket:
                self._lock.wait()  # a slot freed: who is next is decided then, urgency included
            self._waiting.remove(ticket)
            self._running += 1
            self._lock.notify_all()  # the next in line may take a slot still free
        try:
            return step()
        finally:
            with self._lock:
                self._running -= 1
                self._lock.notify_all()


GROW_AFTER_S = 0.5
"""Chunks grow only while a stream has more than this much audio unplayed."""


def room_to_grow(clock: Clock, scheduler: DeadlineScheduler) -> Callable[[], bool]:
    """Whether a stream's chunks may grow now: audio to spare, and no other step waiting for a core.

    Small chunks keep every step short while the process is crowded or the stream's buffer is thin;
    chunked audio equals whole-utterance audio whatever the sizes.
    """
    return lambda: scheduler.waiting == 0 and clock.slack() > GROW_AFTER_S


_shared: DeadlineScheduler | None = None
_shared_lock = threading.Lock()


def shared_scheduler() -> DeadlineScheduler:
    """The process's scheduler: one per process, shared by every stream it computes."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = DeadlineScheduler(int(os.environ.get("VOXSTACK_COMPUTE_SLOTS", "0")) or None)
        return _shared
