"""SSML (the Amazon Polly subset) to the spoken text, with per-span controls and offsets into the source.

Parsing is hardened (defusedxml: no DTD, no entity declarations, no external references), bounded in
size and nesting depth, and strict: an unknown tag or attribute is an error naming it and its line and
column, as is malformed XML. The result is a :class:`~blocks.ssml_document.Document`: the text the
frontend reads (with whitespace collapsed, ``say-as`` and ``sub`` expanded), the controls in force at
each of its characters, the breaks, marks and phoneme overrides at their positions in it, and for each
of its characters the UTF-8 byte range in the SSML source it came from (speech marks point into it).
"""

from __future__ import annotations

import math
import re
from typing import Any, NoReturn
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from blocks.errors import InputError
from blocks.language import same_language
from blocks.say_as import DATE_FORMATS, READERS, say_as
from blocks.ssml_document import NEUTRAL, Break, Controls, Document, MarkTag, Phonemes, SsmlError
from blocks.xsampa import to_ipa

MAX_SOURCE_BYTES = 262_144
"""Largest SSML document accepted (its text content also counts against the addon's ``max_chars``)."""
MAX_DEPTH = 32
"""Deepest element nesting accepted."""
MAX_BREAK_S = 10.0
"""Longest single ``<break>`` (Polly's maximum too)."""
MAX_TOTAL_BREAK_S = 120.0
"""Most silence all the breaks of one document may add."""
BREAK_STRENGTHS = {"none": 0.0, "x-weak": 0.1, "weak": 0.25, "medium": 0.4, "strong": 0.7, "x-strong": 1.2}
"""Seconds of silence per ``strength``; a ``<break/>`` without attributes is ``medium``."""
PARAGRAPH_BREAK = "strong"
"""Strength of the pause added after each ``<p>`` that more text follows."""
RATES = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "fast": 1.25, "x-fast": 1.5}
"""Speaking rate per named ``rate`` (1: the voice's own)."""
RATE_PERCENT = (20.0, 200.0)
VOLUMES_DB = {"silent": -math.inf, "x-soft": -12.0, "soft": -6.0, "medium": 0.0, "loud": 6.0, "x-loud": 12.0}
VOLUME_DB = (-40.0, 12.0)
"""Range of a ``volume`` in dB (after nesting)."""
PITCHES = {"x-low": 0.7, "low": 0.85, "medium": 1.0, "high": 1.15, "x-high": 1.3}
PITCH_PERCENT = (-50.0, 100.0)
ALPHABETS = ("ipa", "x-sampa")
XML_NS = "{http://www.w3.org/XML/1998/namespace}"
SSML_NS = "{http://www.w3.org/2001/10/synthesis}"

ATTRIBUTES: dict[str, frozenset[str]] = {
    "speak": frozenset({"version", "lang", "base"}),
    "p": frozenset({"lang"}),
    "s": frozenset({"lang"}),
    "break": frozenset({"time", "strength"}),
    "prosody": frozenset({"rate", "volume", "pitch"}),
    "say-as": frozenset({"interpret-as", "format"}),
    "sub": frozenset({"alias"}),
    "phoneme": frozenset({"alphabet", "ph"}),
    "mark": frozenset({"name"}),
    "lang": frozenset({"lang", "onlangfailure"}),
}
"""Every supported tag and its attributes (``xml:lang`` is written ``lang`` here)."""
TEXT_ONLY = frozenset({"say-as", "sub", "phoneme"})
EMPTY = frozenset({"break", "mark"})


def parse(source: str, language: str = "en") -> Document:
    """The document of an SSML string for a voice speaking ``language``; an :class:`SsmlError` says what is
    wrong and where (``xml:lang`` naming another language included)."""
    if not isinstance(source, str):
        raise SsmlError(f"SSML must be a string, got {type(source).__name__}")
    data = source.encode("utf-8")
    if len(data) > MAX_SOURCE_BYTES:
        raise SsmlError(f"SSML has {len(data)} bytes; the limit is {MAX_SOURCE_BYTES}")
    builder = _Builder(source, data, language)
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    builder.expat = parser.parser
    parser.parser.buffer_text = False  # one call per text piece: its byte index is exact
    try:
        parser.feed(data)
        parser.close()
    except ParseError as error:
        line, column = error.position
        reason = str(error).split(":")[0]
        raise SsmlError(f"SSML is not well-formed XML: {reason} at line {line}, column {column + 1}") from None
    except DefusedXmlException as error:
        raise SsmlError(f"SSML may not hold a DTD, entity declarations or external references "
                        f"({type(error).__name__}) at {builder.where()}") from None
    return builder.finish()


