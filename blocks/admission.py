"""Admission from measured capacity: how many streams can be producing at once without one stalling.

Each stream that ends reports the audio it produced and its wall time; the streams producing beside it
are integrated over its life. A stream that produced at ``r`` times real time while ``k`` streams shared
the machine shows an aggregate capacity of about ``r * k`` audio seconds per second. Every producing
stream needs at least one audio second per second, so at most ``capacity * margin`` streams are held;
the margin leaves room for a new stream's first utterance, whose encoding is the burst nobody buffered.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

MARGIN = 0.65
"""Share of the measured capacity held. On two cores 12 piper-joe streams started at once played without a
stall at a measured capacity of about 19 audio seconds per second, 14 did not (``bench/serve_load.py``)."""


@dataclass
class Ticket:
    """One admitted stream: when it began, and the concurrency integral at that moment."""

    started: float
    area: float


SHARED = 1.5
"""Streams producing beside a stream, on average over its life, for it to measure the machine."""


class Admission:
    """Counts producing streams, measures capacity from finished ones, and decides who may start."""

    def __init__(self, margin: float = MARGIN, fallback: int = 16, window: int = 32, min_samples: int = 3,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.margin = margin
        self.fallback = fallback
        """Streams held before anything has been measured."""
        self.min_samples = min_samples
        self.samples: deque[tuple[float, float]] = deque(maxlen=window)
        """(aggregate audio seconds per second, wall seconds) of recent streams that shared the machine."""
        self.alone: deque[tuple[float, float]] = deque(maxlen=window)
        """The same of recent streams that had it to themselves: a lower bound, since one stream's steps
        follow each other and leave cores idle. Used only until enough streams have shared it."""
        self.measure = True
        """False: hold ``fallback`` streams whatever the measurements say (a machine whose capacity is known)."""
        self.active = 0
        self._area = 0.0
        self._clock = clock
        self._since = clock()
        self._lock = threading.Lock()

    def _integrate(self) -> float:
        now = self._clock()
        self._area += self.active * (now - self._since)
        self._since = now
        return now

    @property
    def capacity(self) -> float | None:
        """Measured audio seconds per wall second the machine produces (None: too few streams yet): the
        recent streams' median, each weighted by its wall time. A short stream's life is mostly its wait
        for first audio, so counted alone it would say the machine makes less than it does."""
        if not self.measure:
            return None
        pool = self.samples if len(self.samples) >= self.min_samples else self.alone
        if len(pool) < self.min_samples:
            return None
        ranked = sorted(pool)
        half = sum(wall for _, wall in ranked) / 2
        reached = 0.0
        for rate, wall in ranked:
            reached += wall
            if reached >= half:
                return rate
        return ranked[-1][0]

    def limit(self, cap: int, capacity: float | None = None) -> int:
        """Streams that may be producing at once (at least one, at most ``cap``); ``capacity`` if the
        caller has just measured it."""
        capacity = self.capacity if capacity is None else capacity
        if capacity is None:
            return min(cap, self.fallback)
        return max(1, min(cap, math.floor(capacity * self.margin)))

    def admit(self, cap: int) -> Ticket | None:
        """A ticket for a new stream, or None when holding it would make the streams held stall."""
        with self._lock:
            if self.active >= self.limit(cap):
                return None
            return self._hold()

    def open(self) -> Ticket:
        """A ticket whatever the limit: a stage serves the streams its ingress admitted, and only counts them."""
        with self._lock:
            return self._hold()

    def _hold(self) -> Ticket:
        now = self._integrate()
        self.active += 1
        return Ticket(now, self._area)

    def load(self, cap: int) -> float | None:
        """Streams held over the streams the measured capacity holds (1: full; None: not measured yet)."""
        capacity = self.capacity
        if capacity is None:
            return None
        return self.active / self.limit(cap, capacity)

    def release(self, ticket: Ticket, audio_s: float, completed: bool = True) -> None:
        """The stream stopped producing after ``audio_s`` seconds of audio; only one that ``completed``
        measures the capacity (a failed or cancelled stream's rate says nothing about the machine's)."""
        with self._lock:
            now = self._integrate()
            self.active -= 1
            wall = now - ticket.started
            if completed and audio_s > 0 and wall > 0.05:  # too short a stream measures only overheads
                sharing = max(1.0, (self._area - ticket.area) / wall)
                (self.samples if sharing >= SHARED else self.alone).append((audio_s / wall * sharing, wall))

    def retry_after(self) -> float:
        """Seconds until a held stream is likely to end: a measured stream's wall time over those held."""
        measured = [*self.samples, *self.alone]
        if not measured:
            return 1.0
        typical = statistics.median(wall for _, wall in measured)
        return max(0.5, typical / max(1, self.active))
