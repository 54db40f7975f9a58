"""A replica's compute threads: blocking block generators run off the event loop, in deadline order.

Each stage replica owns one ``Steps``: a pool of threads that run one compute step (one pull of a block
chain) at a time per stream, each waiting its turn at the process's earliest-deadline-first scheduler.
``close`` ends the pool's threads; the replica calls it when Serve shuts it down.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from blocks.errors import ServiceError
from blocks.scheduler import Clock, shared_scheduler

T = TypeVar("T")

MAX_THREADS = 64
"""Threads one replica may run steps on: many may wait for the scheduler at once without starving others."""


class Stopped(Exception):
    """The stream was cancelled: the block's generator must not pull further."""


class PullFromAsync:
    """A blocking iterator over an async iterator, for code running in a worker thread.

    Each ``next`` schedules one ``__anext__`` on the loop and waits for it, so the upstream
    produces only as fast as this block consumes.
    """

    def __init__(self, source: AsyncIterator[Any], loop: asyncio.AbstractEventLoop, stop: threading.Event) -> None:
        self.source = source
        self.loop = loop
        self.stop = stop

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self.stop.is_set():
            raise Stopped()
        future = asyncio.run_coroutine_threadsafe(self._next(), self.loop)
        found, value = future.result()
        if not found:
            raise StopIteration
        return value

    async def _next(self) -> tuple[bool, Any]:
        try:
            return True, await self.source.__anext__()
        except StopAsyncIteration:
            return False, None


_END = object()


def _advance(generator: Iterator[Any]) -> Any:
    return next(generator, _END)


class Steps:
    """One replica's pool of compute threads (created as needed, ended by ``close``)."""

    def __init__(self, threads: int = MAX_THREADS, name: str = "voxstack-step") -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self.closed = False

    async def run(self, clock: Clock | None, step: Callable[[], T]) -> T:
        """Run a blocking compute step in a worker thread, in the order the process's scheduler gives the
        stream's ``clock`` (None: owed now)."""
        if self.closed:
            raise ServiceError("the replica is shutting down")
        loop = asyncio.get_running_loop()
        deadline, urgent_at = (time.time(), None) if clock is None else (clock.deadline(), clock.urgent_at())
        return await loop.run_in_executor(self._pool, shared_scheduler().run, deadline, step, urgent_at)

    async def drive(self, generator: Iterator[T], stop: threading.Event, handoff_s: float = 0.0,
                    clock: Clock | None = None) -> AsyncIterator[T]:
        """Yield the items of a blocking generator, each computed in a worker thread when its turn comes.

        The stream's ``clock`` says when its client runs out of audio: the process's scheduler computes
        the earliest deadline first. After the first item, wait ``handoff_s`` before computing the next:
        the consumer asks for it at once, and on a small machine its computation would slow the first
        item's way onward. On cancellation (the consumer went away) ``stop`` is set: the generator's next
        pull raises ``Stopped`` and its blocks see ``request.cancelled()``.
        """
        first = True
        try:
            while True:
                item = await self.run(clock, functools.partial(_advance, generator))
                if item is _END:
                    return
                yield item
                if first and handoff_s:
                    await asyncio.sleep(handoff_s)
                first = False
        finally:
            stop.set()

    def close(self) -> None:
        """End the pool: queued steps are dropped, running ones finish, then every thread exits."""
        self.closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
