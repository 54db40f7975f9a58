"""HibariFrontend: text -> misaki-style phonemes (hibari-tts's own G2P) -> ids, with word positions."""

from __future__ import annotations

import functools
import unicodedata
from typing import Any

from blocks.components import text as textlib
from blocks.components.frontend import EspeakFrontend
from blocks.components.text import Span
from blocks.config import FrontendConfig
from blocks.context import FrontendContext
from blocks.errors import InputError
from blocks.frontends import Frontend
from blocks.utterance import Utterance, Word

_PAD_ID = 0


def _is_phoneme(char: str) -> bool:
    return unicodedata.category(char)[0] == "L"


class HibariFrontend(EspeakFrontend):
    """The hibari G2P (normalisation, lexicon, out-of-vocabulary net) per utterance; ids are
    ``[0, *ids, 0]`` (no pads between phonemes), as the hibari package feeds its model.

    Same interface as EspeakFrontend (``check``, ``split``, ``phonemize``, ``utterances``).
    The ``voice`` option picks the rules: ``en-gb`` for British, anything else American.
    """

    def __init__(self, context: FrontendContext | None = None, options: FrontendConfig | None = None) -> None:
        Frontend.__init__(self, context, options)
        from hibari.g2p import G2P

        self.id_map = self._load_map(context)
        self.g2p: Any = G2P(british=self.options.voice == "en-gb")

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one frontend per voice, bounded
    def _reading(self, text: str) -> tuple[int, int]:
        """Phoneme groups and phoneme count of ``text`` read alone."""
        said = self.g2p(text)
        return max(1, len(_groups(said))), max(1, sum(map(_is_phoneme, said)))

    def phoneme_ids(self, phonemes: str, strict: bool = True) -> list[int]:
        """The ids of a phoneme string in this voice's symbols (no pads); an unknown one is an InputError."""
        ids: list[int] = []
        for char in phonemes:
            if char not in self.id_map and strict:
                raise InputError(f"phoneme {char!r} (U+{ord(char):04X}) is not one of this voice's phonemes")
            ids += self.id_map.get(char, [])
        return ids

    def phonemize(self, span: Span) -> Utterance:
        phonemes = self.g2p(span.text) if span.text.strip() else ""
        ids = [_PAD_ID]
        positions = []  # index in ids of each phoneme character
        for char in phonemes:
            positions.append(len(ids))
            ids += self.id_map.get(char, [])
        positions.append(len(ids))
        ids.append(_PAD_ID)
        tokens = textlib.words(span)
        starts = self._word_starts(phonemes, tokens)
        bounds = [*starts, len(phonemes)]
        words = tuple(Word(token, positions[begin], phonemes[begin:end].strip())
                      for token, begin, end in zip(tokens, bounds, bounds[1:], strict=False))
        return Utterance(span, tuple(ids), words, id_stride=1)

    def _word_starts(self, phonemes: str, tokens: list[Span]) -> list[int]:
        """Index in ``phonemes`` where each word starts (numbers and abbreviations expand to several)."""
        groups = _groups(phonemes)
        if not tokens or not groups:
            return []
        if len(groups) == len(tokens):
            return groups
        counts = [self._reading(t.text)[0] for t in tokens]
        if sum(counts) == len(groups):
            return [groups[sum(counts[:k])] for k in range(len(tokens))]
        lengths = [self._reading(t.text)[1] for t in tokens]
        total, starts, done = sum(lengths), [], 0
        for length in lengths:
            position = groups[0] + round(done * (len(phonemes) - 1 - groups[0]) / total)
            starts.append(max(position, starts[-1] + 1) if starts else position)
            done += length
        return [min(p, len(phonemes) - 1) for p in starts]


def _groups(phonemes: str) -> list[int]:
    """Start index of each space-separated group that holds a phoneme (not punctuation only)."""
    found, begin = [], 0
    for piece in phonemes.split(" "):
        if any(map(_is_phoneme, piece)):
            found.append(begin)
        begin += len(piece) + 1
    return found
