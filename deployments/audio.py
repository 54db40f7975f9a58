"""Audio as the ingress sends it: the native endpoints' sample formats, and OpenAI's formats encoded off the
event loop (the encoders themselves: ``blocks.audio_formats``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from blocks.audio_formats import Encoder, encoder_for


def s16le(samples: np.ndarray) -> bytes:
    """float32 [-1, 1] to little-endian signed 16-bit."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def f32le(samples: np.ndarray) -> bytes:
    return np.asarray(samples, dtype="<f4").tobytes()


SAMPLE_FORMATS = {"s16le": s16le, "f32le": f32le}
"""``/v1/stream`` and the WebSocket: raw samples at the voice's rate, base64 in each audio line or frame."""

ENCODING_THREADS = 4
_POOL = ThreadPoolExecutor(ENCODING_THREADS, thread_name_prefix="voxstack-encode")
"""FFmpeg's encoding for every stream of the replica: a fixed pool, no thread per stream."""


class StreamEncoder:
    """One response's encoder, its work in the shared pool where it is worth it (FFmpeg's codecs), one call
    at a time. ``close`` frees it at once, or as soon as a call still running in the pool returns (a client
    gone mid-chunk): the encoder is never used from two threads at once."""

    def __init__(self, response_format: str, voice_rate: int) -> None:
        self.encoder: Encoder = encoder_for(response_format, voice_rate)
        self.rate = self.encoder.rate
        self._running: Future[bytes] | None = None

    async def encode(self, samples: np.ndarray) -> bytes:
        return await self._call(self.encoder.encode, samples)

    async def finish(self) -> bytes:
        return await self._call(self.encoder.finish)

    async def _call(self, work: Callable[..., bytes], *args: np.ndarray) -> bytes:
        if not self.encoder.threaded:
            return work(*args)
        self._running = _POOL.submit(work, *args)
        return await asyncio.wrap_future(self._running)

    def close(self) -> None:
        running, self._running = self._running, None
        if running is None:
            self.encoder.close()
        else:  # called at once when already done, else in the pool's thread as the call returns
            running.add_done_callback(lambda _: self.encoder.close())

