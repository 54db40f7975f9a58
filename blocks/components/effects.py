"""DSP effects on audio chunks. Each only extends StreamableBlock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from blocks import controls
from blocks.config import AddonConfig
from blocks.contracts import CONTROL_TENSORS, Contract, TensorSpec
from blocks.core import Chunk, Request, StreamableBlock, Tensors, needs_context, needs_upstream


class GainOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    db: float = Field(default=0.0, ge=-60.0, le=24.0)
    """Gain in decibels."""
    clip: bool = True
    """Clip to [-1, 1] after the gain."""


class Gain(StreamableBlock):
    """Multiply samples by a fixed gain."""

    transforms = True

    Options = GainOptions

    def stream(
        self, upstream: Iterator[Chunk] | None, inputs: Tensors, request: Request
    ) -> Iterator[Chunk]:
        upstream = needs_upstream(self, upstream)
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
    spans: bool = False
    """Also apply the utterance's per-span controls: SSML volume (a gain envelope) and breaks (silence
    inserted at their ids). Needs the encoder's ``durations``."""


class Fade(StreamableBlock):
    """Raised-cosine fades at utterance starts and ends, so joins between utterances never click.

    The fade-out covers at most the utterance's last chunk (never held back: no added latency).
    With ``spans``, the utterance's gain envelope and break silences (``blocks.controls.Envelope``)
    follow the fades; positions after an inserted silence move by its length.
    """

    transforms = True

    Options = FadeOptions

    @classmethod
    def contract(cls, options: Any, config: AddonConfig, path: str) -> Contract:
        if not options.spans:
            return Contract()
        return Contract((TensorSpec("durations", rank=3), *CONTROL_TENSORS))

    @classmethod
    def controls(cls, options: Any) -> frozenset[str]:
        return frozenset({"break", "volume"} if options.spans else ())

    def stream(
        self, upstream: Iterator[Chunk] | None, inputs: Tensors, request: Request
    ) -> Iterator[Chunk]:
        upstream = needs_upstream(self, upstream)
        context = needs_context(self, self.context)
        rate = context.sample_rate
        fade_in = _ramp(int(rate * self.options.fade_in_ms / 1000))
        fade_out = _ramp(int(rate * self.options.fade_out_ms / 1000))[::-1]
        envelope: controls.Envelope | None = None
        for chunk in upstream:
            if self.options.spans and envelope is None:  # the durations exist once upstream has run
                envelope = controls.Envelope(inputs, context.hop_length, rate)
            data = chunk.data.copy()
            _apply(data, fade_in, chunk.start)
            if chunk.last:
                _apply_tail(data, fade_out)
            if envelope is None or envelope.flat:
                yield Chunk(data, chunk.start, chunk.last, chunk.meta)
                continue
            start = chunk.start + envelope.inserted_before(chunk.start)
            yield Chunk(envelope.apply(data, chunk.start, chunk.last), start, chunk.last, chunk.meta)


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
