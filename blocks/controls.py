"""Per-span controls as tensors beside the ids, and the one rule each block applies them by.

Every utterance carries, per phoneme id, a duration scale (SSML ``rate``), a linear gain (``volume``)
and an f0 scale (``pitch``), plus the silent frames inserted before each id and after the last
(``break``). Neutral values leave the audio bit-identical to an utterance without them. Timing is in
the encoder's duration frames (``hop_length`` samples): a pause of ``n`` frames is ``n * hop_length``
samples of silence.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from blocks.contracts import CONTROL_TENSORS

if TYPE_CHECKING:
    from blocks.spec import Node

DURATION_SCALES, GAINS, PITCH_SCALES, PAUSES = (spec.name for spec in CONTROL_TENSORS)
"""Per id: duration multiplier, linear gain, f0 multiplier; ``pauses`` has one more entry (after the last id)."""
CONTROLS = ("break", "rate", "volume", "pitch")
"""What a block may declare it honours (``Block.controls``)."""
RAMP_S = 0.005
"""Gain changes (volume steps, the edges of a break) ramp over this long, so they never click."""


def neutral(ids: int) -> dict[str, np.ndarray]:
    """Controls that change nothing, for an utterance of ``ids`` ids."""
    return {DURATION_SCALES: np.ones(ids, np.float32), GAINS: np.ones(ids, np.float32),
            PITCH_SCALES: np.ones(ids, np.float32), PAUSES: np.zeros(ids + 1, np.float32)}


def durations(tensors: dict[str, np.ndarray], name: str = "durations") -> np.ndarray:
    """Frames per id: the predicted durations, each scaled by its id's rate (rounded where scaled)."""
    predicted = np.asarray(tensors[name], dtype=np.float64).reshape(-1)
    scales = tensors.get(DURATION_SCALES)
    if scales is None or np.all(scales == 1):
        return predicted
    scales = np.asarray(scales, dtype=np.float64).reshape(-1)[: predicted.shape[0]]
    return np.where(scales == 1, predicted, np.round(predicted * scales))


def pauses(tensors: dict[str, np.ndarray], ids: int) -> np.ndarray:
    """Silent frames before each id and after the last (``ids + 1`` entries)."""
    given = tensors.get(PAUSES)
    if given is None:
        return np.zeros(ids + 1)
    return np.asarray(given, dtype=np.float64).reshape(-1)[: ids + 1]


def id_starts(tensors: dict[str, np.ndarray], name: str = "durations") -> np.ndarray:
    """Start frame of each id in the utterance's audio, pauses included; the last entry is its end."""
    frames = durations(tensors, name)
    return np.concatenate([[0.0], np.cumsum(frames)]) + np.cumsum(pauses(tensors, frames.shape[0]))


def honoured(nodes: Iterable[Node]) -> set[str]:
    """The controls a parsed stack honours: what its blocks declare, given their options."""
    found: set[str] = set()
    for node in nodes:
        found |= set(node.cls.controls(node.options))
        for slot in node.children.values():
            found |= honoured(slot if isinstance(slot, list) else [slot])
    return found


class Envelope:
    """One utterance's gain per sample and its inserted silences, from its control tensors.

    Positions are samples of the audio as the vocoder makes it (no silence inserted yet).
    """

    def __init__(self, tensors: dict[str, np.ndarray], hop: int, sample_rate: int) -> None:
        frames = durations(tensors)
        ends = np.cumsum(frames) * hop
        starts = np.concatenate([[0.0], ends[:-1]])
        self.silences = [(round(float(at)), round(float(n)) * hop) for at, n in
                         zip(np.append(starts, ends[-1:] if ends.size else [0.0]), pauses(tensors, frames.shape[0]),
                             strict=False) if n > 0]
        """(position, samples of silence inserted there), in order."""
        gains = np.asarray(tensors.get(GAINS, np.ones(frames.shape[0])), dtype=np.float64).reshape(-1)
        ramp = RAMP_S * sample_rate
        self.clip = bool(np.any(gains > 1))
        self.flat = bool(np.all(gains == 1)) and not self.silences
        xs, ys = [0.0], [gains[0] if gains.size else 1.0]
        for index in range(1, gains.shape[0]):
            if gains[index] != gains[index - 1]:
                xs += [starts[index] - ramp / 2, starts[index] + ramp / 2]
                ys += [gains[index - 1], gains[index]]
        self.xs, self.ys = np.asarray(xs), np.asarray(ys)
        for position, _ in self.silences:  # ramp down into each break and up out of it
            self._dip(position, ramp)

    def _dip(self, position: float, ramp: float) -> None:
        before, after = np.interp([position - ramp, position + ramp], self.xs, self.ys)
        keep = (self.xs < position - ramp) | (self.xs > position + ramp)
        xs = np.concatenate([self.xs[keep], [position - ramp, position, position, position + ramp]])
        ys = np.concatenate([self.ys[keep], [before, 0.0, 0.0, after]])
        order = np.argsort(xs, kind="stable")
        self.xs, self.ys = xs[order], ys[order]

    def apply(self, samples: np.ndarray, start: int, last: bool) -> np.ndarray:
        """The chunk at sample ``start`` with its gain applied and the silences that fall in it inserted."""
        if self.flat:
            return samples
        out = samples * np.interp(np.arange(start, start + samples.shape[0]), self.xs, self.ys).astype(np.float32)
        if self.clip:
            np.clip(out, -1.0, 1.0, out=out)
        stop = start + samples.shape[0]
        pieces, at = [], start
        for position, count in self.silences:
            if start <= position < stop or (last and position >= stop):
                cut = min(max(position, at), stop)
                pieces += [out[at - start : cut - start], np.zeros(count, np.float32)]
                at = cut
        if not pieces:
            return out.astype(np.float32, copy=False)
        pieces.append(out[at - start :])
        return np.concatenate(pieces).astype(np.float32, copy=False)

    def inserted_before(self, position: int) -> int:
        """Samples of silence inserted before sample ``position`` (a chunk starting there)."""
        return sum(count for at, count in self.silences if at < position)


def pitch_track(tensors: dict[str, np.ndarray], frames_per_duration_frame: float) -> np.ndarray | None:
    """f0 multiplier per output frame (``frames_per_duration_frame`` per duration frame); None if all 1."""
    scales = tensors.get(PITCH_SCALES)
    if scales is None or np.all(np.asarray(scales) == 1):
        return None
    frames = durations(tensors)
    ends = np.cumsum(frames) * frames_per_duration_frame
    count = round(float(ends[-1])) if ends.size else 0
    index = np.searchsorted(ends, np.arange(count) + 0.5, side="right")
    return np.asarray(scales, dtype=np.float32).reshape(-1)[np.minimum(index, frames.shape[0] - 1)]
