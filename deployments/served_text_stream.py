"""A ServedStream whose utterances come from a TextStream: it waits for text instead of ending.

Planning (phonemizing released sentences) runs off the event loop as soon as text confirms a sentence,
so an utterance is ready to encode ahead while the one before it still streams.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from ray.serve.handle import DeploymentHandle

from blocks.session import Job
from blocks.text_stream import TextStream
from deployments.lifecycle import AbortReason, Lifecycle
from deployments.served_stream import ServedStream

IDLE = object()
"""Queued when the producer has sent every released utterance and waits for text."""


class ServedTextStream(ServedStream):
    """One socket's synthesis; ``wake`` after feeding the stream text (or ending it)."""

    def __init__(self, stream: TextStream, encoder: DeploymentHandle, tail: DeploymentHandle, lookahead: int,
                 deadline_s: float, lifecycle: Lifecycle, pace_ahead_s: float | None = None) -> None:
        self.stream = stream
        self.changed = asyncio.Event()
        self.planning: asyncio.Task[Any] | None = None
        super().__init__(stream, encoder, tail, lookahead, deadline_s, lifecycle, pace_ahead_s)
        self.wake()

    def wake(self) -> None:
        """The stream changed: plan what it released, then let the producer look."""
        self._start_planning()
        self.changed.set()

    def _start_planning(self) -> None:
        if self.stream.unplanned and (self.planning is None or self.planning.done()):
            self.planning = asyncio.create_task(self._plan())

    async def _plan(self) -> None:
        while self.stream.unplanned:
            await asyncio.to_thread(self.stream.plan)
            self.changed.set()

    async def _next(self, jobs: Iterator[Job]) -> Job | None:  # type: ignore[override]
        """The next utterance, waiting for text as long as the stream has not ended."""
        stream = self.stream
        idle_sent = False
        while True:
            self.changed.clear()
            if (job := stream.take()) is not None:
                return job
            if stream.done:
                return None
            if stream.unplanned:
                self._start_planning()  # it sets ``changed`` when done
            elif not idle_sent:  # once after each change: every utterance released so far is queued
                idle_sent = True
                await self.queue.put(IDLE)
                continue
            await self.changed.wait()
            idle_sent = False

    async def close(self, reason: AbortReason | None = None, detail: str = "") -> None:
        """Stop the producer, every stage's call, and planning."""
        if self.planning is not None and not self.planning.done():
            self.planning.cancel()
        await super().close(reason, detail)
