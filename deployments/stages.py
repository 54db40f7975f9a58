"""Stage deployments: thin shells around an addon's blocks (nothing model-specific here)."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve.handle import DeploymentHandle

from blocks import registry
from blocks.admission import Admission
from blocks.backends.base import Tally
from blocks.core import Chunk, SequenceBlock, StreamableBlock
from blocks.errors import AddonError
from blocks.frontends import build_frontend
from blocks.marks import TIMING_KEYS
from blocks.options import SynthesisOptions
from blocks.scheduler import Clock
from blocks.session import Job, Session, add_tally
from deployments.autoscaling import METRIC as LOAD_METRIC
from deployments.bridge import PullFromAsync, Stopped, drive, run_step
from deployments.stack import PathPart, build_block, load_addon_config, stage_reads

log = logging.getLogger("ray.serve")
ADMISSION_UNBOUNDED = 1 << 20
"""A stage refuses nothing (the ingress admits): its load counts against the measured capacity alone."""


class StageConfig(BaseModel):
    """A stream stage's ``user_config``."""

    model_config = ConfigDict(extra="forbid")
    fail_after_chunks: int | None = Field(default=None, ge=0)
    """Fault drill: streams fail after this many chunks (None: off)."""
    fail_seed: int | None = None
    """Limit the drill to requests with this seed (None: every stream)."""
    handoff_s: float = Field(default=0.01, ge=0.0, le=1.0)
    """Pause after a stream's first chunk before computing the next, so that the first chunk's trip
    through the later stages and the proxy is not slowed by the next chunk's compute (0: none)."""


@dataclass(frozen=True)
class Pending:
    """An utterance's encoder output that may still be computing, passed by reference.

    Serve resolves only top-level call arguments before routing a call; one wrapped here
    travels as a Ray object reference, so a stream stage is reached while the encoder works.
    """

    ref: ray.ObjectRef

    async def tensors(self) -> dict[str, np.ndarray]:
        """The encoder's tensors."""
        encoded = await self.ref
        return encoded["tensors"]


class StageBase:
    """What every stage answers besides its work: readiness, placement, counters."""

    def __init__(self) -> None:
        self.counters = {"streams": 0, "completed": 0, "cancelled": 0, "failed": 0, "active": 0}

    async def ready(self) -> bool:
        """True once constructed: every stage warms up before its replica goes live."""
        return True

    async def stats(self) -> dict[str, Any]:
        return {**self.counters, "node_id": ray.get_runtime_context().get_node_id()}


