"""Continuous cross-stream batching: equal-shape calls from concurrent streams run as one batch.

Each stream submits one chunk at a time and waits for its result, so streams join and leave
between steps: a batch is whatever chunks are waiting when the worker is free (after at most
``max_wait_ms`` for company), never a fixed set of requests.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from concurrent.futures import Future

import numpy as np

from blocks.backends.base import Network, Tally
from blocks.config import BatchConfig
from blocks.errors import ServiceError

Feeds = dict[str, np.ndarray]


class BatchingNetwork(Network):
    """Wraps a network whose inputs have a leading batch axis of 1 and equal shapes across calls."""

    def __init__(self, inner: Network, config: BatchConfig) -> None:
        super().__init__(inner.name, inner.config, inner.path, inner.backend)
        self.inner = inner
        self.batch = config
        self.fixed_window = inner.fixed_window
        self._queue: queue.Queue[tuple[Feeds, Future] | None] = queue.Queue()
        self.batch_sizes: Counter[int] = Counter()
        """How many batches of each size ran so far (for tests and metrics)."""
        self._closed = False
        self._worker = threading.Thread(target=self._loop, name=f"batch-{inner.name}", daemon=True)
        self._worker.start()

    @property
    def device(self) -> str:
        return self.inner.device

    def run(self, feeds: Feeds, tally: Tally | None = None) -> Feeds:
        if self._closed:
            raise ServiceError(f"network {self.name!r} is closed")
        if tally is not None:
            tally.add(sum(int(v.size) for v in feeds.values()), 0)
        future: Future = Future()
        self._queue.put((feeds, future))
        return future.result()

    def close(self) -> None:
        """Run what is queued, then stop the worker (and wait for it)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._worker.join()
        self.inner.close()

    def _loop(self) -> None:
        while (first := self._queue.get()) is not None:
            group = [first]
            deadline = time.monotonic() + self.batch.max_wait_ms / 1000
            stopping = False
            while len(group) < self.batch.max_size:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                group.append(item)
            for same in _by_shape(group):
                self._run(same)
            if stopping:
                return

    def _run(self, group: list[tuple[Feeds, Future]]) -> None:
        try:
            stacked = {k: np.concatenate([f[k] for f, _ in group], axis=0) for k in group[0][0]}
            outputs = self.inner.run(stacked)
            self.batch_sizes[len(group)] += 1
            for index, (_, future) in enumerate(group):
                future.set_result({k: v[index : index + 1] for k, v in outputs.items()})
        except Exception as error:  # every waiting stream sees the failure, none hangs
            for _, future in group:
                if not future.done():
                    future.set_exception(error)


def _by_shape(group: list[tuple[Feeds, Future]]) -> list[list[tuple[Feeds, Future]]]:
    buckets: dict[tuple, list[tuple[Feeds, Future]]] = {}
    for item in group:
        key = tuple(sorted((k, v.shape, v.dtype.str) for k, v in item[0].items()))
        buckets.setdefault(key, []).append(item)
    return list(buckets.values())
