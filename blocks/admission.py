"""Admission by schedulability: a stream starts only if every admitted stream still gets its audio in time.

What each stream costs is measured from the streams that ended, per addon and voice. A stream that produced at
``r`` times real time while ``k`` streams shared the machine shows an aggregate capacity of about ``r * k``
audio seconds per second, so one second of its audio costs ``1 / (r * k)`` machine-seconds. The audio a
stream holds before its first byte leaves is recorded as it starts. With those, and the audio each playing
stream has buffered, ``admission_model.schedulable`` decides (the test is described there).

The margin (the share of the machine the test may plan) is learned from observed slack: a stream that has
less than ``NEAR_STALL_S`` of audio ahead of its playback when a chunk comes, while others produce beside it,
shrinks it at once; one admitted
into a nearly full plan that kept ``COMFORT_S`` throughout lets it grow back towards the configured share.
A noisy machine admits fewer streams rather than stalling them.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from blocks.admission_model import Load, Verdict, schedulable

MARGIN = 0.6
"""Share of the machine the test plans by default, and the most the learned margin grows back to. The rest
covers what the test does not count: refused requests, serving hops, the OS interleaving the stages."""
NEAR_STALL_S = 0.1
"""A stream that had less audio than this ahead of playback when a chunk came was close to stalling."""
COMFORT_S = 0.5
"""A stream that always had this much audio ahead of playback had room to spare."""
SHRINK, GROW = 0.85, 0.02
"""Margin times SHRINK after a near stall; plus GROW (up to the configured share) after a comfortable stream."""
FULL = 0.8
"""A plan this full (of the learned margin) when a stream was admitted: its comfort says the margin may grow."""
LEAST_MARGIN = 0.1
SHARED = 1.5
"""Streams producing beside a stream, on average over its life, for it to measure the machine."""
QUANTILE = 0.75
"""Which of the recent streams' capacity figures (weighted by wall time) is taken as the machine's."""
START_AUDIO_S = 2.0
"""Audio held before the first byte, assumed until a stream of the addon has started."""
Key = tuple[str, str]
"""(addon, voice): what a stream's costs are measured by."""


@dataclass
class Ticket:
    """One admitted stream: its key, when it began, the concurrency integral then, and its buffer."""

    key: Key
    started: float
    area: float
    request_id: str = ""
    planned: float = 0.0
    """How full the plan was with it, as a share of the learned margin."""
    buffered: Callable[[], float] | None = None
    """Audio seconds unplayed at the client, once its first byte has left (None: still starting)."""
    thin: bool = False
    """It came near a stall (the margin shrank for it once)."""


@dataclass
class Measured:
    """What recent streams of one key showed."""

    shared: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=32))
    """(aggregate audio seconds per second, wall seconds) of streams that shared the machine."""
    alone: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=32))
    """The same of streams that had it to themselves: a lower bound (one stream's steps follow each other and
    leave cores idle), used only until enough streams have shared it."""
    start_audio: deque[float] = field(default_factory=lambda: deque(maxlen=32))
    """Audio seconds held before each stream's first byte."""
    walls: deque[float] = field(default_factory=lambda: deque(maxlen=32))


