"""An SSML document applied to the session's utterances: sentence spans, phoneme overrides, the
control tensors of each utterance and the ``<mark>`` marks it carries."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from blocks import controls
from blocks.components.text import Span
from blocks.errors import InputError
from blocks.frontends import Frontend
from blocks.marks import Mark, SsmlMark
from blocks.ssml_document import NEUTRAL, Document, SsmlError
from blocks.utterance import Utterance, Word


def spans(document: Document, frontend: Frontend, checked: str) -> list[Span]:
    """The utterance spans of the spoken text: the frontend's sentences, never across an ``<s>``/``<p>`` edge."""
    found: list[Span] = []
    edges = [0, *document.boundaries, len(checked)]
    for begin, end in itertools.pairwise(edges):
        found += [Span(s.start + begin, s.end + begin, s.text) for s in frontend.split(checked[begin:end])
                  if s.text.strip()]
    return found


def shape(document: Document, frontend: Frontend, utterance: Utterance, lower: int, upper: int | None,
          seconds_per_frame: float) -> tuple[Utterance, dict[str, np.ndarray], tuple[SsmlMark, ...]]:
    """``utterance`` with its phoneme overrides, its control tensors, and the marks in ``[lower, upper)``
    of the spoken text (breaks and marks between utterances go with the one before)."""
    for override in document.phonemes:
        if utterance.span.start <= override.start < utterance.span.end:
            utterance = _override(frontend, utterance, override.start, override.end, override.ipa)
    ids = len(utterance.ids)
    tensors = controls.neutral(ids)
    owners = [word.first_id for word in utterance.words]
    for number, word in enumerate(utterance.words):
        span_controls = document.controls[word.span.start] if word.span.start < len(document.controls) else NEUTRAL
        if span_controls == NEUTRAL:
            continue
        begin = 0 if number == 0 else word.first_id
        end = owners[number + 1] if number + 1 < len(owners) else ids
        tensors[controls.DURATION_SCALES][begin:end] = 1.0 / span_controls.rate
        tensors[controls.GAINS][begin:end] = 10.0 ** (span_controls.volume_db / 20.0)
        tensors[controls.PITCH_SCALES][begin:end] = span_controls.pitch

    def mine(at: int) -> bool:
        return at >= lower and (upper is None or at < upper)

    def anchor(at: int) -> int:
        return next((word.first_id for word in utterance.words if word.span.start >= at), ids)

    pauses = tensors[controls.PAUSES]
    placed = [(anchor(b.at), b) for b in document.breaks if mine(b.at)]
    for index, item in placed:
        pauses[index] += round(item.seconds / seconds_per_frame)
    marks = []
    for mark in (m for m in document.marks if mine(m.at)):
        index = anchor(mark.at)
        back = sum(round(b.seconds / seconds_per_frame) for i, b in placed if i == index and b.order > mark.order)
        marks.append(SsmlMark(index, float(back), Mark(0, "ssml", mark.start, mark.end, mark.name)))
    return utterance, tensors, tuple(marks)


def _override(frontend: Frontend, utterance: Utterance, start: int, end: int, ipa: str) -> Utterance:
    """The utterance with the ids of its words in ``[start, end)`` replaced by those of ``ipa``."""
    covered = [k for k, word in enumerate(utterance.words) if start <= word.span.start < end]
    if not covered:
        return utterance
    words = utterance.words
    first, last = words[covered[0]], words[covered[-1]]
    said = phoneme_ids(frontend, ipa)
    begin = first.first_id
    stop = last.first_id + len(phoneme_ids(frontend, last.phonemes, strict=False))
    ids = (*utterance.ids[:begin], *said, *utterance.ids[stop:])
    shift = len(said) - (stop - begin)
    new_words: list[Word] = []
    for k, word in enumerate(words):
        if k in covered:
            new_words.append(replace(word, first_id=begin, phonemes=frontend.layout(ipa) if k == covered[0] else ""))
        else:
            new_words.append(replace(word, first_id=word.first_id + (shift if k > covered[-1] else 0)))
    return Utterance(utterance.span, ids, tuple(new_words), utterance.id_stride)


def phoneme_ids(frontend: Frontend, phonemes: str, strict: bool = True) -> list[int]:
    """The ids the frontend gives a phoneme string inside an utterance; a symbol the voice lacks is an error."""
    try:
        return list(frontend.phoneme_ids(frontend.layout(phonemes), strict))
    except InputError as error:
        raise SsmlError(str(error)) from None
