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
from dataclasses import dataclass


@dataclass
class Ticket:
    """One admitted stream: when it began, and the concurrency integral at that moment."""

    started: float
    area: float


class Admission:
    """Counts producing streams, measures capacity from finished ones, and decides who may start."""

    def __init__(self, margin: float = 0.75, fallback: int = 16, window: int = 32, min_samples: int = 3) -> None:
        self.margin = margin
        self.fallback = fallback
        """Streams held before anything has been measured."""
        self.min_samples = min_samples
        self.samples: deque[tuple[float, float]] = deque(maxlen=window)
        """(aggregate audio seconds per second, wall seconds) of recent streams."""
        self.active = 0
        self._area = 0.0
        self._since = time.monotonic()
        self._lock = threading.Lock()

    def _integrate(self) -> float:
        now = time.monotonic()
        self._area += self.active * (now - self._since)
        self._since = now
        return now

    @property
    def capacity(self) -> float | None:
        """Measured audio seconds per wall second the machine produces (None: too few streams yet)."""
        if len(self.samples) < self.min_samples:
            return None
        return statistics.median(rate for rate, _ in self.samples)

    def limit(self, cap: int) -> int:
        """Streams that may be producing at once (at least one, at most ``cap``)."""
        capacity = self.capacity
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
        if self.capacity is None:
            return None
        return self.active / self.limit(cap)

    def release(self, ticket: Ticket, audio_s: float, completed: bool = True) -> None:
        """The stream stopped producing after ``audio_s`` seconds of audio; only one that ``completed``
        measures the capacity (a failed or cancelled stream's rate says nothing about the machine's)."""
        with self._lock:
            now = self._integrate()
            self.active -= 1
            wall = now - ticket.started
            if completed and audio_s > 0 and wall > 0.05:  # too short a stream measures only overheads
                sharing = max(1.0, (self._area - ticket.area) / wall)
                self.samples.append((audio_s / wall * sharing, wall))

    def retry_after(self) -> float:
        """Seconds until a held stream is likely to end: a measured stream's wall time over those held."""
        if not self.samples:
            return 1.0
        typical = statistics.median(wall for _, wall in self.samples)
        return max(0.5, typical / max(1, self.active))
