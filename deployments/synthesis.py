"""One request's synthesis across the stages: per-utterance encode, then the stage chain's chunks.

A producer task pulls from the stages into a bounded queue, so it runs at most ``lookahead``
chunks ahead of the response body across utterances. Serve streams have no backpressure (the
body is buffered between ingress and client, and within one utterance the stages may finish it
early), so ``pace_ahead_s`` optionally bounds the run-ahead against real-time playback instead:
no chunk is queued while the audio already sent exceeds the wall time since the first chunk by
more than that. Each utterance's stream-stage call is sent alongside its encoder call (the stage
waits for the encoder's result by reference), so Serve's routing of the two overlaps. The next
utterance is encoded while the current one streams, once half a second of its audio is unplayed.
A deadline bounds the whole request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ray.serve.handle import DeploymentHandle

from blocks.components.text import InputError, Span
from blocks.marks import ByteOffsets, frame_starts, utterance_marks
from deployments.stages import Pending


@dataclass
class Piece:
    """An audio chunk of the response, with the speech marks that start in it."""

    samples: np.ndarray
    offset: int
    utterance: int
    utterances: int
    marks: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Plan:
    """What one request asks for, validated."""

    text: str
    spans: list[Span]
    options: dict[str, Any]
    marks: tuple[str, ...]


class DeadlineExceeded(TimeoutError):
    """The request ran past its deadline."""


_DONE = object()

ENCODE_AHEAD_AFTER_S = 0.5
"""The next utterance is encoded while this one streams, once this much audio is unplayed: earlier, its
work would compete with the first chunks, whose deadlines (the audio before them) are the tightest."""


class Synthesis:
    """Producer task plus bounded queue for one request; iterate it for Pieces."""

    def __init__(self, plan: Plan, encoder: DeploymentHandle, tail: DeploymentHandle, sample_rate: int,
                 seconds_per_frame: float, lookahead: int, deadline_s: float,
                 pace_ahead_s: float | None = None) -> None:
        self.plan = plan
        self.encoder = encoder
        self.tail = tail.options(stream=True)
        self.sample_rate = sample_rate
        self.seconds_per_frame = seconds_per_frame
        self.deadline_s = deadline_s
        self.pace_ahead_s = pace_ahead_s
        self.first_at: float | None = None
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=lookahead)
        self.samples = 0
        self.first: Piece | None = None
        """The first piece, taken by whoever waits for the stream to begin."""
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            try:
                async with asyncio.timeout(self.deadline_s):
                    await self._produce()
            except TimeoutError:
                raise DeadlineExceeded(f"the request ran past its deadline of {self.deadline_s} s") from None
            await self.queue.put(_DONE)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if self.queue.full():  # the error ends the stream: it may overtake unsent audio
                self.queue.get_nowait()
            self.queue.put_nowait(error)

    def _options(self, index: int) -> dict[str, Any]:
        return {**self.plan.options, "utterance_index": index}

    def _encode(self, index: int) -> Any:
        return self.encoder.encode.remote(self.plan.spans[index], self._options(index))

    async def _open(self, index: int, encoding: Any) -> Any:
        """Call the stream stages for utterance ``index`` while its encoding may still run.

        The stages get the encoder's result by reference and wait for it themselves, so routing
        this call overlaps the encoder's work instead of following it.
        """
        return self.tail.stream.remote(Pending(await encoding._to_object_ref()), self._options(index))

    async def _produce(self) -> None:
        spans = self.plan.spans
        byte = ByteOffsets(self.plan.text)
        encoding: Any = self._encode(0)
        for index in range(len(spans)):
            chunks = await self._open(index, encoding)
            ahead = None  # the next utterance's encoding, started early once playback is safe
            try:
                encoded = await encoding
                if encoded is not None:
                    board, sent, start = dict(encoded["tensors"]), 0, self.samples
                    async for chunk in chunks:
                        marks: list[dict[str, Any]] = []
                        board.update(chunk.meta.pop("timing", {}))
                        if self.plan.marks and (starts := frame_starts(board)) is not None:
                            marks = utterance_marks(encoded["utterance"], starts, self.seconds_per_frame,
                                                    start / self.sample_rate * 1000, byte, self.plan.marks)[sent:]
                            sent += len(marks)
                        await self._pace()
                        await self.queue.put(Piece(chunk.data, self.samples, index, len(spans), marks))
                        self.samples += chunk.length
                        if ahead is None and index + 1 < len(spans) and self.unplayed() >= ENCODE_AHEAD_AFTER_S:
                            ahead = self._encode(index + 1)
            finally:
                chunks.cancel()
            if index + 1 < len(spans):
                encoding = ahead if ahead is not None else self._encode(index + 1)
        if self.samples == 0:
            raise InputError("input contains nothing that can be spoken")

    def unplayed(self) -> float:
        """Seconds of audio produced beyond what real-time playback from the first chunk has used."""
        if self.first_at is None:
            return 0.0
        return self.samples / self.sample_rate - (time.perf_counter() - self.first_at)

    async def _pace(self) -> None:
        """Wait while the audio queued so far runs more than ``pace_ahead_s`` ahead of real time."""
        now = time.perf_counter()
        if self.first_at is None:
            self.first_at = now
        if self.pace_ahead_s is not None:
            ahead = self.samples / self.sample_rate - (now - self.first_at)
            if ahead > self.pace_ahead_s:
                await asyncio.sleep(ahead - self.pace_ahead_s)

    async def __aiter__(self) -> AsyncIterator[Piece]:
        while True:
            item = await self.queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def close(self) -> None:
        """Stop the producer (and through it every stage's call)."""
        if not self.task.done():
            self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task

    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate


def elapsed(since: float) -> float:
    return time.perf_counter() - since
