"""Upsampler: repeat each encoding for its duration in frames, chunk by chunk, with seeded noise."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from blocks import controls
from blocks.components.windowed import chunk_sizes
from blocks.config import AddonConfig
from blocks.contracts import Contract, TensorSpec
from blocks.core import Chunk, ChunkMeta, Request, StreamableBlock, Tensors

_NOISE_SALT = 0x5EED


class UpsamplerOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    encoding: str = "m_p"
    """Encoder output to repeat, ``[1, channels, tokens]``."""
    log_scale: str | None = "logs_p"
    """Log standard deviation of the prior (same shape); None for no noise."""
    durations: str = "durations"
    """Frames per token, ``[1, 1, tokens]`` (already length-scaled by the encoder)."""
    extra: list[str] = []
    """More encodings ``[1, channels, tokens]`` repeated the same way (no noise), stacked after it."""


class Upsampler(StreamableBlock):
    """Yields ``encoding + noise * exp(log_scale) * noise_scale`` frame by frame, in chunks.

    Each ``extra`` encoding, repeated alike, is concatenated after it along the channels. Each id's
    duration is scaled by its ``duration_scales`` entry (SSML ``rate``), as ``blocks.controls`` rules.

    The noise is drawn frame-major from one generator per utterance, so any chunking of
    the same utterance gives the same frames.
    """

    Options = UpsamplerOptions

    @classmethod
    def contract(cls, options: Any, config: AddonConfig, path: str) -> Contract:
        names = [options.encoding, options.durations, *options.extra]
        if options.log_scale:
            names.append(options.log_scale)
        return Contract((*(TensorSpec(name, rank=3) for name in names),
                         TensorSpec(controls.DURATION_SCALES, "float32", 1)))

    @classmethod
    def controls(cls, options: Any) -> frozenset[str]:
        return frozenset({"rate"})

    def stream(
        self, upstream: Iterator[Chunk] | None, inputs: Tensors, request: Request
    ) -> Iterator[Chunk]:
        opts = self.options
        encoding = inputs[opts.encoding]
        extra = [inputs[name] for name in opts.extra]
        durations = controls.durations(inputs, opts.durations)
        repeats = np.maximum(durations, 0).astype(np.int64)
        index = np.repeat(np.arange(repeats.shape[0]), repeats)
        total = int(index.shape[0])
        log_scale = inputs[opts.log_scale] if opts.log_scale and request.noise_scale > 0 else None
        rng = request.rng(_NOISE_SALT)
        schedule = self.context.schedule if self.context else None
        sizes = chunk_sizes(schedule) if schedule else iter(lambda: 256, None)
        position = 0
        while True:
            stop = min(total, position + next(sizes))
            picked = index[position:stop]
            frames = encoding[..., picked]
            if log_scale is not None:
                noise = rng.standard_normal((stop - position, frames.shape[-2]), dtype=np.float32).T
                frames = frames + noise * np.exp(log_scale[..., picked]) * np.float32(request.noise_scale)
            if extra:
                frames = np.concatenate([frames, *(e[..., picked] for e in extra)], axis=-2)
            yield Chunk(frames.astype(np.float32, copy=False), position, stop >= total, ChunkMeta(frames=total))
            if stop >= total:
                return
            position = stop
