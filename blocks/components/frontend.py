"""Frontend: text -> utterances -> phoneme ids, remembering which ids belong to which word."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from functools import cached_property

from blocks.components import text as textlib
from blocks.components.espeak import Clause, Espeak
from blocks.components.sentence_rules import SentenceRules, rules_for
from blocks.components.text import Span
from blocks.config import FrontendConfig
from blocks.context import FrontendContext
from blocks.errors import AddonError, InputError
from blocks.frontends import Frontend
from blocks.utterance import Utterance, Word

_BOS, _EOS, _PAD = "^", "$", "_"
_LANGUAGE_FLAG = re.compile(r"\([^)]+\)")  # as piper-tts removes them
_PAUSE_AFTER = frozenset(",:;")


class EspeakFrontend(Frontend):
    """espeak-ng IPA phonemes mapped to the voice's ids (BOS, PAD between ids, EOS).

    Characters the voice has no id for are dropped; espeak spells out digits and symbols.
    """

    def __init__(self, context: FrontendContext | None = None, options: FrontendConfig | None = None) -> None:
        super().__init__(context, options)
        self.id_map = self._load_map(context)
        self.espeak = Espeak(self.options.voice)

    @cached_property
    def rules(self) -> SentenceRules:
        """English rules for English voices; espeak-ng's sentence ends (piper-tts's) for the others."""
        return rules_for(self.language, getattr(self, "espeak", None))

    def _load_map(self, context: FrontendContext | None) -> dict[str, list[int]]:
        source = self.options.phoneme_id_map
        if isinstance(source, dict):
            return source
        if context is None:
            raise AddonError("a phoneme_id_map file needs an addon")
        path = context.resolve(source)
        if not path.is_file():
            raise context.missing(f"phoneme map file {source}")
        return json.loads(path.read_text(encoding="utf-8"))["phoneme_id_map"]

    def split(self, text: str) -> list[Span]:
        """Utterance spans of already-checked text (cheap: no phonemization): whole sentences, unless
        the opt-in ``max_utterance_chars`` or ``first_utterance_chars`` options cut them."""
        return [piece for number, sentence in enumerate(self.rules.sentences(text))
                for piece in self.split_sentence(sentence, first=number == 0)]

    def split_sentence(self, sentence: Span, first: bool) -> list[Span]:
        """One sentence's utterances: whole, unless ``max_utterance_chars`` or (for the ``first``)
        ``first_utterance_chars`` cut it."""
        options = self.options
        return textlib.sentence_utterances(sentence, options.max_utterance_chars,
                                           options.first_utterance_chars if first else None)

    def utterances(self, text: str) -> Iterator[Utterance]:
        """Check, split and phonemize ``text``, lazily, utterance by utterance."""
        for span in self.split(self.check(text)):
            utterance = self.phonemize(span)
            if len(utterance.ids) > 3:  # more than BOS, PAD, EOS: something to say
                yield utterance

    def phonemize(self, span: Span) -> Utterance:
        """The ids piper-tts gives ``span``'s text, clause by clause as espeak-ng reads it: the IPA
        (language flags removed, NFD), the clause's punctuation, a space after ``, : ;``; each
        character's id followed by the pad id, between BOS and EOS.

        Where espeak-ng would end a sentence inside the span at a period that is not a sentence end
        ("Dr. Smith"), that period is read as a space, so the utterance stays one sentence.
        """
        said = self._read(span.text)
        tokens = textlib.words(span)
        ids = list(self.id_map[_BOS]) + list(self.id_map[_PAD])
        words: list[Word] = []
        spoken = [n for n, clause in enumerate(said) if clause.phonemes.strip()]
        for number, clause in enumerate(said):
            last = number >= (spoken[-1] if spoken else 0)
            mine = [t for t in tokens if last or t.end - span.start <= clause.end]
            tokens = tokens[len(mine):]
            phonemes = self.layout(_LANGUAGE_FLAG.sub("", clause.phonemes))
            starts = self._word_starts(phonemes, mine)
            positions = []
            for char in phonemes:
                positions.append(len(ids))
                self._append(ids, char)
            bounds = [*starts, len(phonemes)]
            words += [Word(token, positions[begin], phonemes[begin:end].strip())
                      for token, begin, end in zip(mine, bounds, bounds[1:], strict=False)]
            for char in self.layout(clause.terminator):
                self._append(ids, char)
            if clause.terminator in _PAUSE_AFTER or (clause.sentence_end and not last):
                self._append(ids, " ")
        ids += self.id_map[_EOS]
        return Utterance(span, tuple(ids), tuple(words))

    def _read(self, text: str) -> list[Clause]:
        """espeak-ng's clauses of ``text``, with periods it would wrongly end a sentence at read as spaces."""
        said = self.espeak.clauses(text)
        ends = {sentence.end for sentence in self.rules.sentences(text)}
        masked = text
        for clause in said[:-1]:
            if clause.sentence_end and clause.terminator == ".":
                dot = _period_before(text, clause.end)
                if dot is not None and _run_end(text, dot) not in ends:
                    masked = masked[:dot] + " " + masked[dot + 1 :]
        return said if masked == text else self.espeak.clauses(masked)

    def layout(self, phonemes: str) -> str:
        """NFD: piper's voices have an id for each character of the decomposed IPA."""
        return unicodedata.normalize("NFD", phonemes)

    def phoneme_ids(self, phonemes: str, strict: bool = True) -> list[int]:
        """The ids of a phoneme string as ``phonemize`` lays them out (each followed by the pad id);
        a character the voice has no id for is an InputError naming it."""
        ids: list[int] = []
        for char in phonemes:
            if char not in self.id_map and strict:
                raise InputError(f"phoneme {char!r} (U+{ord(char):04X}) is not one of this voice's phonemes")
            self._append(ids, char)
        return ids

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



def _period_before(text: str, end: int) -> int | None:
    """The last period before ``end`` that closes a word ("Dr.", "J.", "U.S.") and is followed by a space."""
    for at in range(min(end, len(text) - 1) - 1, max(0, end - 6), -1):
        if text[at] == "." and text[at - 1].isalnum() and _run_end(text, at) < len(text) \
                and text[_run_end(text, at)].isspace():
            return at
    return None


def _run_end(text: str, dot: int) -> int:
    """Offset just after the period at ``dot`` and any closing quotes or brackets after it."""
    at = dot + 1
    while at < len(text) and text[at] in textlib.CLOSERS:
        at += 1
    return at
