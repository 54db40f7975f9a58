"""One request across the stages: the Session's utterances, encoded and streamed by Serve handles.

Everything about what is said (utterances, seeds, marks, the tally, when to encode ahead) is the
Session's; this module only moves it. A producer task pulls from the stages into a bounded queue, so
it runs at most ``lookahead`` chunks ahead of the response body. Serve streams have no backpressure,
so ``pace_ahead_s`` optionally bounds the run-ahead against real-time playback instead. Each
utterance's stream-stage call is sent alongside its encoder call (the stage waits for the encoder's
result by reference), so Serve's routing of the two overlaps. A deadline bounds the whole request.

``close(reason)`` is the one way a stream stops early, whatever the cause: it cancels the producer, and
with it every stage call in flight (encodes ahead included), and logs the abort once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from ray.serve.handle import DeploymentHandle, DeploymentResponse

from blocks.admission import NEAR_STALL_S
from blocks.engine import Encoded
from blocks.errors import DeadlineExceeded
from blocks.session import AudioChunk, Job, Session
from deployments.errors import answer_for
from deployments.lifecycle import AbortReason, Lifecycle
from deployments.stages import Pending

_DONE = object()


class ServedStream:
    """Producer task plus bounded queue for one request; iterate it for AudioChunks."""

    def __init__(self, session: Session, encoder: DeploymentHandle, tail: DeploymentHandle, lookahead: int,
                 deadline_s: float, lifecycle: Lifecycle, pace_ahead_s: float | None = None,
                 on_end: Callable[[bool], None] | None = None, on_thin: Callable[[], None] | None = None) -> None:
        self.session = session
        self.encoder = encoder
        self.tail = tail.options(stream=True)
        self.deadline_s = deadline_s
        self.pace_ahead_s = pace_ahead_s
        self.lifecycle = lifecycle
        self.first_at: float | None = None
        """When playback began: the first piece produced, until the ingress says when the first byte left."""
        self.playing = False
        self.least_ahead: float | None = None
        """Least audio the client had left when a piece came, once playing (None: no piece came then)."""
        self.on_thin = on_thin
        """Called when a piece comes with less than ``NEAR_STALL_S`` left to play."""
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=lookahead)
        self.first: AudioChunk | None = None
        """The first piece, taken by whoever waits for the stream to begin."""
        self.failed = False
        self._inflight: set[DeploymentResponse] = set()
        """Encoder calls sent and not yet consumed (an encode ahead among them)."""
        self.task = asyncio.create_task(self._run())
        if on_end is not None:  # once the producer stops: done, failed, or cancelled even before it began
            self.task.add_done_callback(lambda task: on_end(not task.cancelled() and not self.failed))

    @property
    def samples(self) -> int:
        return self.session.samples

    @property
    def seconds(self) -> float:
        return self.session.seconds

    async def _run(self) -> None:
        try:
            try:
                async with asyncio.timeout(self.deadline_s):
                    await self._produce()
            except TimeoutError:
                raise DeadlineExceeded(f"the request ran past its deadline of {self.deadline_s} s") from None
            finally:
                for response in self._inflight:
                    response.cancel()
            await self.queue.put(_DONE)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.failed = True
            self.lifecycle.abort(answer_for(error).reason, f"{type(error).__name__}: {error}")  # type: ignore[arg-type]
            if self.queue.full():  # the error ends the stream: it may overtake unsent audio
                self.queue.get_nowait()
            self.queue.put_nowait(error)

    def _encode(self, job: Job | None) -> DeploymentResponse | None:
        if job is None:
            return None
        response = self.encoder.encode.remote(job, self.session.clock)
        self._inflight.add(response)
        return response

    async def _encoded(self, response: DeploymentResponse) -> Encoded:
        try:
            encoded: Encoded = await response
        finally:
            self._inflight.discard(response)
        return encoded

    async def _produce(self) -> None:
        session = self.session
        jobs: Iterator[Job] = session.jobs()
        job = await self._next(jobs)
        encoding = self._encode(job)
        while job is not None and encoding is not None:
            # the stream stages get the encoder's result by reference: routing overlaps encoding
            # (DeploymentResponse._to_object_ref is Ray's DeveloperAPI, documented for passing a result on)
            chunks = self.tail.stream.remote(Pending(await encoding._to_object_ref()), job, session.clock)
            upcoming: Job | None = None
            ahead = None
            try:
                track = session.track(job, await self._encoded(encoding))
                async for chunk in chunks:
                    await self._pace()
                    if self.playing:
                        left = self.unplayed()
                        self.least_ahead = left if self.least_ahead is None else min(self.least_ahead, left)
                        if left < NEAR_STALL_S and self.on_thin is not None:
                            self.on_thin()
                    await self.queue.put(track.piece(chunk))
                    if ahead is None and not job.final and session.encode_ahead(self.unplayed()):
                        upcoming = await self._next(jobs)
                        ahead = self._encode(upcoming)
            finally:
                chunks.cancel()
            if ahead is None:
                upcoming = await self._next(jobs)
                ahead = self._encode(upcoming)
            job, encoding = upcoming, ahead
        session.finish()

    async def _next(self, jobs: Iterator[Job]) -> Job | None:
        """The next utterance, phonemized off the event loop (other streams keep moving)."""
        return await asyncio.to_thread(next, jobs, None)

    async def second_queued(self, poll_s: float = 0.005) -> None:
        """Wait until a piece after the first is queued (or the end, or an error), or the producer stopped."""
        while self.queue.empty() and not self.task.done():
            await asyncio.sleep(poll_s)

    def play(self) -> None:
        """The first byte leaves for the client now: playback runs from here."""
        self.first_at = time.perf_counter()
        self.playing = True

    def unplayed(self) -> float:
        """Seconds of audio produced beyond what real-time playback from the first chunk has used."""
        if self.first_at is None:
            return 0.0
        return self.session.seconds - (time.perf_counter() - self.first_at)

    async def _pace(self) -> None:
        """Wait while the audio queued so far runs more than ``pace_ahead_s`` ahead of real time."""
        now = time.perf_counter()
        if self.first_at is None:
            self.first_at = now
        if self.pace_ahead_s is not None:
            ahead = self.session.seconds - (now - self.first_at)
            if ahead > self.pace_ahead_s:
                await asyncio.sleep(ahead - self.pace_ahead_s)

    async def __aiter__(self) -> AsyncIterator[AudioChunk]:
        while True:
            item = await self.queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def close(self, reason: AbortReason | None = None, detail: str = "") -> None:
        """Stop the producer and every stage call it made; ``reason``: the stream ends before its audio did
        (logged once; None: it ended normally or its end was logged already)."""
        if reason is not None:
            self.lifecycle.abort(reason, detail)
        if not self.task.done():
            self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
