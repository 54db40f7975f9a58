"""Run a blocking block generator off the event loop, pulling from an async upstream stream."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any


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


async def drive(generator: Iterator[Any], stop: threading.Event, handoff_s: float = 0.0) -> AsyncIterator[Any]:
    """Yield the items of a blocking generator, each computed in a worker thread.

    After the first item, wait ``handoff_s`` before computing the next: the consumer asks for it
    at once, and on a small machine its computation would slow the first item's way onward.
    On cancellation (the consumer went away) ``stop`` is set: the generator's next pull
    raises ``Stopped`` and its blocks see ``request.cancelled()``.
    """
    first = True
    try:
        while True:
            item = await asyncio.to_thread(_advance, generator)
            if item is _END:
                return
            yield item
            if first and handoff_s:
                await asyncio.sleep(handoff_s)
            first = False
    finally:
        stop.set()
