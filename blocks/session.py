"""One request's synthesis, whoever runs the blocks: text to utterances to chunks with speech marks.

The in-process :class:`~blocks.voice.Voice` and the Serve stages both drive a :class:`Session`; only
the transport differs. The session decides everything else once: how the text becomes utterances
(one per sentence, split only where the model cannot take it whole), the "nothing to say" rule, the
seeds, the marks, the tally of padded elements, and when to encode the next utterance.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from blocks import controls, ssml, ssml_plan
from blocks.backends.base import Tally
from blocks.components import text as textlib
from blocks.core import Chunk, Request, never
from blocks.errors import InputError
from blocks.frontends import Frontend
from blocks.marks import ByteOffsets, Mark, SsmlMark, frame_starts, utterance_marks
from blocks.options import SynthesisOptions
from blocks.scheduler import Clock, room_to_grow, shared_scheduler
from blocks.ssml_document import Document, SsmlError
from blocks.utterance import Utterance

if TYPE_CHECKING:
    from blocks.addon import Addon
    from blocks.engine import Encoded

ENCODE_AHEAD_AFTER_S = 0.5
"""The next utterance is encoded while this one streams once this much audio is unplayed: earlier, its
work would compete with the first chunks, whose deadlines (the audio before them) are the tightest."""

NOTHING_TO_SAY = 3
"""An utterance of this many ids or fewer (BOS, PAD, EOS) holds nothing to speak."""


@dataclass
class AudioChunk:
    """A piece of the output stream."""

    samples: np.ndarray
    """float32 mono samples in [-1, 1]."""
    sample_rate: int
    offset: int
    """Index of the first sample within the whole stream."""
    utterance: int
    """Index of the sentence (utterance span) this chunk belongs to."""
    utterances: int
    """Number of sentences in the request."""
    last: bool = False
    """True on the final chunk of the stream."""
    marks: list[Mark] = field(default_factory=list)
    """Speech marks that start in this chunk's stretch of the utterance."""


@dataclass(frozen=True)
class Job:
    """One utterance to synthesize: what crosses to the encoder and the stream stages."""

    utterance: Utterance
    index: int
    """Running index of synthesized utterances: seeds this utterance's random draws."""
    sentence: int
    """Index of the span (sentence) it comes from."""
    final: bool
    """True for the request's last utterance."""
    options: SynthesisOptions
    """Resolved options (no ``None`` scale)."""
    request_id: str
    voice: str = ""
    """The addon's voice that speaks it."""
    controls: dict[str, np.ndarray] | None = None
    """Per-id control tensors (``blocks.controls``); None: neutral."""
    marks: tuple[SsmlMark, ...] = ()
    """SSML ``<mark>`` marks within the utterance."""

    def request(self, cancelled: Callable[[], bool] = never, clock: Clock | None = None) -> Request:
        """The blocks' per-utterance context; with the stream's ``clock``, chunks grow only when there is room."""
        options = self.options
        room = room_to_grow(clock, shared_scheduler()) if clock is not None else None
        return Request(seed=options.seed, length_scale=options.scale("length_scale"),
                       noise_scale=options.scale("noise_scale"), noise_w=options.scale("noise_w"),
                       utterance_index=self.index, cancelled=cancelled, schedule=options.schedule,
                       request_id=self.request_id, voice=self.voice, room=room)

    def tensors(self) -> dict[str, np.ndarray]:
        """What the utterance starts with: its ids and length, and ``scales`` = (noise, length, noise_w)."""
        tensors = self.utterance.tensors()
        options = self.options
        tensors["scales"] = np.asarray([options.noise_scale, options.length_scale, options.noise_w],
                                       dtype=np.float32)
        tensors.update(self.controls if self.controls is not None else controls.neutral(len(self.utterance.ids)))
        return tensors


