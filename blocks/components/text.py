"""Text clean-up and splitting into utterances (complete sentences or clauses), offsets kept."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# A clause ends at punctuation followed by whitespace or the end, or at a line break.
_CLAUSE_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s|$)|[,;:](?=\s|$)|\n\s*")
_WORD = re.compile(r"\w[\w'’-]*")


@dataclass(frozen=True)
class Span:
    """A piece of the input text: ``text[start:end]`` of the original string."""

    start: int
    end: int
    text: str


def clean(text: str) -> str:
    """Replace control and format characters with spaces, keeping every offset."""
    return "".join(
        " " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c != "\n" else c for c in text
    )


def clauses(text: str) -> list[Span]:
    """Clauses with their trailing punctuation; whitespace-only pieces are dropped."""
    pieces: list[Span] = []
    start = 0
    for match in _CLAUSE_END.finditer(text):
        end = match.end()
        if text[start:end].strip():
            pieces.append(Span(start, end, text[start:end]))
        start = end
    if text[start:].strip():
        pieces.append(Span(start, len(text), text[start:]))
    return [_trim(p) for p in pieces]


def utterances(text: str, max_chars: int, first_chars: int | None = None) -> list[Span]:
    """Sentences, each split further at clauses, then words, to stay under ``max_chars``.

    ``first_chars`` caps the first utterance, at a clause boundary only: its encoding is all that
    first audio waits for, so a long opening sentence speaks its first clause on its own.
    """
    result: list[Span] = []
    current: list[Span] = []

    def flush() -> None:
        if current:
            result.append(Span(current[0].start, current[-1].end, text[current[0].start : current[-1].end]))
            current.clear()

    for clause in clauses(text):
        for piece in _split_words(clause, max_chars):
            limit = first_chars if first_chars and not result else max_chars
            if current and piece.end - current[0].start > limit:
                flush()
            current.append(piece)
            if _ends_sentence(text, piece):
                flush()
    flush()
    return result


def _ends_sentence(text: str, piece: Span) -> bool:
    tail = piece.text.rstrip("\"')]’”")
    if tail and tail[-1] in ".!?…":
        return True
    return text[piece.end :].lstrip(" \t").startswith("\n")


def words(span: Span) -> list[Span]:
    """Word tokens of a span, with offsets into the original text."""
    return [Span(span.start + m.start(), span.start + m.end(), m.group()) for m in _WORD.finditer(span.text)]


def _split_words(clause: Span, max_chars: int) -> list[Span]:
    if clause.end - clause.start <= max_chars:
        return [clause]
    parts: list[Span] = []
    start = clause.start
    for word in words(clause):
        if word.end - start > max_chars and word.start > start:
            parts.append(Span(start, word.start, clause.text[start - clause.start : word.start - clause.start]))
            start = word.start
    parts.append(Span(start, clause.end, clause.text[start - clause.start :]))
    return [_trim(p) for p in parts if p.text.strip()]


def _trim(span: Span) -> Span:
    lead = len(span.text) - len(span.text.lstrip())
    body = span.text.strip()
    return Span(span.start + lead, span.start + lead + len(body), body)
