"""The in-process runtime: text in, audio chunks (and speech marks) out. A transport over the one engine:
the Session decides what is said, the Engine runs the blocks, this module only moves chunks."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from blocks.addon import Addon
from blocks.backends.base import Tally
from blocks.config import ScheduleConfig
from blocks.core import never
from blocks.engine import Engine
from blocks.frontends import Frontend, build_frontend
from blocks.marks import Mark
from blocks.options import SynthesisOptions, options_from
from blocks.scheduler import shared_scheduler
from blocks.session import AudioChunk, Job, Session, probe_jobs
from blocks.spec import tree

__all__ = ["WHOLE", "AudioChunk", "SynthesisResult", "Voice", "load_addon"]

WHOLE = ScheduleConfig(first=1 << 30, growth=1.0, max=1 << 30)
"""A schedule of one chunk per utterance: whole-utterance synthesis."""


@dataclass
class SynthesisResult:
    """A whole synthesized request."""

    audio: np.ndarray
    sample_rate: int
    marks: list[Mark]
    padding_waste: float = 0.0
    """Padded elements over real elements in the network calls (fixed-shape profile)."""

    @property
    def seconds(self) -> float:
        return self.audio.shape[0] / self.sample_rate


class Voice:
    """An addon's engine and frontend, ready to stream; ``Voice.load`` builds and warms one up."""

    def __init__(self, addon: Addon) -> None:
        self.addon = addon
        self.frontend: Frontend = build_frontend(addon.frontend_context(), addon.config.frontend)
        self.engine = Engine(addon)
        self.sample_rate = addon.config.sample_rate

    @classmethod
    def load(cls, name: str, root: Path | str | None = None, overrides: dict[str, Any] | None = None,
             warm_up: bool = True) -> Voice:
        """Load addon ``name`` and build its stack; ``warm_up`` runs a short utterance through it first (so
        the first request pays no set-up, and a block that breaks its contract fails here).

        ``overrides`` are merged into ``addon.json`` first, e.g. ``{"backend": {"profile": "fixed"}}``.
        """
        voice = cls(Addon.open(name, Path(root) if root else None, overrides))
        if warm_up:
            voice.warm_up()
        return voice

    @property
    def name(self) -> str:
        return self.addon.name

    @property
    def voices(self) -> list[str]:
        """The names of the addon's voices (``stream(..., voice=NAME)``); the first is the default."""
        return [voice.name for voice in self.addon.config.voices]

    def describe(self) -> str:
        """The stack tree, networks and backend, for ``voxstack addons inspect``."""
        config = self.addon.config
        lines = [f"{self.name} {config.version}: {self.sample_rate} Hz, hop {config.hop_length}",
                 f"frontend: {config.frontend.type} ({config.frontend.voice})", "stack:",
                 *(tree(node, "  ") for node in self.addon.stack_nodes),
                 f"backend: {config.backend.model_dump()}", "networks:",
                 *(f"  {net.describe()}" for net in self.addon.loaded_networks())]
        return "\n".join(lines)

    def warm_up(self) -> None:
        """Every network at every shape it will see (fixed profile: each size), then a short text."""
        self.engine.warm_up(probe_jobs(self.addon, self.frontend))

    def session(self, text: str, options: SynthesisOptions, request_id: str | None = None,
                tally: Tally | None = None, text_type: str = "text") -> Session:
        """The request's session: its utterance plan, marks and tally (``text_type="ssml"``: SSML)."""
        return Session(self.addon, self.frontend, text, options, request_id, tally, text_type)

    def stream(
        self,
        text: str,
        voice: str | None = None,
        seed: int = 0,
        length_scale: float | None = None,
        noise_scale: float | None = None,
        noise_w: float | None = None,
        marks: tuple[str, ...] = ("sentence", "word"),
        schedule: ScheduleConfig | None = None,
        cancelled: Callable[[], bool] = never,
        tally: Tally | None = None,
        request_id: str | None = None,
        text_type: str = "text",
    ) -> Iterator[AudioChunk]:
        """Yield audio chunks as soon as each exists; utterances are phonemized one at a time.

        ``tally``, if given, counts the elements the networks carried (padding waste in fixed mode).
        ``text_type="ssml"`` reads ``text`` as SSML (the supported subset: README, "SSML"). ``voice``: one of
        ``voices`` (default: the first); an unknown one is an InputError naming them.
        """
        options = options_from(voice=voice, seed=seed, length_scale=length_scale, noise_scale=noise_scale,
                               noise_w=noise_w, marks=tuple(marks), schedule=schedule)
        session = self.session(text, options, request_id, tally, text_type)
        for job in session.jobs():
            yield from self.utterance(session, job, cancelled)
            if cancelled():
                return
        session.finish()

    def utterance(self, session: Session, job: Job, cancelled: Callable[[], bool] = never) -> Iterator[AudioChunk]:
        """One of ``session``'s utterances through the engine, each compute step waiting its turn at the
        process's scheduler (earliest deadline first among the streams it computes)."""
        request = job.request(cancelled, session.clock)
        encoded = self.engine.encode(job.tensors(), request)
        track = session.track(job, encoded)
        step = functools.partial(next, self.engine.stream(encoded.tensors, request), None)
        scheduler = shared_scheduler()
        while (chunk := scheduler.run(session.clock.deadline(), step, session.clock.urgent_at())) is not None:
            yield track.piece(chunk)

    def synthesize(self, text: str, **options: Any) -> SynthesisResult:
        """The whole request at once (the same chunks as ``stream``, joined)."""
        tally = options.pop("tally", None) or Tally()
        chunks = list(self.stream(text, tally=tally, **options))
        audio = np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.float32)
        return SynthesisResult(audio, self.sample_rate, [m for c in chunks for m in c.marks], tally.waste)

    def close(self) -> None:
        """Stop every thread the voice's blocks and networks started."""
        self.engine.close()


def load_addon(name: str, root: Path | str | None = None, overrides: dict[str, Any] | None = None,
               warm_up: bool = True) -> Voice:
    """``Voice.load``: addon ``name`` built (and warmed up) as a Voice."""
    return Voice.load(name, root, overrides, warm_up)