@serve.deployment(ray_actor_options={"num_cpus": 0})
class EncoderStage(StageBase):
    """Phonemize one utterance and run the sequence block (the encoder networks) on it.

    ``block_type`` names a registered SequenceBlock used instead of the stack's own
    (an A/B variant); otherwise the stack's sequence block at ``path`` is built.
    """

    def __init__(self, addon: str, path: tuple[PathPart, ...], block_type: str | None = None,
                 overrides: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.addon = load_addon_config(addon, overrides=overrides)
        if block_type is None:
            block = build_block(self.addon, path)
        else:
            cls = registry.lookup(block_type)
            if cls is None or not issubclass(cls, SequenceBlock):
                raise AddonError(f"{block_type!r} is not a registered SequenceBlock; "
                                 f"valid: {registry.names(SequenceBlock)}")
            block = cls(self.addon.context())
        if not isinstance(block, SequenceBlock):
            raise AddonError(f"addon {addon!r}: the block at {path} is not a SequenceBlock")
        self.block = block
        self.block.warm_up()
        warm = Session(self.addon, build_frontend(self.addon), "Warm up.",
                       SynthesisOptions(noise_scale=0.0, noise_w=0.0))
        for job in warm.jobs():
            self._encode_sync(job)

    def _encode_sync(self, job: Job) -> dict[str, Any]:
        tally = Tally()
        tensors = job.tensors()
        tensors.update(self.block.run(tensors, job.request(tally=tally)))
        return {"tensors": tensors, "tally": (tally.real, tally.padded, tally.calls)}

    async def encode(self, job: Job, clock: Clock | None = None) -> dict[str, Any]:
        """The utterance's tensors after the sequence block, and the elements its networks carried.

        ``clock`` is the stream's playback clock: encodings run earliest deadline first.
        """
        self.counters["streams"] += 1
        try:
            deadline = clock.deadline() if clock is not None else time.time()
            result = await run_step(deadline, functools.partial(self._encode_sync, job))
        except Exception as error:
            self.counters["failed"] += 1
            log.warning("request %s: encoding failed: %s: %s", job.request_id, type(error).__name__, error)
            raise
        self.counters["completed"] += 1
        return result


def with_timing(chunks: Iterator[Chunk], board: dict[str, Any], tally: Tally) -> Iterator[Chunk]:
    """Upstream chunks, merging what earlier stages published (timing tensors, tally) into this stage's."""
    for chunk in chunks:
        board.update(chunk.meta.pop("timing", {}))
        if counts := chunk.meta.pop("tally", None):
            tally.merge(*counts)
        yield chunk


@serve.deployment(ray_actor_options={"num_cpus": 0})
class StreamStage(StageBase):
    """One or more top-level StreamableBlocks chained, pulling chunks from the upstream stage."""

    def __init__(self, addon: str, paths: tuple[tuple[PathPart, ...], ...],
                 upstream: DeploymentHandle | None = None, overrides: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.addon = load_addon_config(addon, overrides=overrides)
        self.blocks: list[StreamableBlock] = []
        for path in paths:
            block = build_block(self.addon, path)
            if not isinstance(block, StreamableBlock):
                raise AddonError(f"addon {addon!r}: the block at {path} is not a StreamableBlock")
            block.warm_up()
            self.blocks.append(block)
        self.reads = stage_reads(self.addon, paths)
        """The only utterance tensors this stage's blocks see."""
        self.upstream = upstream.options(stream=True) if upstream is not None else None
        self.config = StageConfig()
        self.admission = Admission()
        """Counts the utterances this replica streams and measures how many it holds without a stall."""

    def record_autoscaling_stats(self) -> dict[str, float]:
        """Serve's custom autoscaling metric ``stream_load``: utterances streaming here over those the
        measured capacity holds (admission's own rule; absent until measured). See deployments/autoscaling.py."""
        load = self.admission.load(cap=ADMISSION_UNBOUNDED)
        return {} if load is None else {LOAD_METRIC: load}

    def _seconds(self, chunk: Chunk) -> float:
        """Audio seconds a chunk stands for: its samples, or its frames times the hop."""
        config = self.addon.config
        frames = chunk.length if chunk.data.ndim == 1 else chunk.length * config.hop_length
        return frames / config.sample_rate

    def reconfigure(self, config: dict[str, Any]) -> None:
        self.config = StageConfig.model_validate(config or {})

    async def stream(self, tensors: dict[str, np.ndarray] | Pending, job: Job,
                     clock: Clock | None = None) -> AsyncIterator[Chunk]:
        """This stage's chunks for one utterance; cancelling it cancels the upstream call.

        ``clock`` is the stream's playback clock as the ingress knew it when it called: the stage
        advances its copy by the audio it yields, so its compute steps run earliest deadline first.
        """
        clock = clock if clock is not None else Clock()
        stop = threading.Event()
        tally = Tally()
        request = job.request(stop.is_set, tally, clock)
        source = None
        if self.upstream is not None:
            source = self.upstream.stream.remote(tensors, job, clock)
        self.counters["streams"] += 1
        self.counters["active"] += 1
        ticket = self.admission.open()
        produced_s = 0.0
        completed = False
        sent = 0
        reported = Tally()
        try:
            if isinstance(tensors, Pending):
                tensors = await tensors.tensors()
            upstream = PullFromAsync(source, asyncio.get_running_loop(), stop) if source is not None else None
            local = {name: tensors[name] for name in self.reads}
            chunks: Any = with_timing(upstream, local, tally) if upstream is not None else None
            for block in self.blocks:
                chunks = block.stream(chunks, local, request)
            async for chunk in drive(chunks, stop, self.config.handoff_s, clock.deadline):
                if chunk.data.ndim == 1:  # audio samples: the client's buffer grows by their length
                    clock.advance(chunk.length / self.addon.config.sample_rate)
                timing = {k: local[k] for k in TIMING_KEYS if k in local and k not in tensors}
                if timing:  # e.g. an attention decoder's token starts: the ingress times marks with them
                    chunk.meta["timing"] = timing
                add_tally(chunk.meta, tally.since(reported))
                limit, seed = self.config.fail_after_chunks, self.config.fail_seed
                if limit is not None and sent >= limit and seed in (None, request.seed):
                    raise RuntimeError(f"fault drill: stage failed after {sent} chunks")
                produced_s += self._seconds(chunk)
                yield chunk
                sent += 1
            self.counters["completed"] += 1
            completed = True
        except (asyncio.CancelledError, GeneratorExit, Stopped):
            self.counters["cancelled"] += 1
            raise
        except Exception as error:
            self.counters["failed"] += 1
            log.warning("request %s: stream stage failed: %s: %s", job.request_id, type(error).__name__, error)
            raise
        finally:
            stop.set()
            self.counters["active"] -= 1
            self.admission.release(ticket, produced_s, completed)
            if source is not None:
                source.cancel()