class Admission:
    """Holds the admitted streams, measures their costs, and decides who may start."""

    def __init__(self, margin: float = MARGIN, fallback: int = 16, min_samples: int = 3,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.margin = margin
        """The configured share: where the learned margin starts and the most it grows back to."""
        self.learned = margin
        self.fallback = fallback
        """Streams held before anything has been measured."""
        self.min_samples = min_samples
        self.measure = True
        """False: hold ``fallback`` streams whatever the measurements say (a machine whose capacity is known)."""
        self.measured: dict[Key, Measured] = {}
        self.held: list[Ticket] = []
        self.decisions: deque[dict[str, Any]] = deque(maxlen=64)
        """The latest decisions, newest last: what was known and what it decided."""
        self._area = 0.0
        self._clock = clock
        self._since = clock()
        self._lock = threading.Lock()

    @property
    def active(self) -> int:
        return len(self.held)

    def configure(self, margin: float, fallback: int, measure: bool) -> None:
        """The configured share, the fallback count and whether to measure; the learned margin restarts."""
        with self._lock:
            self.margin = self.learned = margin
            self.fallback, self.measure = fallback, measure

    def _integrate(self) -> float:
        now = self._clock()
        self._area += self.active * (now - self._since)
        self._since = now
        return now

    def _pool(self, key: Key, pick: Callable[[Measured], Any]) -> list[Any]:
        """The samples of ``key``; if too few, its addon's; if too few, every key's."""
        for match in (lambda k: k == key, lambda k: k[0] == key[0], lambda _: True):
            pooled = [x for k, m in self.measured.items() if match(k) for x in pick(m)]
            if len(pooled) >= self.min_samples:
                return pooled
        return []

    def capacity(self, key: Key = ("", "")) -> float | None:
        """Audio seconds per wall second the machine makes of ``key``'s audio (None: too few streams yet):
        the recent streams' ``QUANTILE``, each weighted by its wall time. Each stream's figure is a lower
        bound, reached only if the streams beside it kept every core busy: a short stream's life is mostly
        its wait for first audio, and three streams leave gaps between their steps."""
        if not self.measure:
            return None
        pool = self._pool(key, lambda m: m.shared) or self._pool(key, lambda m: m.alone)
        if not pool:
            return None
        ranked = sorted(pool)
        share, reached = sum(wall for _, wall in ranked) * QUANTILE, 0.0
        for rate, wall in ranked:
            reached += wall
            if reached >= share:
                return rate
        return ranked[-1][0]

    def cost(self, key: Key) -> float:
        """Machine-seconds per audio second of ``key``: measured, or before that the fallback count's share."""
        capacity = self.capacity(key)
        return self.margin / self.fallback if capacity is None else 1.0 / capacity

    def start_audio(self, key: Key) -> float:
        pool = self._pool(key, lambda m: m.start_audio)
        return statistics.median(pool) if pool else START_AUDIO_S

    def _load(self, ticket: Ticket) -> Load:
        buffered = ticket.buffered() if ticket.buffered is not None else None
        return Load(self.cost(ticket.key), self.start_audio(ticket.key), buffered)

    def admit(self, key: Key = ("", ""), request_id: str = "", cap: int | None = None
              ) -> tuple[Ticket | None, Verdict]:
        """A ticket for a new stream of ``key`` (None when it would make a held stream run dry, or ``cap``
        streams are held), and the test's answer."""
        with self._lock:
            verdict = schedulable([self._load(t) for t in self.held], self._load(Ticket(key, 0.0, 0.0)), self.learned)
            if not self.measure:  # a known machine: the count alone
                fits = self.active < self.fallback
                verdict = Verdict(fits, verdict.steady, 0.0, 0.0, "" if fits else "steady")
            if cap is not None and self.active >= cap:
                verdict = Verdict(False, verdict.steady, verdict.burst, verdict.tightest, "cap")
            if not verdict.admit:
                return None, verdict
            ticket = self._hold(key, request_id)
            ticket.planned = verdict.steady / self.learned
            return ticket, verdict

    def note(self, key: Key, request_id: str, verdict: Verdict, waited_s: float) -> dict[str, Any]:
        """Record a decision (kept in ``decisions``) and return it: what was known and what it decided."""
        with self._lock:
            record = {"at": round(time.time(), 3), "request_id": request_id, "addon": key[0], "voice": key[1],
                      "admitted": verdict.admit, "reason": verdict.reason, "waited_s": round(waited_s, 3),
                      "held": self.active, "starting": sum(t.buffered is None for t in self.held),
                      "least_buffered_s": min((round(t.buffered(), 3) for t in self.held if t.buffered), default=None),
                      "steady": round(verdict.steady, 3), "burst_s": round(verdict.burst, 3),
                      "tightest_s": round(verdict.tightest, 3), "margin": round(self.learned, 3),
                      "measured": self.capacity(key) is not None}
            self.decisions.append(record)
            return record

    def open(self, key: Key = ("", "")) -> Ticket:
        """A ticket whatever the test says: a stage serves the streams its ingress admitted, and only counts them."""
        with self._lock:
            return self._hold(key, "")

    def _hold(self, key: Key, request_id: str) -> Ticket:
        now = self._integrate()
        ticket = Ticket(key, now, self._area, request_id)
        self.held.append(ticket)
        return ticket

    def playing(self, ticket: Ticket, held_audio_s: float, buffered: Callable[[], float]) -> None:
        """The stream's first byte left with ``held_audio_s`` of audio made; ``buffered`` tells its buffer."""
        with self._lock:
            ticket.buffered = buffered
            self.measured.setdefault(ticket.key, Measured()).start_audio.append(held_audio_s)

    def near_stall(self, ticket: Ticket) -> None:
        """The stream had less than ``NEAR_STALL_S`` ahead of playback: the margin shrinks (once per stream),
        if other streams were producing beside it. A lone stream's thin moment (right after a small first
        chunk) is no sign that admission planned too much."""
        with self._lock:
            if not ticket.thin and len(self.held) > 1:
                ticket.thin = True
                self.learned = max(LEAST_MARGIN, self.learned * SHRINK)

    def load(self) -> float | None:
        """Share of the machine the held streams need over the margin (1: full; None: not measured yet)."""
        with self._lock:
            if self.capacity() is None:  # not measuring, or nothing measured yet
                return None
            return sum(self.cost(t.key) for t in self.held) / self.learned

    def release(self, ticket: Ticket, audio_s: float, completed: bool = True, least_ahead_s: float | None = None
                ) -> None:
        """The stream stopped producing after ``audio_s`` seconds of audio. Only one that ``completed`` measures
        (a failed or cancelled stream's rate says nothing about the machine's); ``least_ahead_s``, the least
        audio it had ahead of playback when a chunk came, lets the learned margin grow (near stalls shrink it
        as they happen: ``near_stall``)."""
        with self._lock:
            now = self._integrate()
            self.held.remove(ticket)
            wall = now - ticket.started
            if not completed or audio_s <= 0 or wall <= 0.05:  # too short a stream measures only overheads
                return
            measured = self.measured.setdefault(ticket.key, Measured())
            sharing = max(1.0, (self._area - ticket.area) / wall)
            (measured.shared if sharing >= SHARED else measured.alone).append((audio_s / wall * sharing, wall))
            measured.walls.append(wall)
            if least_ahead_s is not None and least_ahead_s >= COMFORT_S and ticket.planned >= FULL:
                self.learned = min(self.margin, self.learned + GROW)

    def state(self) -> dict[str, Any]:
        """The model's inputs now: margins, each key's measured cost and held audio, the held streams."""
        with self._lock:
            keys = {*self.measured, *(t.key for t in self.held)}
            return {"margin": self.margin, "learned_margin": round(self.learned, 3), "measuring": self.measure,
                    "costs": [{"addon": k[0], "voice": k[1], "measured": self.capacity(k) is not None,
                               "machine_s_per_audio_s": round(self.cost(k), 4),
                               "start_audio_s": round(self.start_audio(k), 3)} for k in sorted(keys)],
                    "held": [{"request_id": t.request_id, "addon": t.key[0], "voice": t.key[1],
                              "buffered_s": None if t.buffered is None else round(t.buffered(), 3)}
                             for t in self.held]}

    def retry_after(self, verdict: Verdict) -> int:
        """Whole seconds until a stream like the one refused is likely to fit: the starts' burst drained (the
        margin's share of the machine works it off), or a held stream ended."""
        with self._lock:
            if verdict.reason == "burst":
                return max(1, math.ceil(-verdict.tightest / self.learned))
            walls = [w for m in self.measured.values() for w in m.walls]
            typical = statistics.median(walls) if walls else 1.0
            return max(1, math.ceil(typical / max(1, self.active) - 0.01))  # a hair over: not a second more
