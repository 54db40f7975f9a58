"""Speech marks in the shape of Amazon Polly's: ``{"time", "type", "start", "end", "value"}``.

``time`` is milliseconds from the start of the stream; ``start``/``end`` are UTF-8 byte
offsets into the request text (as Polly's are). Types: ``sentence``, ``word``, ``phoneme``.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import numpy as np

from blocks.components.frontend import Utterance

MARK_TYPES = ("sentence", "word", "phoneme")
TIMING_KEYS = ("durations", "token_starts")
"""Tensors that time an utterance's ids (what a serving stage forwards for marks)."""
_NOT_PHONEMES = "ˈˌː "


class ByteOffsets:
    """Character offset -> UTF-8 byte offset, for one request text."""

    def __init__(self, text: str) -> None:
        sizes = [len(c.encode("utf-8")) for c in text]
        self.table = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist() if sizes else [0]

    def __call__(self, char_offset: int) -> int:
        return self.table[char_offset]


def frame_starts(tensors: dict[str, np.ndarray]) -> np.ndarray | None:
    """Start frame of each phoneme id known so far: from predicted ``durations`` (all at once), or
    from an autoregressive decoder's ``token_starts`` (growing as it decodes). None: no timing."""
    if "durations" in tensors:
        durations = np.asarray(tensors["durations"], dtype=np.float64).reshape(-1)
        return np.concatenate([[0.0], np.cumsum(durations)])
    if "token_starts" in tensors:
        return np.asarray(tensors["token_starts"], dtype=np.float64).reshape(-1)
    return None


def utterance_marks(
    utterance: Utterance,
    starts: np.ndarray,
    seconds_per_frame: float,
    offset_ms: float,
    byte: ByteOffsets,
    types: tuple[str, ...] = ("sentence", "word"),
) -> list[dict[str, Any]]:
    """Marks of one utterance, in time order, as far as ``starts`` (frame of each id) reaches."""
    timed: list[tuple[int, dict[str, Any]]] = []

    def add(id_index: int, kind: str, start: int, end: int, value: str) -> None:
        timed.append((id_index, _mark(0, kind, start, end, value)))

    span = utterance.span
    if "sentence" in types:
        add(0, "sentence", byte(span.start), byte(span.end), span.text)
    for word in utterance.words:
        start, end = byte(word.span.start), byte(word.span.end)
        if "word" in types:
            add(word.first_id, "word", start, end, word.span.text)
        if "phoneme" in types:
            index = word.first_id
            for char in unicodedata.normalize("NFD", word.phonemes):
                if char not in _NOT_PHONEMES and not unicodedata.combining(char):
                    add(index, "phoneme", start, end, char)
                index += utterance.id_stride
    marks = []
    for id_index, mark in timed:
        if id_index >= len(starts):
            break  # not decoded yet: later marks wait for it
        mark["time"] = round(float(offset_ms + starts[id_index] * seconds_per_frame * 1000))
        marks.append(mark)
    return marks


def _mark(time: int, kind: str, start: int, end: int, value: str) -> dict[str, Any]:
    return {"time": time, "type": kind, "start": start, "end": end, "value": value}
