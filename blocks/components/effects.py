"""DSP effects on audio chunks. Each only extends StreamableBlock."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from blocks.core import Chunk, Request, StreamableBlock, Tensors, needs_context
from blocks.errors import AddonError
from blocks.registry import register


class GainOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    db: float = Field(default=0.0, ge=-60.0, le=24.0)
    """Gain in decibels."""
    clip: bool = True
    """Clip to [-1, 1] after the gain."""


@register("Gain")
class Gain(StreamableBlock):
    """Multiply samples by a fixed gain."""

    Options = GainOptions

    def stream(
        self, upstream: Iterator[Chunk] | None, inputs: Tensors, request: Request
    ) -> Iterator[Chunk]:
        assert upstream is not None, "Gain needs an upstream"
        factor = np.float32(10.0 ** (self.options.db / 20.0))
        for chunk in upstream:
            data = chunk.data * factor
            if self.options.clip:
                data = np.clip(data, -1.0, 1.0)
            yield Chunk(data.astype(np.float32, copy=False), chunk.start, chunk.last, chunk.meta)


class FadeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fade_in_ms: float = Field(default=5.0, ge=0.0, le=1000.0)
    fade_out_ms: float = Field(default=5.0, ge=0.0, le=1000.0)


@register("Fade")
class Fade(StreamableBlock):
    """Raised-cosine fades at utterance starts and ends, so joins between utterances never click.

    The fade-out covers at most the utterance's last chunk (never held back: no added latency).
    """

    Options = FadeOptions

    def stream(
        self, upstream: Iterator[Chunk] | None, inputs: Tensors, request: Request
    ) -> Iterator[Chunk]:
        if upstream is None:
            raise AddonError("Fade needs an upstream StreamableBlock")
        rate = needs_context(self, self.context).sample_rate
        fade_in = _ramp(int(rate * self.options.fade_in_ms / 1000))
        fade_out = _ramp(int(rate * self.options.fade_out_ms / 1000))[::-1]
        for chunk in upstream:
            data = chunk.data.copy()
            _apply(data, fade_in, chunk.start)
            if chunk.last:
                _apply_tail(data, fade_out)
            yield Chunk(data, chunk.start, chunk.last, chunk.meta)


def _ramp(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / max(n, 1))).astype(np.float32)


def _apply(data: np.ndarray, ramp: np.ndarray, start: int) -> None:
    """Multiply the part of ``data`` (starting at sample ``start``) that overlaps the ramp."""
    if start < ramp.shape[0]:
        n = min(ramp.shape[0] - start, data.shape[0])
        data[:n] *= ramp[start : start + n]


def _apply_tail(data: np.ndarray, ramp: np.ndarray) -> None:
    n = min(ramp.shape[0], data.shape[0])
    if n:
        data[data.shape[0] - n :] *= ramp[ramp.shape[0] - n :]