class Session:
    """One request: validated options, the utterance plan, and the pieces of audio with their marks."""

    def __init__(self, addon: Addon, frontend: Frontend, text: str, options: SynthesisOptions,
                 request_id: str | None = None, tally: Tally | None = None, text_type: str = "text") -> None:
        self.text = text
        self.options = options.resolved(addon.config.defaults)
        self.voice = addon.config.voice(options.voice)
        """The voice that speaks the request (an unknown name is refused here, naming the voices)."""
        self.frontend = frontend
        self.limit = addon.max_sequence_length()
        self.sample_rate = addon.config.sample_rate
        self.seconds_per_frame = addon.config.hop_length / addon.config.sample_rate
        self.request_id = request_id or uuid.uuid4().hex[:12]
        self._plan(addon, text, text_type)
        self._planned = 0
        """Spoken-text offset up to which breaks and marks went with an utterance."""
        self.tally = tally if tally is not None else Tally()
        self.samples = 0
        """Samples produced so far."""
        self.clock = Clock()
        """The stream's playback clock: its deadlines order the compute of every stream in a process."""

    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate

    def _plan(self, addon: Addon, text: str, text_type: str) -> None:
        """The request's sentences (``spans``), byte offsets, and SSML ``document`` (None for plain text)."""
        frontend = self.frontend
        self.document = self._document(addon, text, text_type, addon.config.language(self.voice))
        if self.document is None:
            self.spans = frontend.split(frontend.check(text))
            self.byte = ByteOffsets(text)
        else:
            self.spans = ssml_plan.spans(self.document, frontend, frontend.check(self.document.text))
            self.byte = self.document.offsets()

    @staticmethod
    def _document(addon: Addon, text: str, text_type: str, language: str) -> Document | None:
        """The SSML document of ``text`` (None for plain text); SSML the addon cannot honour is refused."""
        if text_type == "text":
            return None
        if text_type != "ssml":
            raise InputError(f"text_type must be 'text' or 'ssml', got {text_type!r}")
        document = ssml.parse(text, language)
        honoured = controls.honoured(addon.stack_nodes)
        if missing := document.used() - honoured:
            raise SsmlError(f"addon {addon.name!r} cannot honour SSML {', '.join(sorted(missing))} "
                            f"(it honours: {', '.join(sorted(honoured)) or 'none'})")
        return document

    def jobs(self) -> Iterator[Job]:
        """Utterances with something to say, phonemized one at a time, each within the model's limit."""
        index = 0
        pending: Utterance | None = None
        pending_sentence = 0
        for sentence, span in enumerate(self.spans):
            for utterance in self._fit(self.frontend.phonemize(span)):
                if len(utterance.ids) <= NOTHING_TO_SAY:
                    continue
                if pending is not None:
                    yield self._job(pending, index, pending_sentence, final=False, until=utterance.span.start)
                    index += 1
                pending, pending_sentence = utterance, sentence
        if pending is not None:
            yield self._job(pending, index, pending_sentence, final=True)

    def _job(self, utterance: Utterance, index: int, sentence: int, final: bool, until: int | None = None) -> Job:
        if self.document is None:
            return Job(utterance, index, sentence, final, self.options, self.request_id, self.voice.name)
        utterance, tensors, marks = ssml_plan.shape(self.document, self.frontend, utterance, self._planned,
                                                    None if final else until, self.seconds_per_frame)
        self._planned = until if until is not None else self._planned
        return Job(utterance, index, sentence, final, self.options, self.request_id, self.voice.name, tensors, marks)

    def _fit(self, utterance: Utterance) -> Iterator[Utterance]:
        """The utterance whole if the model takes it, else its halves (at a clause, or a word), recursively."""
        if self.limit is None or len(utterance.ids) <= self.limit:
            yield utterance
            return
        pieces = textlib.halves(utterance.span)
        if len(pieces) < 2:
            raise InputError(f"the word {utterance.span.text!r} needs {len(utterance.ids)} phoneme ids; "
                             f"the model takes at most {self.limit}")
        for piece in pieces:
            yield from self._fit(self.frontend.phonemize(piece))

    def track(self, job: Job, encoded: Encoded) -> Track:
        """Pieces of ``job``'s audio with their marks, timed by its encoder's tensors (``encoded``)."""
        self.tally.merge(encoded.tally)
        return Track(self, job, dict(encoded.tensors), self.samples)

    def encode_ahead(self, unplayed_s: float) -> bool:
        """Whether to encode the next utterance now, with this much audio produced but not yet played."""
        return unplayed_s >= ENCODE_AHEAD_AFTER_S

    def finish(self) -> None:
        """End of the request: an error if nothing at all was spoken."""
        if self.samples == 0:
            raise InputError("text contains nothing that can be spoken")


class Track:
    """One utterance's chunks turned into the stream's audio pieces, marks attached as their timing is known."""

    def __init__(self, session: Session, job: Job, board: dict[str, np.ndarray], start: int) -> None:
        self.session = session
        self.job = job
        self.board = board
        self.start = start
        self.sent = 0

    def piece(self, chunk: Chunk) -> AudioChunk:
        """The next piece of audio, its marks timed by what the chunk's metadata adds to the board."""
        session = self.session
        self.board.update(chunk.meta.timing)
        if chunk.meta.tally is not None:
            session.tally.merge(chunk.meta.tally)
        marks: list[Mark] = []
        types = session.options.marks
        if types and (starts := frame_starts(self.board)) is not None:
            marks = utterance_marks(self.job.utterance, starts, session.seconds_per_frame,
                                    self.start / session.sample_rate * 1000, session.byte, types,
                                    self.job.marks)[self.sent:]
            self.sent += len(marks)
        piece = AudioChunk(chunk.data, session.sample_rate, session.samples, self.job.sentence,
                           len(session.spans), chunk.last and self.job.final, marks)
        session.samples += chunk.length
        session.clock.advance(chunk.length / session.sample_rate)
        return piece


def probe_jobs(addon: Addon, frontend: Frontend) -> list[Job]:
    """A short utterance to warm an engine up with (noise off)."""
    options = SynthesisOptions(noise_scale=0.0, noise_w=0.0)
    return list(Session(addon, frontend, "Warm up.", options).jobs())
