"""Speech marks in the shape of Amazon Polly's: ``{"time", "type", "start", "end", "value"}``.

``time`` is milliseconds from the start of the stream; ``start``/``end`` are UTF-8 byte
offsets into the request text (as Polly's are; for SSML, into its source). Types: ``sentence``,
``word``, ``phoneme``, and ``ssml`` (at each SSML ``<mark>``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from blocks import controls
from blocks.options import MarkType
from blocks.utterance import Utterance

TIMING_KEYS = ("token_starts",)
"""Tensors a streaming block writes that time an utterance's ids: they travel with its chunks, so marks
are timed the same in process and served (the encoder's ``durations`` travel with its result)."""
_NOT_PHONEMES = "ˈˌː "


@dataclass(frozen=True)
class Mark:
    """A speech mark, as Amazon Polly's: ``time`` in ms from the stream's start, ``start``/``end`` UTF-8
    byte offsets into the request text (for SSML, its source), ``value`` the text, phoneme or mark name."""

    time: int
    type: MarkType
    start: int
    end: int
    value: str

    def at(self, time: int) -> Mark:
        return Mark(time, self.type, self.start, self.end, self.value)

    def as_json(self) -> dict[str, int | str]:
        """The mark as Polly writes it (one JSON object per line)."""
        return asdict(self)


@dataclass(frozen=True)
class SsmlMark:
    """An SSML ``<mark>`` placed in an utterance: the id it precedes, and how many frames of breaks
    before that id it comes (a mark before a break is heard before the silence)."""

    before_id: int
    frames_back: float
    mark: Mark


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


def frame_starts(tensors: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """Start frame of each phoneme id known so far: from an autoregressive decoder's ``token_starts``
    (growing as it decodes: it is what the audio follows), else from the predicted ``durations`` (all at
    once, as the blocks play them: rate-scaled, breaks' silences included). None: no timing."""
    if "token_starts" in tensors:
        return np.asarray(tensors["token_starts"], dtype=np.float64).reshape(-1)
    if "durations" in tensors:
        return controls.id_starts(tensors)
    return None


def utterance_marks(
    utterance: Utterance,
    starts: np.ndarray,
    seconds_per_frame: float,
    offset_ms: float,
    byte: ByteOffsets,
    types: tuple[str, ...] = ("sentence", "word"),
    ssml: Sequence[SsmlMark] = (),
) -> list[Mark]:
    """Marks of one utterance, in time order, as far as ``starts`` (frame of each id) reaches."""
    timed: list[SsmlMark] = []

    def add(id_index: int, kind: MarkType, start: int, end: int, value: str) -> None:
        timed.append(SsmlMark(id_index, 0.0, Mark(0, kind, start, end, value)))

    span = utterance.span
    if "sentence" in types:
        add(0, "sentence", byte(span.start), byte.end(span.end), span.text)
    if "ssml" in types:
        timed += ssml
    for word in utterance.words:
        start, end = byte(word.span.start), byte.end(word.span.end)
        if "word" in types:
            add(word.first_id, "word", start, end, word.span.text)
        if "phoneme" in types:
            index = word.first_id
            for char in word.phonemes:  # as the frontend laid them out: one id step each
                if char not in _NOT_PHONEMES and not unicodedata.combining(char):
                    add(index, "phoneme", start, end, char)
                index += utterance.id_stride
    timed.sort(key=lambda entry: entry.before_id)  # stable: a word's marks keep their order
    marks = []
    for entry in timed:
        if entry.before_id >= len(starts):
            break  # not decoded yet: later marks wait for it
        time = offset_ms + (starts[entry.before_id] - entry.frames_back) * seconds_per_frame * 1000
        marks.append(entry.mark.at(round(float(time))))
    return marks
