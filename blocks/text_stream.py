"""Text streamed in: a Session whose text arrives in fragments (a language model's tokens, a typist's keys).

Fragments may cut words anywhere. A sentence is released as soon as what follows confirms its end
(the frontend's ``rules.complete_sentences``: in English "Dr.", "$42.50", "9:30" and "e.g." never end one;
in other languages espeak-ng's sentence ends apply); a run with no
sentence end is cut at its last clause boundary once it passes ``LONG_RUN_CHARS``. Released sentences
become utterances exactly as the one-shot :class:`~blocks.session.Session` makes them from the whole
text (same spans, offsets into the concatenation of every fragment, same running ``index`` and so the
same seeds): without ``flush`` and without a long run, the audio equals the one-shot audio.

The transport feeds text (``feed``, ``flush``, ``clear``, ``end``), runs ``plan`` off its event loop
(phonemizing is blocking work), and takes jobs (``take``) to encode and stream like any Session's.

With ``speculate``, a first sentence whose end awaits confirmation is released at once, marked
``speculative``, so its audio is made while the confirming text travels: the transport holds that audio
until what follows confirms the same sentence (``speculative`` back to None), or, when it does not
("Dr." then " Reyes"), the stream takes the release back, sets ``refuted``, and the transport drops the
audio and starts its synthesis afresh. Either way what is spoken is what the unspeculated stream speaks.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from blocks.backends.base import Tally
from blocks.components import text as textlib
from blocks.components.text import Span
from blocks.errors import InputError
from blocks.frontends import Frontend
from blocks.marks import ByteOffsets
from blocks.options import SynthesisOptions
from blocks.session import NOTHING_TO_SAY, Job, Session

if TYPE_CHECKING:
    from blocks.addon import Addon

LONG_RUN_CHARS = 300
"""A run this long with no confirmed sentence end is spoken up to its last clause boundary (, ; : or a
spaced dash) rather than waiting: such a cut changes the prosody at the seam, as ``flush`` does."""


class TextStream(Session):
    """A Session fed text in fragments; utterances are planned as their sentences are confirmed."""

    def __init__(self, addon: Addon, frontend: Frontend, options: SynthesisOptions, request_id: str | None = None,
                 tally: Tally | None = None, long_run_chars: int = LONG_RUN_CHARS, speculate: bool = False) -> None:
        super().__init__(addon, frontend, "", options, request_id, tally)
        self.cleaned = ""
        """The same text as the frontend reads it (same length)."""
        self.max_buffered = frontend.options.max_chars
        self.long_run_chars = long_run_chars
        self.rest = 0
        """Offset where the text not yet released starts."""
        self.sentences = 0
        self.ended = False
        self.speculate = speculate
        self.speculative: list[Span] | None = None
        """The pieces of a first sentence released before its end was confirmed."""
        self.refuted = False
        """A speculative release was taken back: the transport drops its audio and restarts (then clears this)."""
        self._pending: deque[tuple[int, Span]] = deque()
        self._ready: deque[Job] = deque()
        self._index = 0
        self._epoch = 0
        self._phonemizing = False
        self._lock = threading.Lock()
        self._planning = threading.Lock()

    def _plan(self, addon: Addon, text: str, text_type: str) -> None:
        """Nothing yet: sentences are planned as fragments confirm them."""
        self.text = text
        """Every fragment received, concatenated: mark offsets count into it."""
        self.document = None
        self.spans: list[Span] = []
        """Utterance spans released so far (their index is a Job's ``sentence``)."""
        self.byte = ByteOffsets(text)

    # ---- text in ------------------------------------------------------------------------------
    def feed(self, fragment: str) -> None:
        """Add a fragment; releases the sentences it confirms."""
        if self.ended:
            raise InputError("text after the end of the stream")
        if len(self.text) - self.rest + len(fragment) > self.max_buffered:
            raise InputError(f"more than {self.max_buffered} characters buffered without a sentence end; "
                             f"send flush, or end sentences")
        self.text += fragment
        self.cleaned += textlib.clean(fragment)
        self._release(final=False)

    def flush(self) -> None:
        """Speak what is buffered now, as if the text ended here."""
        self._release(final=True)

    def end(self) -> None:
        """No more text: speak the rest."""
        self._release(final=True)
        self.ended = True
        self._mark_final()

    def clear(self) -> None:
        """Barge-in: drop buffered text and every utterance not yet taken."""
        with self._lock:
            self._epoch += 1
            self.rest = len(self.text)
            self._pending.clear()
            self._ready.clear()
            if self.speculative is not None:  # never spoken: as if never released
                self.speculative = None
                self.spans.clear()
                self._index = 0

    def _release(self, final: bool) -> None:
        start = self.rest
        tail = self.cleaned[start:]
        if final:
            found, rest = self.frontend.rules.sentences(tail), len(tail)
        else:
            found, rest = self.frontend.rules.complete_sentences(tail)
            run = Span(rest, len(tail), tail[rest:])
            if len(run.text.strip()) > self.long_run_chars and (cut := self.frontend.rules.last_clause_break(run)):
                piece = run.text[:cut]
                lead = len(piece) - len(piece.lstrip())
                found.append(Span(rest + lead, rest + len(piece.rstrip()), piece.strip()))
                rest += cut
        if self.speculative is not None:
            self._settle(found[0] if found else None, start, tail)
        if not found and rest == 0:
            self._speculate(start, tail, final)
            return
        self.rest = start + rest
        self.byte = ByteOffsets(self.text)
        with self._lock:
            for sentence in found:
                shifted = Span(sentence.start + start, sentence.end + start, sentence.text)
                pieces = self.frontend.split_sentence(shifted, first=self.sentences == 0)
                if self.speculative is not None:  # confirmed (``_settle``): already released
                    self.speculative = None
                else:
                    for piece in pieces:
                        self._pending.append((len(self.spans), piece))
                        self.spans.append(piece)
                self.sentences += 1

    def _settle(self, first: Span | None, start: int, tail: str) -> None:
        """Keep a speculative release that ``first`` (the first sentence released now) confirms, or that
        the text still ends with; take it back otherwise."""
        if first is not None:
            shifted = Span(first.start + start, first.end + start, first.text)
            kept = self.frontend.split_sentence(shifted, first=True) == self.speculative
        else:
            kept = self._candidate(start, tail) == self.speculative
        if not kept:
            self._refute()

    def _candidate(self, start: int, tail: str) -> list[Span] | None:
        """The pieces a first sentence ending the text would be spoken as (None: no such sentence)."""
        if self.sentences or not tail.rstrip().endswith((".", "!", "?")):
            return None
        found = self.frontend.rules.sentences(tail)
        if len(found) != 1:
            return None
        sentence = found[0]
        return self.frontend.split_sentence(Span(sentence.start + start, sentence.end + start, sentence.text),
                                            first=True)

    def _speculate(self, start: int, tail: str, final: bool) -> None:
        """Release the first sentence before its end is confirmed (see the module's docstring)."""
        if not self.speculate or final or self.speculative is not None or self.spans:
            return
        if (pieces := self._candidate(start, tail)) is None:
            return
        self.byte = ByteOffsets(self.text)
        with self._lock:
            self.speculative = pieces
            for piece in pieces:
                self._pending.append((len(self.spans), piece))
                self.spans.append(piece)

    def _refute(self) -> None:
        """Take a speculative release back: what follows shows the sentence did not end there."""
        with self._lock:
            self.speculative = None
            self.refuted = True
            self._epoch += 1
            self.spans.clear()
            self._pending.clear()
            self._ready.clear()
            self._index = 0

    # ---- utterances out -----------------------------------------------------------------------
    def plan(self) -> None:
        """Phonemize the released spans into jobs (blocking: run it off an event loop)."""
        with self._planning:
            while True:
                with self._lock:
                    if not self._pending:
                        break
                    sentence, span = self._pending.popleft()
                    epoch = self._epoch
                    self._phonemizing = True  # neither pending nor ready, yet not done
                try:
                    utterances = [u for u in self._fit(self.frontend.phonemize(span))
                                  if len(u.ids) > NOTHING_TO_SAY]
                except BaseException:
                    with self._lock:
                        self._phonemizing = False
                    raise
                with self._lock:
                    self._phonemizing = False  # in the same hold as the jobs' arrival: never seen done between
                    if epoch != self._epoch:
                        continue  # cleared meanwhile
                    for utterance in utterances:
                        self._ready.append(self._job(utterance, self._index, sentence, final=False))
                        self._index += 1
            self._mark_final()

    def _mark_final(self) -> None:
        with self._lock:
            if self.ended and not self._pending and self._ready and not self._ready[-1].final:
                self._ready[-1] = dataclasses.replace(self._ready[-1], final=True)

    def take(self) -> Job | None:
        """The next planned utterance, if any (none until the transport restarted after a refutation)."""
        with self._lock:
            return self._ready.popleft() if self._ready and not self.refuted else None

    @property
    def unplanned(self) -> bool:
        """Released spans not yet phonemized."""
        return bool(self._pending)

    @property
    def done(self) -> bool:
        """Ended, and every utterance taken (none being phonemized)."""
        with self._lock:
            return self.ended and not self._pending and not self._phonemizing and not self._ready

    def jobs(self) -> Iterator[Job]:
        """Every utterance planned so far (all of them once ``end`` was called)."""
        self.plan()
        while (job := self.take()) is not None:
            yield job

    def encode_ahead(self, unplayed_s: float) -> bool:
        """As a Session decides, and only when the next utterance is already planned (never wait for text)."""
        return bool(self._ready) and super().encode_ahead(unplayed_s)

    def finish(self) -> None:
        """A stream that said nothing is no error: the text may have been all whitespace, or cleared."""
