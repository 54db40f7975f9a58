"""What parsed SSML is: the spoken text, the controls, breaks, marks and phoneme overrides at their places
in it, and the way back from a spoken character to the bytes of the SSML source it came from."""

from __future__ import annotations

from dataclasses import dataclass, field

from blocks.errors import InputError


class SsmlError(InputError):
    """SSML the service refuses: malformed, unsafe, unsupported, or out of range."""


@dataclass(frozen=True)
class Controls:
    """Prosody in force over a stretch of text."""

    rate: float = 1.0
    """Speaking rate (0.5: half speed, durations doubled)."""
    volume_db: float = 0.0
    pitch: float = 1.0
    """f0 multiplier."""


NEUTRAL = Controls()


@dataclass(frozen=True)
class Break:
    at: int
    """Offset in the spoken text the silence goes before."""
    seconds: float
    order: int
    """Position among the breaks and marks of the document (which comes first at one offset)."""


@dataclass(frozen=True)
class MarkTag:
    """A ``<mark name>`` tag: where it stands in the spoken text and in the source."""

    at: int
    name: str
    start: int
    """UTF-8 byte offsets of the ``<mark>`` tag in the source."""
    end: int
    order: int


@dataclass(frozen=True)
class Phonemes:
    start: int
    end: int
    """Spoken-text range of the words said with ``ipa`` instead of their own phonemes."""
    ipa: str


@dataclass
class Document:
    """A parsed SSML document."""

    source: str
    text: str = ""
    starts: list[int] = field(default_factory=list)
    """UTF-8 byte offset in ``source`` where each spoken character comes from."""
    ends: list[int] = field(default_factory=list)
    """UTF-8 byte offset in ``source`` just after what each spoken character comes from."""
    controls: list[Controls] = field(default_factory=list)
    """The controls in force at each spoken character."""
    breaks: list[Break] = field(default_factory=list)
    marks: list[MarkTag] = field(default_factory=list)
    phonemes: list[Phonemes] = field(default_factory=list)
    boundaries: list[int] = field(default_factory=list)
    """Spoken-text offsets where a sentence must end (``<s>``, ``<p>`` edges)."""

    def used(self) -> set[str]:
        """The span controls the document asks for: ``rate``, ``volume``, ``pitch``, ``break``."""
        used = {"break"} if any(b.seconds > 0 for b in self.breaks) else set()
        for controls in set(self.controls):
            used |= {name for name, neutral in (("rate", controls.rate == 1.0), ("volume", controls.volume_db == 0.0),
                                                ("pitch", controls.pitch == 1.0)) if not neutral}
        return used

    def offsets(self) -> SourceOffsets:
        return SourceOffsets(self)


class SourceOffsets:
    """Spoken-text offset -> UTF-8 byte offset in the SSML source (for speech marks' ``start`` and ``end``)."""

    def __init__(self, document: Document) -> None:
        self.starts, self.ends = document.starts, document.ends
        self.size = len(document.source.encode("utf-8"))

    def __call__(self, char_offset: int) -> int:
        """Where the character at ``char_offset`` starts in the source."""
        return self.starts[char_offset] if char_offset < len(self.starts) else self.size

    def end(self, char_offset: int) -> int:
        """Where the text ending before ``char_offset`` ends in the source."""
        return self.ends[char_offset - 1] if char_offset > 0 else self(0)
