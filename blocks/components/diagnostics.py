"""Diagnostic blocks: observe the stream, change nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict

from blocks.core import Chunk, Request, StreamableBlock, Tensors, needs_upstream

log = logging.getLogger("voxstack.diagnostics")


@dataclass
class StreamStats:
    """Running statistics of one block's stream (over all utterances it has seen)."""

    chunks: int = 0
    elements: int = 0
    sum_squares: float = 0.0
    peak: float = 0.0
    non_finite: int = 0

    @property
    def rms(self) -> float:
        return float(np.sqrt(self.sum_squares / self.elements)) if self.elements else 0.0


class StatsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = "stream"
    """Name used in the log lines."""


class ChunkStats(StreamableBlock):
    """Logs RMS, peak and non-finite counts of every chunk (frames or samples) at DEBUG.

    Put it anywhere in a stack; totals stay readable on ``.stats``.
    """

    transforms = True

    Options = StatsOptions

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.stats = StreamStats()

    def stream(
        self, upstream: Iterator[Chunk] | None, inputs: Tensors, request: Request
    ) -> Iterator[Chunk]:
        for chunk in needs_upstream(self, upstream):
            data = np.asarray(chunk.data, dtype=np.float64)
            finite = np.isfinite(data)
            values = data[finite]
            self.stats.chunks += 1
            self.stats.elements += int(values.size)
            self.stats.sum_squares += float(np.square(values).sum())
            self.stats.non_finite += int(data.size - values.size)
            peak = float(np.abs(values).max()) if values.size else 0.0
            self.stats.peak = max(self.stats.peak, peak)
            log.debug(
                "%s chunk start=%d len=%d rms=%.4f peak=%.4f non_finite=%d last=%s",
                self.options.label, chunk.start, chunk.length,
                float(np.sqrt(np.mean(np.square(values)))) if values.size else 0.0,
                peak, data.size - values.size, chunk.last,
            )
            yield chunk