class _Builder:
    """The parser's target: builds the spoken text as elements open and close."""

    def __init__(self, source: str, data: bytes, language: str) -> None:
        self.raw = data
        self.language = language
        self.doc = Document(source)
        self.expat: Any = None
        self.stack: list[tuple[str, Controls, int, dict[str, str]]] = []
        """Open elements: tag, controls inside it, spoken offset where it began, its attributes."""
        self.held: list[tuple[str, int]] | None = None
        """Text of an open say-as or sub element, with each piece's byte offset."""
        self.order = 0
        self.break_total = 0.0
        self.paragraph_ends: set[int] = set()
        """Orders of the breaks that end a paragraph (dropped where no text follows)."""

    def where(self) -> str:
        return f"line {self.expat.CurrentLineNumber}, column {self.expat.CurrentColumnNumber + 1}"

    def _fail(self, message: str) -> NoReturn:
        raise SsmlError(f"{message} at {self.where()}")

    # --- parser target interface ---

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        name = tag.removeprefix(SSML_NS)
        if name not in ATTRIBUTES:
            self._fail(f"unsupported SSML tag <{name}>; supported: {sorted(ATTRIBUTES)}")
        if not self.stack and name != "speak":
            self._fail(f"SSML must have <speak> as its root element, not <{name}>")
        if self.stack and name == "speak":
            self._fail("<speak> may only be the root element")
        if len(self.stack) >= MAX_DEPTH:
            self._fail(f"SSML nests deeper than {MAX_DEPTH} elements")
        if self.stack and (self.stack[-1][0] in TEXT_ONLY or self.stack[-1][0] in EMPTY):
            self._fail(f"<{self.stack[-1][0]}> may hold only text, not <{name}>")
        attributes = {key.replace(XML_NS, ""): value for key, value in attrib.items()}
        for key in attributes:
            if key not in ATTRIBUTES[name]:
                self._fail(f"unsupported attribute {key!r} on <{name}>; supported: {sorted(ATTRIBUTES[name])}")
        controls = self.stack[-1][1] if self.stack else NEUTRAL
        if name in ("s", "p"):
            self._boundary()
        elif name == "break":
            self._break(attributes)
        elif name == "mark":
            self._mark(attributes)
        elif name == "prosody":
            controls = self._prosody(controls, attributes)
        elif name in ("say-as", "sub"):
            self._check_say_as(name, attributes)
            self.held = []
        elif name == "phoneme":
            self._check_phoneme(attributes)
        if "lang" in attributes and not same_language(attributes["lang"], self.language):
            self._fail(f"xml:lang {attributes['lang']!r} on <{name}> is not the voice's language "
                       f"({self.language!r}): a voice speaks its own language only")
        self.stack.append((name, controls, len(self.doc.text), attributes))

    def end(self, tag: str) -> None:
        name, _, began, attributes = self.stack.pop()
        at = self.expat.CurrentByteIndex
        if name in ("say-as", "sub"):
            held, self.held = self.held or [], None
            content = "".join(piece for piece, _ in held)
            first = held[0][1] if held else at
            if name == "sub":
                spoken = attributes["alias"]
            else:
                try:
                    spoken = say_as(attributes["interpret-as"], content, attributes.get("format"), self.language)
                except InputError as error:
                    self._fail(str(error))
            self._append(spoken, first, at, controls=self.stack[-1][1])
        elif name == "phoneme":
            self._phonemes(attributes, began)
        elif name in ("s", "p"):
            self._boundary()
            if name == "p":
                self.doc.breaks.append(Break(len(self.doc.text), BREAK_STRENGTHS[PARAGRAPH_BREAK], self._next()))
                self.paragraph_ends.add(self.order)

    def data(self, text: str) -> None:
        at = self.expat.CurrentByteIndex
        if not self.stack:
            return
        if self.stack[-1][0] in EMPTY:
            self._fail(f"<{self.stack[-1][0]}> may not hold text")
        if self.held is not None:
            self.held.append((text, at))
            return
        self._append(text, at, None, self.stack[-1][1])

    def close(self) -> None:
        return None

    # --- building ---

    def _append(self, text: str, at: int, until: int | None, controls: Controls) -> None:
        """Add ``text`` from source byte ``at``, whitespace collapsed; ``until`` given: every character
        stands for the whole source range ``at .. until`` (an expansion), else each for its own bytes."""
        doc = self.doc
        for char in text:
            size = len(char.encode("utf-8"))
            start, end = (at, until) if until is not None else (at, at + size)
            if until is None:
                at += size
            if char.isspace():
                if not doc.text or doc.text[-1] == " ":
                    continue
                char = " "
            doc.text += char
            doc.starts.append(start)
            doc.ends.append(end)
            doc.controls.append(controls)

    def _space(self) -> None:
        """A word boundary (at a break, a sentence edge), so words on both sides stay apart."""
        at = self.expat.CurrentByteIndex
        self._append(" ", at, at, self.stack[-1][1] if self.stack else NEUTRAL)

    def _boundary(self) -> None:
        self._space()
        if len(self.doc.text) not in self.doc.boundaries:
            self.doc.boundaries.append(len(self.doc.text))

    def _next(self) -> int:
        self.order += 1
        return self.order

    def _break(self, attributes: dict[str, str]) -> None:
        if "time" in attributes:
            seconds = _seconds(attributes["time"])
            if seconds is None:
                self._fail(f"<break> time {attributes['time']!r} is not a duration like '700ms' or '1.5s'")
        else:
            strength = attributes.get("strength", "medium")
            if strength not in BREAK_STRENGTHS:
                self._fail(f"<break> strength {strength!r} is not one of {list(BREAK_STRENGTHS)}")
            seconds = BREAK_STRENGTHS[strength]
        assert seconds is not None
        if seconds > MAX_BREAK_S:
            self._fail(f"<break> of {seconds:g} s is longer than the maximum of {MAX_BREAK_S:g} s")
        self.break_total += seconds
        if self.break_total > MAX_TOTAL_BREAK_S:
            self._fail(f"the breaks add more than {MAX_TOTAL_BREAK_S:g} s of silence")
        self._space()
        self.doc.breaks.append(Break(len(self.doc.text), seconds, self._next()))

    def _mark(self, attributes: dict[str, str]) -> None:
        name = attributes.get("name")
        if not name:
            self._fail("<mark> needs a name")
        start = self.expat.CurrentByteIndex
        self.doc.marks.append(MarkTag(len(self.doc.text), str(name), start, _tag_end(self.raw, start), self._next()))

    def _prosody(self, outer: Controls, attributes: dict[str, str]) -> Controls:
        if not attributes:
            self._fail("<prosody> needs rate, volume or pitch")
        rate, volume, pitch = outer.rate, outer.volume_db, outer.pitch
        if "rate" in attributes:
            rate *= self._level("rate", attributes["rate"], RATES, RATE_PERCENT, relative=False)
        if "volume" in attributes:
            value = attributes["volume"].strip()
            if value in VOLUMES_DB:
                volume += VOLUMES_DB[value]
            elif (match := re.fullmatch(r"([+-]?\d+(?:\.\d+)?)\s*dB", value)) is not None:
                volume += float(match.group(1))
            else:
                self._fail(f"<prosody> volume {value!r} is not one of {list(VOLUMES_DB)} or like '+6dB'")
            if volume != -math.inf and not VOLUME_DB[0] <= volume <= VOLUME_DB[1]:
                self._fail(f"<prosody> volume comes to {volume:g} dB; the range is {VOLUME_DB[0]:g} to "
                           f"{VOLUME_DB[1]:g} dB")
        if "pitch" in attributes:
            pitch *= self._level("pitch", attributes["pitch"], PITCHES, PITCH_PERCENT, relative=True)
        return Controls(rate, volume, pitch)

    def _level(self, what: str, value: str, named: dict[str, float], bounds: tuple[float, float],
               relative: bool) -> float:
        """A named level, or a percentage (``rate``: of the current, ``pitch``: ``+n%`` / ``-n%`` change)."""
        value = value.strip()
        if value in named:
            return named[value]
        pattern = r"([+-]\d+(?:\.\d+)?)%" if relative else r"(\d+(?:\.\d+)?)%"
        match = re.fullmatch(pattern, value)
        low, high = bounds
        if match is None or not low <= float(match.group(1)) <= high:
            form = f"{'+' if relative else ''}n% with n from {low:g} to {high:g}"
            self._fail(f"<prosody> {what} {value!r} is not one of {list(named)} or {form}")
        assert match is not None
        percent = float(match.group(1))
        return 1 + percent / 100 if relative else percent / 100

    def _check_say_as(self, name: str, attributes: dict[str, str]) -> None:
        if name == "sub":
            if not attributes.get("alias", "").strip():
                self._fail("<sub> needs a non-empty alias")
            return
        if "interpret-as" not in attributes:
            self._fail("<say-as> needs interpret-as")
        if (fmt := attributes.get("format")) is not None and fmt not in DATE_FORMATS:
            self._fail(f"<say-as> format {fmt!r} is not one of {list(DATE_FORMATS)}")
        if attributes["interpret-as"] not in READERS:
            self._fail(f"<say-as> interpret-as {attributes['interpret-as']!r} is not supported; "
                       f"use one of {sorted(READERS)}")

    def _check_phoneme(self, attributes: dict[str, str]) -> None:
        alphabet = attributes.get("alphabet", "ipa")
        if alphabet not in ALPHABETS:
            self._fail(f"<phoneme> alphabet {alphabet!r} is not one of {list(ALPHABETS)}")
        if not attributes.get("ph", "").strip():
            self._fail("<phoneme> needs a non-empty ph")

    def _phonemes(self, attributes: dict[str, str], began: int) -> None:
        ph = attributes["ph"].strip()
        ipa = to_ipa(ph) if attributes.get("alphabet", "ipa") == "x-sampa" else ph
        text = self.doc.text
        start = began + (len(text) - began - len(text[began:].lstrip()))
        end = len(text.rstrip()) if len(text.rstrip()) > start else start
        if end <= start:
            self._fail("<phoneme> needs the text it is said in place of")
        self.doc.phonemes.append(Phonemes(start, end, ipa))

    def finish(self) -> Document:
        doc = self.doc
        while doc.text.endswith(" "):  # trailing space only: breaks and marks past it stay at the end
            doc.text, doc.starts, doc.ends, doc.controls = doc.text[:-1], doc.starts[:-1], doc.ends[:-1], \
                doc.controls[:-1]
        end = len(doc.text)
        doc.breaks = [b if b.at <= end else Break(end, b.seconds, b.order) for b in doc.breaks
                      if b.seconds > 0 and not (b.order in self.paragraph_ends and b.at >= end)]
        doc.marks = [m if m.at <= end else MarkTag(end, m.name, m.start, m.end, m.order) for m in doc.marks]
        doc.boundaries = sorted({min(b, end) for b in doc.boundaries} - {0, end})
        return doc


def _seconds(value: str) -> float | None:
    """'700ms' or '1.5s' in seconds; None if it is neither."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*", value)
    if match is None:
        return None
    number = float(match.group(1))
    return number / 1000 if match.group(2) == "ms" else number


def _tag_end(data: bytes, start: int) -> int:
    """Byte offset just after the tag that begins at ``start`` (quoted ``>`` skipped)."""
    quote = 0
    for at in range(start, len(data)):
        byte = data[at]
        if quote:
            quote = 0 if byte == quote else quote
        elif byte in (0x22, 0x27):
            quote = byte
        elif byte == 0x3E:
            return at + 1
    return len(data)
