"""Frontends: text to utterances to phoneme ids, the first step of every request (outside the block stack).

An addon names its frontend by a registered short name (``frontend.type``), as its stack names blocks.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

from blocks.config import FrontendConfig
from blocks.errors import AddonError
from blocks.registry import enter

if TYPE_CHECKING:
    from blocks.addon import Addon
    from blocks.components.frontend import Utterance
    from blocks.components.text import Span


class Frontend(abc.ABC):
    """Checks request text, splits it into utterance spans, and phonemizes one span at a time."""

    type_name = ""

    def __init__(self, addon: Addon | None = None, options: FrontendConfig | None = None) -> None:
        self.addon = addon
        self.options = options if options is not None else FrontendConfig()

    @abc.abstractmethod
    def check(self, text: str) -> str:
        """Validate request text; returns it cleaned (same length: offsets stay valid)."""

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


FrontendType = TypeVar("FrontendType", bound=type[Frontend])
FRONTENDS: dict[str, type[Frontend]] = {}


def register_frontend(name: str) -> Callable[[FrontendType], FrontendType]:
    """Class decorator: make a frontend selectable as ``"frontend": {"type": name}``."""

    def decorate(cls: FrontendType) -> FrontendType:
        enter(FRONTENDS, name, cls, "frontend")
        return cls

    return decorate


def build_frontend(addon: Addon) -> Frontend:
    """The addon's frontend, from its registered type."""
    import blocks.components  # noqa: F401 - registers the built-in frontends

    config = addon.config.frontend
    cls = FRONTENDS.get(config.type)
    if cls is None:
        raise AddonError(f"addon {addon.name!r}: $.frontend.type: unknown type {config.type!r}; "
                         f"valid: {sorted(FRONTENDS)}")
    return cls(addon, config)
