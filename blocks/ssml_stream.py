"""SSML streamed in: a TextStream whose fragments form SSML documents, each complete at a flush or the end.

An SSML document is only well-formed once it is whole, so fragments are held until ``flush`` or
``end``; the ``<speak>`` document they form is then parsed and spoken as a one-shot SSML request
speaks it (its sentences, controls, breaks and marks). Speech marks point into everything the client
sent: ``start``/``end`` are UTF-8 byte offsets into the concatenation of the fragments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from blocks import ssml, ssml_plan
from blocks.backends.base import Tally
from blocks.components.text import Span
from blocks.errors import InputError
from blocks.frontends import Frontend
from blocks.options import SynthesisOptions
from blocks.session import Job, Session
from blocks.ssml_document import NEUTRAL, Break, Document, MarkTag, Phonemes, SsmlError
from blocks.text_stream import TextStream
from blocks.utterance import Utterance

if TYPE_CHECKING:
    from blocks.addon import Addon


class SsmlTextStream(TextStream):
    """A TextStream of SSML documents: ``flush`` and ``end`` close the document the fragments since the
    last one form."""

    def __init__(self, addon: Addon, frontend: Frontend, options: SynthesisOptions, request_id: str | None = None,
                 tally: Tally | None = None) -> None:
        super().__init__(addon, frontend, options, request_id, tally)
        self.addon = addon
        self.document = Document("")
        """Every document so far, one after another (a space apart) in one spoken text."""
        self.byte = self.document.offsets()
        self._bounds: list[tuple[int, int]] = []
        """Per span: the spoken-text range whose breaks and marks go with it."""

    def feed(self, fragment: str) -> None:
        if self.ended:
            raise InputError("text after the end of the stream")
        held = len((self.text[self.rest :] + fragment).encode("utf-8"))
        if held > ssml.MAX_SOURCE_BYTES:
            raise SsmlError(f"an SSML document of more than {ssml.MAX_SOURCE_BYTES} bytes: send flush "
                            f"after each </speak>")
        self.text += fragment

    def flush(self) -> None:
        """The fragments since the last document are a whole SSML document: speak it."""
        self._close()

    def end(self) -> None:
        self._close()
        self.ended = True
        self._mark_final()

    def _close(self) -> None:
        source, base = self.text[self.rest :], len(self.text[: self.rest].encode("utf-8"))
        self.rest = len(self.text)
        if not source.strip():
            return
        # parsed for the voice's language; controls the addon honours
        document = Session._document(self.addon, source, "ssml", self.addon.config.language(self.voice))
        spans = ssml_plan.spans(document, self.frontend, self.frontend.check(document.text))
        with self._lock:
            offset = self._append(document, base)
            edges = [s.start + offset for s in spans[1:]] + [offset + len(document.text) + 1]
            lower = offset
            for span, upper in zip(spans, edges, strict=True):
                self._bounds.append((lower, upper))
                self._pending.append((len(self.spans), Span(span.start + offset, span.end + offset, span.text)))
                self.spans.append(self._pending[-1][1])
                lower = upper
            self.sentences += len(spans)

    def _append(self, document: Document, base: int) -> int:
        """Add ``document`` (its source starting at byte ``base``) to the stream's; returns its spoken offset."""
        merged = self.document
        if merged.text:
            merged.text += " "
            merged.starts.append(base)
            merged.ends.append(base)
            merged.controls.append(NEUTRAL)
        offset = len(merged.text)
        merged.text += document.text
        merged.starts += [at + base for at in document.starts]
        merged.ends += [at + base for at in document.ends]
        merged.controls += document.controls
        merged.breaks += [Break(b.at + offset, b.seconds, b.order) for b in document.breaks]
        merged.marks += [MarkTag(m.at + offset, m.name, m.start + base, m.end + base, m.order)
                         for m in document.marks]
        merged.phonemes += [Phonemes(p.start + offset, p.end + offset, p.ipa) for p in document.phonemes]
        merged.source = self.text[: self.rest]
        self.byte = merged.offsets()
        return offset

    def _job(self, utterance: Utterance, index: int, sentence: int, final: bool, until: int | None = None) -> Job:
        lower, upper = self._bounds[sentence]
        utterance, tensors, marks = ssml_plan.shape(self.document, self.frontend, utterance, lower, upper,
                                                    self.seconds_per_frame)
        return Job(utterance, index, sentence, final, self.options, self.request_id, self.voice.name, tensors, marks)
