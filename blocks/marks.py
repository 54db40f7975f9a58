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
_NOT_PHONEMES = "ˈˌː "


class ByteOffsets:
    """Character offset -> UTF-8 byte offset, for one request text."""

    def __init__(self, text: str) -> None:
        sizes = [len(c.encode("utf-8")) for c in text]
        self.table = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist() if sizes else [0]

    def __call__(self, char_offset: int) -> int:
        return self.table[char_offset]


def utterance_marks(
    utterance: Utterance,
    durations: np.ndarray,
    seconds_per_frame: float,
    offset_ms: float,
    byte: ByteOffsets,
    types: tuple[str, ...] = ("sentence", "word"),
) -> list[dict[str, Any]]:
    """Marks of one utterance from its per-id durations (frames), in time order."""
    frames = np.concatenate([[0.0], np.cumsum(np.asarray(durations, dtype=np.float64).reshape(-1))])

    def at(id_index: int) -> int:
        return round(float(offset_ms + frames[min(id_index, len(frames) - 1)] * seconds_per_frame * 1000))

    marks: list[dict[str, Any]] = []
    span = utterance.span
    if "sentence" in types:
        marks.append(_mark(at(0), "sentence", byte(span.start), byte(span.end), span.text))
    for word in utterance.words:
        start, end = byte(word.span.start), byte(word.span.end)
        if "word" in types:
            marks.append(_mark(at(word.first_id), "word", start, end, word.span.text))
        if "phoneme" in types:
            index = word.first_id
            for char in unicodedata.normalize("NFD", word.phonemes):
                if char not in _NOT_PHONEMES and not unicodedata.combining(char):
                    marks.append(_mark(at(index), "phoneme", start, end, char))
                index += utterance.id_stride
    return marks


def _mark(time: int, kind: str, start: int, end: int, value: str) -> dict[str, Any]:
    return {"time": time, "type": kind, "start": start, "end": end, "value": value}
