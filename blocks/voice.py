"""The in-process runtime: text in, audio chunks (and speech marks) out, through one Session."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from blocks.backends.base import Tally
from blocks.config import ScheduleConfig
from blocks.core import Block, Chunk, Request, StreamableBlock, Tensors
from blocks.errors import AddonError
from blocks.frontends import Frontend, build_frontend
from blocks.options import SynthesisOptions, options_from
from blocks.scheduler import shared_scheduler
from blocks.session import AudioChunk, Session
from blocks.spec import build_stack, tree

if TYPE_CHECKING:
    from blocks.addon import Addon

__all__ = ["WHOLE", "AudioChunk", "Synthesis", "Voice"]

WHOLE = ScheduleConfig(first=1 << 30, growth=1.0, max=1 << 30)
"""A schedule of one chunk per utterance: whole-utterance synthesis."""


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


class Voice:
    """An addon's built stack, ready to stream."""

    def __init__(self, addon: Addon) -> None:
        self.addon = addon
        self.frontend: Frontend = build_frontend(addon)
        self.blocks: list[Block] = build_stack(addon.stack_nodes, addon.context())
        self.sample_rate = addon.config.sample_rate

    @property
    def name(self) -> str:
        return self.addon.name

    def describe(self) -> str:
        """The stack tree, networks and backend, for ``voxstack addons inspect``."""
        config = self.addon.config
        lines = [f"{self.name} {config.version}: {self.sample_rate} Hz, hop {config.hop_length}"]
        lines.append(f"frontend: {config.frontend.type} ({config.frontend.voice})")
        lines.append("stack:")
        lines += [tree(block, "  ") for block in self.blocks]
        lines.append(f"backend: {config.backend.model_dump()}")
        lines.append("networks:")
        lines += [f"  {net.describe()}" for net in self.addon.loaded_networks()]
        return "\n".join(lines)

    def warm_up(self) -> None:
        """Run every network at every shape it will see (fixed profile: each size), then a short text."""
        for block in self.blocks:
            block.warm_up()
        for _ in self.stream("Warm up.", noise_scale=0.0, noise_w=0.0):
            pass

    def session(self, text: str, options: SynthesisOptions, request_id: str | None = None,
                tally: Tally | None = None, text_type: str = "text") -> Session:
        """The request's session: its utterance plan, marks and tally (``text_type="ssml"``: SSML)."""
        return Session(self.addon, self.frontend, text, options, request_id, tally, text_type)

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
        request_id: str | None = None,
        text_type: str = "text",
    ) -> Iterator[AudioChunk]:
        """Yield audio chunks as soon as each exists; utterances are phonemized one at a time.

        ``tally``, if given, counts the elements the networks carried (padding waste in fixed mode).
        ``text_type="ssml"`` reads ``text`` as SSML (the supported subset: README, "SSML").
        """
        options = options_from(seed=seed, length_scale=length_scale, noise_scale=noise_scale, noise_w=noise_w,
                               marks=tuple(marks), schedule=schedule)
        session = self.session(text, options, request_id, tally, text_type)
        scheduler = shared_scheduler()
        for job in session.jobs():
            tensors = job.tensors()
            track = session.track(job, tensors)
            chunks = self.run(tensors, job.request(cancelled, session.tally, session.clock))
            # each step waits its turn: earliest deadline first among the process's streams
            step = functools.partial(next, chunks, None)
            while (chunk := scheduler.run(session.clock.deadline(), step)) is not None:
                yield track.piece(chunk)
            if cancelled is not None and cancelled():
                return
        session.finish()

    def run(self, tensors: Tensors, request: Request) -> Iterator[Chunk]:
        """One utterance through the whole stack; the blocks add what they compute to ``tensors``."""
        stream: Iterator[Chunk] | None = None
        for block in self.blocks:
            if not isinstance(block, StreamableBlock):
                raise AddonError(f"addon {self.name!r}: the stack holds {type(block).__name__}, not a StreamableBlock")
            stream = block.stream(stream, tensors, request)
        if stream is None:
            raise AddonError(f"addon {self.name!r}: the stack is empty")
        yield from stream

    def synthesize(self, text: str, **options: Any) -> Synthesis:
        """The whole request at once (the same chunks as ``stream``, joined)."""
        tally = options.pop("tally", None) or Tally()
        chunks = list(self.stream(text, tally=tally, **options))
        audio = np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.float32)
        return Synthesis(audio, self.sample_rate, [m for c in chunks for m in c.marks], tally.waste)
