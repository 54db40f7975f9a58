"""Whether one more stream can start without any admitted stream running out of audio.

The machine is one processor of ``margin`` machine-seconds per second. A stream costs ``cost`` machine-seconds
per second of audio it makes. Its start is a burst owed at once: its encoder and the audio it holds back before
its first byte leaves (``start_audio`` seconds), ``cost * start_audio`` machine-seconds that nobody has buffered.
The stages compute earliest deadline first and a start is owed at its arrival, so every start not yet playing
runs before the streams that play. A playing stream with ``buffered`` seconds unplayed stays fed if, by the time
its buffer runs out, the machine can have done every start's burst and kept every stream with less buffered
playing up to then: the demand-bound test of earliest-deadline-first scheduling, taken at each stream's
deadline. The newcomer and the streams still starting count as starting with their held audio as buffer.
In the long run every stream needs its cost per second of audio: their sum stays under the margin too.
"""

from __future__ import annotations

from dataclasses import dataclass

EPSILON = 1e-9
"""Rounding: a plan that exactly fills the machine fits."""


@dataclass(frozen=True)
class Load:
    """One admitted stream as the test sees it."""

    cost: float
    """Machine-seconds per audio second."""
    start_audio: float
    """Audio seconds held before its first byte leaves."""
    buffered: float | None
    """Audio seconds unplayed at the client (None: not playing yet)."""


@dataclass(frozen=True)
class Verdict:
    """The test's answer and what decided it."""

    admit: bool
    steady: float
    """Machine share the streams need in the long run, the newcomer included."""
    burst: float
    """Machine-seconds of starts still owed, the newcomer's included."""
    tightest: float
    """Least spare machine-seconds at any stream's deadline (negative: that stream would stall)."""
    reason: str
    """'' when admitted; else 'steady' (the machine is full) or 'burst' (the starts would drain a buffer)."""


def schedulable(held: list[Load], newcomer: Load, margin: float) -> Verdict:
    """The demand-bound test for ``held`` plus ``newcomer`` on a machine of ``margin`` per second."""
    every = [*held, newcomer]
    steady = sum(load.cost for load in every)
    burst = sum(load.cost * load.start_audio for load in every if load.buffered is None)
    deadlines = [(load.start_audio if load.buffered is None else max(0.0, load.buffered), load.cost) for load in every]
    tightest = float("inf")
    for deadline, _ in deadlines:
        kept_playing = sum(cost * (deadline - other) for other, cost in deadlines if other < deadline)
        tightest = min(tightest, margin * deadline - burst - kept_playing)
    if steady > margin + EPSILON:
        reason = "steady"
    elif tightest < -EPSILON:
        reason = "burst"
    else:
        reason = ""
    return Verdict(not reason, steady, burst, tightest, reason)
