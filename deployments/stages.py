"""Stage deployments: thin shells around an addon's blocks (nothing model-specific here)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve.handle import DeploymentHandle

from blocks import registry
from blocks.components.text import Span
from blocks.core import Chunk, Request, SequenceBlock, StreamableBlock
from blocks.marks import TIMING_KEYS
from blocks.voice import check_option, utterance_tensors
from deployments.bridge import PullFromAsync, Stopped, drive
from deployments.stack import PathPart, build_block, load_addon_config


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

    async def tensors(self) -> dict[str, np.ndarray] | None:
        """The encoder's tensors (None when the utterance holds nothing to speak)."""
        encoded = await self.ref
        return None if encoded is None else encoded["tensors"]


def request_from(options: dict[str, Any], stop: threading.Event | None = None) -> Request:
    """The blocks' Request from plain, already validated options."""
    return Request(
        seed=int(options["seed"]),
        length_scale=check_option("length_scale", options["length_scale"], 0.1, 10.0),
        noise_scale=check_option("noise_scale", options["noise_scale"], 0.0, 2.0),
        noise_w=check_option("noise_w", options["noise_w"], 0.0, 2.0),
        utterance_index=int(options.get("utterance_index", 0)),
        cancelled=stop.is_set if stop is not None else None,
    )


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
        config = self.addon.config
        frontend_cls = registry.lookup(config.frontend.type)
        assert frontend_cls is not None, f"unknown frontend type {config.frontend.type!r}"
        self.frontend: Any = frontend_cls(self.addon, config.frontend)
        if block_type is None:
            self.block = build_block(self.addon, path)
        else:
            cls = registry.lookup(block_type)
            if cls is None or not issubclass(cls, SequenceBlock):
                raise ValueError(f"{block_type!r} is not a registered SequenceBlock")
            self.block = cls(self.addon)
        assert isinstance(self.block, SequenceBlock)
        self.block.warm_up()
        self._encode_sync(Span(0, 9, "Warm up."), {"seed": 0, "length_scale": 1.0, "noise_scale": 0.0, "noise_w": 0.0})

    def _encode_sync(self, span: Span, options: dict[str, Any]) -> dict[str, Any] | None:
        utterance = self.frontend.phonemize(span)
        if len(utterance.ids) <= 3:  # BOS, PAD, EOS only: nothing to say
            return None
        request = request_from(options)
        tensors = utterance_tensors(utterance, request)
        tensors.update(self.block.run(tensors, request))
        return {"utterance": utterance, "tensors": tensors}

    async def encode(self, span: Span, options: dict[str, Any]) -> dict[str, Any] | None:
        """Tensors of one utterance (None if it holds nothing to speak)."""
        self.counters["streams"] += 1
        try:
            result = await asyncio.to_thread(self._encode_sync, span, options)
        except Exception:
            self.counters["failed"] += 1
            raise
        self.counters["completed"] += 1
        return result


def with_timing(chunks: Iterator[Chunk], board: dict[str, Any]) -> Iterator[Chunk]:
    """Upstream chunks, merging the timing tensors earlier stages published into this stage's board."""
    for chunk in chunks:
        board.update(chunk.meta.pop("timing", {}))
        yield chunk


@serve.deployment(ray_actor_options={"num_cpus": 0})
class StreamStage(StageBase):
    """One or more top-level StreamableBlocks chained, pulling chunks from the upstream stage."""

    def __init__(self, addon: str, paths: tuple[tuple[PathPart, ...], ...],
                 upstream: DeploymentHandle | None = None, overrides: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.addon = load_addon_config(addon, overrides=overrides)
        self.blocks = [build_block(self.addon, path) for path in paths]
        for block in self.blocks:
            assert isinstance(block, StreamableBlock)
            block.warm_up()
        self.upstream = upstream.options(stream=True) if upstream is not None else None
        self.config = StageConfig()

    def reconfigure(self, config: dict[str, Any]) -> None:
        self.config = StageConfig.model_validate(config or {})

    async def stream(self, tensors: dict[str, np.ndarray] | Pending,
                     options: dict[str, Any]) -> AsyncIterator[Chunk]:
        """This stage's chunks for one utterance; cancelling it cancels the upstream call."""
        stop = threading.Event()
        request = request_from(options, stop)
        source = None
        if self.upstream is not None:
            source = self.upstream.stream.remote(tensors, options)
        self.counters["streams"] += 1
        self.counters["active"] += 1
        sent = 0
        try:
            if isinstance(tensors, Pending):
                resolved = await tensors.tensors()
                if resolved is None:  # the utterance holds nothing to speak
                    self.counters["completed"] += 1
                    return
                tensors = resolved
            upstream = PullFromAsync(source, asyncio.get_running_loop(), stop) if source is not None else None
            local = dict(tensors)
            chunks: Any = with_timing(upstream, local) if upstream is not None else None
            for block in self.blocks:
                assert isinstance(block, StreamableBlock)
                chunks = block.stream(chunks, local, request)
            async for chunk in drive(chunks, stop, self.config.handoff_s):
                timing = {k: local[k] for k in TIMING_KEYS if k in local and k not in tensors}
                if timing:  # e.g. an attention decoder's token starts: the ingress times marks with them
                    chunk.meta["timing"] = timing
                limit, seed = self.config.fail_after_chunks, self.config.fail_seed
                if limit is not None and sent >= limit and seed in (None, request.seed):
                    raise RuntimeError(f"fault drill: stage failed after {sent} chunks")
                yield chunk
                sent += 1
            self.counters["completed"] += 1
        except (asyncio.CancelledError, GeneratorExit, Stopped):
            self.counters["cancelled"] += 1
            raise
        except Exception:
            self.counters["failed"] += 1
            raise
        finally:
            stop.set()
            self.counters["active"] -= 1
            if source is not None:
                source.cancel()
