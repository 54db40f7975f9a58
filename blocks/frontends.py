"""Frontends: text to utterances to phoneme ids, the first step of every request (outside the block stack).

An addon names its frontend by a registered short name (``frontend.type``), as its stack names blocks:
the built-in ones, those installed distributions declare (entry point group ``voxstack.frontends``), or
one registered in code. A frontend sees its options and a narrow context, never the whole addon.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

from blocks.components import text as textlib
from blocks.config import FrontendConfig
from blocks.context import FrontendContext
from blocks.errors import AddonError, InputError
from blocks.registry import Table

if TYPE_CHECKING:
    from blocks.components.sentence_rules import SentenceRules
    from blocks.components.text import Span
    from blocks.utterance import Utterance

FRONTEND_GROUP = "voxstack.frontends"
BUILTIN_FRONTENDS = {
    "EspeakFrontend": "blocks.components.frontend:EspeakFrontend",
    "HibariFrontend": "blocks.components.hibari_frontend:HibariFrontend",
}


class Frontend(abc.ABC):
    """Checks request text, splits it into utterance spans, and phonemizes one span at a time."""

    type_name = ""

    def __init__(self, context: FrontendContext | None = None, options: FrontendConfig | None = None) -> None:
        self.context = context
        self.options = options if options is not None else FrontendConfig()

    @property
    def language(self) -> str:
        """The language it reads (an espeak-ng voice name or a BCP 47 tag): it picks the text rules."""
        return self.options.voice

    @cached_property
    def rules(self) -> SentenceRules:
        """Where sentences end in this frontend's language (``blocks.components.sentence_rules``)."""
        from blocks.components.sentence_rules import rules_for

        return rules_for(self.language, None)

    def check(self, text: str) -> str:
        """Validate request text (a non-empty string under the limit); returns it cleaned (same length:
        offsets stay valid)."""
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

    @abc.abstractmethod
    def split(self, text: str) -> list[Span]:
        """Utterance spans of checked text: one per sentence (cheap: nothing is phonemized)."""

    def split_sentence(self, sentence: Span, first: bool) -> list[Span]:
        """Utterance spans of one complete sentence (``first``: the text's first), as ``split`` cuts a
        whole text: text streamed in is split sentence by sentence as each is confirmed."""
        return [sentence]

    @abc.abstractmethod
    def phonemize(self, span: Span) -> Utterance:
        """The span's phoneme ids and words."""

    def utterances(self, text: str) -> Iterator[Utterance]:
        """Check, split and phonemize ``text``, lazily, span by span."""
        for span in self.split(self.check(text)):
            yield self.phonemize(span)

    def layout(self, phonemes: str) -> str:
        """A phoneme string as this frontend lays it out in ids, one id (or id and pad) per character; a
        word's phonemes are kept in this form, so its marks can count through its ids."""
        return phonemes

    def phoneme_ids(self, phonemes: str, strict: bool = True) -> list[int]:
        """The ids of a phoneme string inside an utterance (SSML ``<phoneme>``); a frontend that cannot
        map phonemes says so."""
        raise InputError(f"<phoneme> is not supported by the {type(self).__name__} frontend")


FrontendType = TypeVar("FrontendType", bound=type[Frontend])
FRONTENDS: Table[type[Frontend]] = Table("frontend", FRONTEND_GROUP, BUILTIN_FRONTENDS, Frontend)


def register_frontend(name: str) -> Callable[[FrontendType], FrontendType]:
    """Class decorator: make a frontend selectable as ``"frontend": {"type": name}``."""

    def decorate(cls: FrontendType) -> FrontendType:
        FRONTENDS.register(name, cls)
        return cls

    return decorate


def build_frontend(context: FrontendContext, options: FrontendConfig) -> Frontend:
    """The frontend of type ``options.type``, built for an addon's ``context``."""
    cls = FRONTENDS.lookup(options.type)
    if cls is None:
        valid = sorted(FRONTENDS.load_all())
        problem = next((p for p in FRONTENDS.problems() if p.name == options.type), None)
        reason = f" ({problem.source}: {problem.reason})" if problem else ""
        raise AddonError(f"addon {context.name!r}: $.frontend.type: unknown type {options.type!r}{reason}; "
                         f"valid: {valid}")
    return cls(context, options)
