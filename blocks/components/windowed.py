"""Run a frame network chunk by chunk with context on each side, cropping to the chunk.

With enough context (the network's receptive field) the chunked output equals the
whole-utterance output; the schedule trades first-chunk latency against per-call overhead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from blocks.config import ScheduleConfig
from blocks.core import Chunk, ChunkMeta
from blocks.errors import AddonError


def chunk_sizes(schedule: ScheduleConfig, room: Callable[[], bool] | None = None) -> Iterator[int]:
    """``first``, then ``second`` (if set), then growing by ``growth`` up to ``max``, forever; with
    ``room``, growing only while ``room()`` says the stream has audio to spare and the process has
    compute to spare."""
    size, second = float(schedule.first), schedule.second
    while True:
        yield int(min(size, schedule.max))
        if room is None or room():
            size = min(float(second) if second else size * schedule.growth, schedule.max)
            second = None


class FrameBuffer:
    """Frames pulled from upstream on demand, forgetting what no later window needs."""

    def __init__(self, upstream: Iterator[Chunk]) -> None:
        self.upstream = upstream
        self.frames: np.ndarray | None = None
        self.offset = 0  # absolute index of self.frames[..., 0]
        self.done = False
        self.total: int | None = None
        """Length of the whole upstream, when its chunks say (``meta.frames``)."""

    @property
    def end(self) -> int:
        return self.offset + (0 if self.frames is None else self.frames.shape[-1])

    def fill_to(self, index: int) -> None:
        while not self.done and self.end < index:
            try:
                chunk = next(self.upstream)
            except StopIteration:
                self.done = True
                break
            data = chunk.data
            self.total = chunk.meta.frames if chunk.meta.frames is not None else self.total
            self.frames = data if self.frames is None else np.concatenate([self.frames, data], axis=-1)
            self.done = chunk.last

    def window(self, start: int, stop: int) -> np.ndarray:
        assert self.frames is not None
        return self.frames[..., start - self.offset : stop - self.offset]

    def forget_before(self, index: int) -> None:
        if self.frames is not None and index > self.offset:
            drop = min(index - self.offset, self.frames.shape[-1])
            self.frames = self.frames[..., drop:]
            self.offset += drop


def windowed(
    upstream: Iterator[Chunk],
    run: Callable[[np.ndarray], np.ndarray],
    schedule: ScheduleConfig,
    context: int,
    scale: int = 1,
    max_window: int | None = None,
    room: Callable[[], bool] | None = None,
) -> Iterator[Chunk]:
    """Yield ``run`` over scheduled chunks of upstream frames, ``scale`` outputs per frame.

    ``run`` maps frames ``[..., n]`` to outputs ``[..., n * scale]``. With ``max_window`` (a
    fixed-shape network) chunks shrink so that a chunk and its context never exceed it.
    """
    cap = None
    if max_window is not None:
        cap = max_window - 2 * context
        if cap < 1:
            raise AddonError(f"a fixed window of {max_window} frames leaves no room for 2 x {context} context")
    buffer = FrameBuffer(upstream)
    position = 0
    for scheduled in chunk_sizes(schedule, room):
        size = scheduled if cap is None else min(scheduled, cap)
        buffer.fill_to(position + size + context)
        stop = min(position + size, buffer.end)
        last = buffer.done and stop == buffer.end
        if stop <= position:
            yield Chunk(np.zeros((0,) if scale > 1 else (0, 0), np.float32), position * scale, True)
            return
        lo, hi = max(0, position - context), min(buffer.end, stop + context)
        out = run(buffer.window(lo, hi))
        cropped = out[..., (position - lo) * scale : (stop - lo) * scale]
        total = None if buffer.total is None else buffer.total * scale  # the stream's length
        yield Chunk(cropped, position * scale, last, ChunkMeta(frames=total))
        if last:
            return
        position = stop
        buffer.forget_before(position - context)
