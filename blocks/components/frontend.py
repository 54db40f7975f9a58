"""Frontend: text -> utterances -> phoneme ids, remembering which ids belong to which word."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel

from blocks.addon import Addon
from blocks.components import text as textlib
from blocks.components.espeak import Espeak
from blocks.components.text import Span
from blocks.config import FrontendConfig
from blocks.core import Request, SequenceBlock, Tensors
from blocks.errors import AddonError, InputError
from blocks.registry import register

_BOS, _EOS, _PAD = "^", "$", "_"
_LANGUAGE_FLAG = re.compile(r"\([^)]*\)")
_PAUSE_AFTER = ",:;"


@dataclass
class Word:
    span: Span
    first_id: int
    """Index of the word's first phoneme id in the utterance's ids."""
    phonemes: str


@dataclass
class Utterance:
    """One complete utterance: its place in the input text, its phoneme ids and its words."""

    span: Span
    ids: list[int]
    words: list[Word] = field(default_factory=list)
    id_stride: int = 2
    """Ids per phoneme (2 where a pad id follows each phoneme)."""

    def tensors(self) -> Tensors:
        return {
            "input": np.asarray([self.ids], dtype=np.int64),
            "input_lengths": np.asarray([len(self.ids)], dtype=np.int64),
        }


@register("EspeakFrontend")
class EspeakFrontend(SequenceBlock):
    """espeak-ng IPA phonemes mapped to the voice's ids (BOS, PAD between ids, EOS).

    Characters the voice has no id for are dropped; espeak spells out digits and symbols.
    """

    Options = FrontendConfig

    def __init__(self, addon: Addon | None = None, options: BaseModel | None = None) -> None:
        super().__init__(addon, options)
        self.id_map = self._load_map(addon)
        self.espeak = Espeak(self.options.voice)

    def _load_map(self, addon: Addon | None) -> dict[str, list[int]]:
        source = self.options.phoneme_id_map
        if isinstance(source, dict):
            return source
        if addon is None:
            raise AddonError("a phoneme_id_map file needs an addon")
        path = addon.resolve(source)
        if not path.is_file():
            hint = f"; build it with: {addon.config.build}" if addon.config.build else ""
            raise AddonError(f"addon {addon.name!r}: phoneme map file {source} is missing{hint}")
        return json.loads(path.read_text(encoding="utf-8"))["phoneme_id_map"]

    def check(self, text: str) -> str:
        """Validate request text: a non-empty string under the limit. Returns it cleaned."""
        if not isinstance(text, str):
            raise InputError(f"text must be a string, got {type(text).__name__}")
        if not text.strip():
            raise InputError("text is empty or only whitespace")
        if len(text) > self.options.max_chars:
            raise InputError(f"text has {len(text)} characters; the limit is {self.options.max_chars}")
        cleaned = textlib.clean(text)
        if not cleaned.strip():  # e.g. only control characters
            raise InputError("text contains nothing that can be spoken")
        return cleaned

    def split(self, text: str) -> list[Span]:
        """Utterance spans of already-checked text (cheap: no phonemization)."""
        return textlib.utterances(text, self.options.max_utterance_chars, self.options.first_utterance_chars)

    def utterances(self, text: str) -> Iterator[Utterance]:
        """Check, split and phonemize ``text``, lazily, utterance by utterance."""
        for span in self.split(self.check(text)):
            utterance = self.phonemize(span)
            if len(utterance.ids) > 3:  # more than BOS, PAD, EOS: something to say
                yield utterance

    def phonemize(self, span: Span) -> Utterance:
        ids = list(self.id_map[_BOS]) + list(self.id_map[_PAD])
        words: list[Word] = []
        for clause in textlib.clauses(span.text):
            clause = Span(span.start + clause.start, span.start + clause.end, clause.text)
            body = clause.text.rstrip(".!?…,;:\"')]’” ")
            terminator = clause.text[len(body) :].strip()
            said = _LANGUAGE_FLAG.sub("", self.espeak.phonemes(body))
            phonemes = unicodedata.normalize("NFD", " ".join(said.split()))
            tokens = textlib.words(clause)
            starts = self._word_starts(phonemes, tokens)
            positions = []
            for char in phonemes:
                positions.append(len(ids))
                self._append(ids, char)
            bounds = [*starts, len(phonemes)]
            words += [Word(token, positions[begin], phonemes[begin:end].strip())
                      for token, begin, end in zip(tokens, bounds, bounds[1:], strict=False)]
            punct = next((c for c in reversed(terminator) if c in ".!?,;:"), "")
            if punct:
                self._append(ids, punct)
                if punct in _PAUSE_AFTER:
                    self._append(ids, " ")
            elif phonemes:
                self._append(ids, " ")
        ids += self.id_map[_EOS]
        return Utterance(span, ids, words)

    def _append(self, ids: list[int], char: str) -> None:
        if char in self.id_map:
            ids += self.id_map[char]
            ids += self.id_map[_PAD]

    def _word_starts(self, phonemes: str, tokens: list[Span]) -> list[int]:
        """Index in ``phonemes`` where each word starts (espeak may merge or split words)."""
        if not tokens or not phonemes:
            return []
        groups = [i for i, c in enumerate(phonemes) if i == 0 or (c != " " and phonemes[i - 1] == " ")]
        if len(groups) == len(tokens):
            return groups
        counts = [max(1, len(self.espeak.phonemes(t.text).split())) for t in tokens]
        if sum(counts) == len(groups):
            return [groups[sum(counts[:k])] for k in range(len(tokens))]
        # Merged words (e.g. "from the" -> one group): place words by their own phoneme lengths.
        lengths = [max(1, len(self.espeak.phonemes(t.text).replace(" ", ""))) for t in tokens]
        total, starts, done = sum(lengths), [], 0
        for length in lengths:
            position = round(done * (len(phonemes) - 1) / total)
            starts.append(max(position, starts[-1] + 1) if starts else 0)
            done += length
        return [min(p, len(phonemes) - 1) for p in starts]

    def run(self, inputs: Tensors, request: Request) -> Tensors:
        """``text`` (a 0-d string array) -> ids of its first utterance."""
        text = str(np.asarray(inputs["text"]).item())
        utterance = next(self.utterances(text), None)
        if utterance is None:
            raise InputError("text contains nothing that can be spoken")
        return utterance.tensors()
