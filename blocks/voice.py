"""The in-process runtime: text in, audio chunks (and speech marks) out."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from blocks import registry
from blocks.backends.base import Tally
from blocks.components import text as textlib
from blocks.components.frontend import Utterance
from blocks.components.text import Span
from blocks.config import ScheduleConfig
from blocks.core import Block, Chunk, Request, StreamableBlock, Tensors
from blocks.errors import InputError
from blocks.marks import MARK_TYPES, ByteOffsets, frame_starts, utterance_marks
from blocks.spec import build_stack, tree

if TYPE_CHECKING:
    from blocks.addon import Addon

WHOLE = ScheduleConfig(first=1 << 30, growth=1.0, max=1 << 30)
"""A schedule of one chunk per utterance: whole-utterance synthesis."""


@dataclass
class AudioChunk:
    """A piece of the output stream."""

    samples: np.ndarray
    """float32 mono samples in [-1, 1]."""
    sample_rate: int
    offset: int
    """Index of the first sample within the whole stream."""
    utterance: int
    """Index of the utterance this chunk belongs to."""
    utterances: int
    """Number of utterances in the request."""
    last: bool = False
    """True on the final chunk of the stream."""
    marks: list[dict[str, Any]] = field(default_factory=list)
    """Speech marks that start in this utterance (sent with its first chunk)."""


@dataclass
class Synthesis:
    """A whole synthesized request."""

    audio: np.ndarray
    sample_rate: int
    marks: list[dict[str, Any]]
    padding_waste: float = 0.0
    """Padded elements over real elements in the network calls (fixed-shape profile)."""

    @property
    def seconds(self) -> float:
        return self.audio.shape[0] / self.sample_rate


def check_option(name: str, value: float, low: float, high: float) -> float:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or not low <= value <= high:
        raise InputError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def utterance_tensors(utterance: Utterance, request: Request) -> Tensors:
    """What an utterance starts with: its ids and length, and ``scales`` = (noise, length, noise_w)."""
    tensors = utterance.tensors()
    tensors["scales"] = np.asarray([request.noise_scale, request.length_scale, request.noise_w], dtype=np.float32)
    return tensors


class Voice:
    """An addon's built stack, ready to stream."""

    def __init__(self, addon: Addon) -> None:
        self.addon = addon
        config = addon.config
        frontend_cls = registry.lookup(config.frontend.type)
        if frontend_cls is None:
            raise InputError(
                f"frontend.type: unknown type {config.frontend.type!r}; valid: {registry.names()}"
            )
        self.frontend: Any = frontend_cls(addon, config.frontend)
        self.blocks: list[Block] = build_stack(addon.stack_nodes, addon)
        self.sample_rate = config.sample_rate
        self.seconds_per_frame = config.hop_length / config.sample_rate

    @property
    def name(self) -> str:
        return self.addon.name

    def describe(self) -> str:
        """The stack tree, networks and backend, for ``voxstack addons inspect``."""
        lines = [f"{self.name} {self.addon.config.version}: {self.sample_rate} Hz, hop {self.addon.config.hop_length}"]
        lines.append(f"frontend: {self.addon.config.frontend.type} ({self.addon.config.frontend.voice})")
        lines.append("stack:")
        lines += [tree(block, "  ") for block in self.blocks]
        lines.append(f"backend: {self.addon.config.backend.model_dump()}")
        lines.append("networks:")
        lines += [f"  {net.describe()}" for net in self.addon.loaded_networks()]
        return "\n".join(lines)

    def warm_up(self) -> None:
        """Run every network at every shape it will see (fixed profile: each size), then a short text."""
        for block in self.blocks:
            block.warm_up()
        for _ in self.stream("Warm up.", noise_scale=0.0, noise_w=0.0):
            pass

    def request(self, seed: int = 0, length_scale: float | None = None, noise_scale: float | None = None,
                noise_w: float | None = None, **extra: Any) -> Request:
        """Validated per-request options (addon defaults where not given)."""
        defaults = self.addon.config.defaults
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
            raise InputError(f"seed must be an integer in [0, 2**63), got {seed!r}")
        def pick(value: float | None, default: float) -> float:
            return default if value is None else value

        return Request(
            seed=seed,
            length_scale=check_option("length_scale", pick(length_scale, defaults.length_scale), 0.1, 10.0),
            noise_scale=check_option("noise_scale", pick(noise_scale, defaults.noise_scale), 0.0, 2.0),
            noise_w=check_option("noise_w", pick(noise_w, defaults.noise_w), 0.0, 2.0),
            **extra,
        )

    def stream(
        self,
        text: str,
        seed: int = 0,
        length_scale: float | None = None,
        noise_scale: float | None = None,
        noise_w: float | None = None,
        marks: tuple[str, ...] = ("sentence", "word"),
        schedule: ScheduleConfig | None = None,
        cancelled: Callable[[], bool] | None = None,
        tally: Tally | None = None,
    ) -> Iterator[AudioChunk]:
        """Yield audio chunks as soon as each exists; utterances are phonemized one at a time.

        ``tally``, if given, counts the elements the networks carried (padding waste in fixed mode).
        """
        base = self.request(seed, length_scale, noise_scale, noise_w, cancelled=cancelled, schedule=schedule,
                            tally=tally or Tally())
        if unknown := set(marks) - set(MARK_TYPES):
            raise InputError(f"unknown mark types {sorted(unknown)}; valid: {list(MARK_TYPES)}")
        clean = self.frontend.check(text)
        spans = self.frontend.split(clean)
        byte = ByteOffsets(text)
        offset = 0
        produced = False
        for index, utterance in self._utterances(spans):
            request = Request(**{**base.__dict__, "utterance_index": index})
            start, sent = offset, 0
            for chunk, tensors in self._utterance(utterance, request):
                found: list[dict[str, Any]] = []
                if marks and (starts := frame_starts(tensors)) is not None:
                    found = utterance_marks(utterance, starts, self.seconds_per_frame,
                                            start / self.sample_rate * 1000, byte, marks)[sent:]
                    sent += len(found)
                last = chunk.last and index == len(spans) - 1
                yield AudioChunk(chunk.data, self.sample_rate, offset, index, len(spans), last, found)
                offset += chunk.length
                produced = True
            if cancelled is not None and cancelled():
                return
        if not produced:
            raise InputError("text contains nothing that can be spoken")

    def _utterances(self, spans: list[Span]) -> Iterator[tuple[int, Utterance]]:
        """Phonemized utterances with something to say, each fitting the fixed profile's largest input."""
        limit = self.addon.max_sequence_length()
        for index, span in enumerate(spans):
            for utterance in self._fit(self.frontend.phonemize(span), limit):
                if len(utterance.ids) > 3:
                    yield index, utterance

    def _fit(self, utterance: Utterance, limit: int | None) -> Iterator[Utterance]:
        if limit is None or len(utterance.ids) <= limit:
            yield utterance
            return
        base = utterance.span.start
        pieces = [Span(base + c.start, base + c.end, c.text) for c in textlib.clauses(utterance.span.text)]
        if len(pieces) < 2:
            pieces = textlib.words(utterance.span)
        if len(pieces) < 2:
            raise InputError(
                f"the word {utterance.span.text!r} needs {len(utterance.ids)} phoneme ids; "
                f"the largest fixed-shape input holds {limit}"
            )
        half = len(pieces) // 2
        for group in (pieces[:half], pieces[half:]):
            start, end = group[0].start, group[-1].end
            span = Span(start, end, utterance.span.text[start - base : end - base])
            yield from self._fit(self.frontend.phonemize(span), limit)

    def _utterance(self, utterance: Utterance, request: Request) -> Iterator[tuple[Chunk, Tensors]]:
        tensors = utterance_tensors(utterance, request)
        stream: Iterator[Chunk] | None = None
        for block in self.blocks:
            assert isinstance(block, StreamableBlock)
            stream = block.stream(stream, tensors, request)
        assert stream is not None
        for chunk in stream:
            yield chunk, tensors

    def synthesize(self, text: str, **options: Any) -> Synthesis:
        """The whole request at once (the same chunks as ``stream``, joined)."""
        tally = options.pop("tally", None) or Tally()
        chunks = list(self.stream(text, tally=tally, **options))
        audio = np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.float32)
        return Synthesis(audio, self.sample_rate, [m for c in chunks for m in c.marks], tally.waste)
