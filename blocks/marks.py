"""Speech marks in the shape of Amazon Polly's: ``{"time", "type", "start", "end", "value"}``.

``time`` is milliseconds from the start of the stream; ``start``/``end`` are UTF-8 byte
offsets into the request text (as Polly's are; for SSML, into its source). Types: ``sentence``,
``word``, ``phoneme``, and ``ssml`` (at each SSML ``<mark>``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np

from blocks import controls
from blocks.components.frontend import Utterance

MARK_TYPES = ("sentence", "word", "phoneme", "ssml")
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

    def end(self, char_offset: int) -> int:
        """Where the text ending before ``char_offset`` ends."""
        return self.table[char_offset]


def frame_starts(tensors: dict[str, np.ndarray]) -> np.ndarray | None:
    """Start frame of each phoneme id known so far: from predicted ``durations`` (all at once), or
    from an autoregressive decoder's ``token_starts`` (growing as it decodes). None: no timing.
    Durations are taken as the blocks play them: rate-scaled, breaks' silences included."""
    if "durations" in tensors:
        return controls.id_starts(tensors)
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
    ssml: Sequence[tuple[int, float, dict[str, Any]]] = (),
) -> list[dict[str, Any]]:
    """Marks of one utterance, in time order, as far as ``starts`` (frame of each id) reaches.

    ``ssml``: ``<mark>`` marks as (id they precede, frames before that id's start, mark).
    """
    timed: list[tuple[int, float, dict[str, Any]]] = []

    def add(id_index: int, kind: str, start: int, end: int, value: str) -> None:
        timed.append((id_index, 0.0, _mark(0, kind, start, end, value)))

    span = utterance.span
    if "sentence" in types:
        add(0, "sentence", byte(span.start), byte.end(span.end), span.text)
    if "ssml" in types:
        timed += [(index, back, dict(mark)) for index, back, mark in ssml]
    for word in utterance.words:
        start, end = byte(word.span.start), byte.end(word.span.end)
        if "word" in types:
            add(word.first_id, "word", start, end, word.span.text)
        if "phoneme" in types:
            index = word.first_id
            for char in unicodedata.normalize("NFD", word.phonemes):
                if char not in _NOT_PHONEMES and not unicodedata.combining(char):
                    add(index, "phoneme", start, end, char)
                index += utterance.id_stride
    timed.sort(key=lambda entry: entry[0])  # stable: a word's marks keep their order
    marks = []
    for id_index, back, mark in timed:
        if id_index >= len(starts):
            break  # not decoded yet: later marks wait for it
        mark["time"] = round(float(offset_ms + (starts[id_index] - back) * seconds_per_frame * 1000))
        marks.append(mark)
    return marks


def _mark(time: int, kind: str, start: int, end: int, value: str) -> dict[str, Any]:
    return {"time": time, "type": kind, "start": start, "end": end, "value": value}
