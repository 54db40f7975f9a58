"""Where sentences end, per language: English by voxstack's rules (``blocks.components.text``), every other
espeak-ng language where espeak-ng ends them, which is where piper-tts ends them for its voices.

Both answer the same three questions, for whole text and for text still streaming in.
"""

from __future__ import annotations

from typing import Protocol

from blocks.components import text as textlib
from blocks.components.espeak import Espeak
from blocks.components.text import Span
from blocks.language import is_english


class SentenceRules(Protocol):
    def sentences(self, text: str) -> list[Span]:
        """The sentences of a whole text, trimmed, offsets kept."""

    def complete_sentences(self, text: str) -> tuple[list[Span], int]:
        """For text that may still grow: the sentences what follows them confirms, and where the rest starts."""

    def last_clause_break(self, span: Span) -> int | None:
        """Offset in ``span.text`` after its last inner clause boundary, or None."""


class EnglishRules:
    """Abbreviations, initials, decimals and times never end a sentence (``blocks.components.text``)."""

    sentences = staticmethod(textlib.sentences)
    complete_sentences = staticmethod(textlib.complete_sentences)
    last_clause_break = staticmethod(textlib.last_clause_break)


class EspeakRules:
    """A sentence ends where espeak-ng, reading the voice's language, ends one."""

    def __init__(self, espeak: Espeak) -> None:
        self.espeak = espeak

    def sentences(self, text: str) -> list[Span]:
        cuts = [clause.end for clause in self.espeak.clauses(text)[:-1] if clause.sentence_end]
        return [span for span in (_trimmed(text, a, b) for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True))
                if span is not None]

    def complete_sentences(self, text: str) -> tuple[list[Span], int]:
        cuts = [clause.end for clause in self.espeak.clauses(text)[:-1] if clause.sentence_end]
        if not cuts:
            return [], 0
        found = [span for span in (_trimmed(text, a, b) for a, b in zip([0, *cuts], cuts, strict=False))
                 if span is not None]
        return found, cuts[-1]

    def last_clause_break(self, span: Span) -> int | None:
        return textlib.last_clause_break(span)


def _trimmed(text: str, start: int, end: int) -> Span | None:
    piece = text[start:end]
    if not piece.strip():
        return None
    lead = len(piece) - len(piece.lstrip())
    return Span(start + lead, start + len(piece.rstrip()), piece.strip())


def rules_for(language: str, espeak: Espeak | None) -> SentenceRules:
    """English rules for English, espeak-ng's sentence ends for the rest (an espeak-ng voice needed)."""
    if is_english(language) or espeak is None:
        return EnglishRules()
    return EspeakRules(espeak)
