"""Streaming sample-rate conversion on libsoxr (``soxr.ResampleStream``): the filter state crosses chunk joins."""

from __future__ import annotations

import numpy as np
import soxr

EMPTY = np.zeros(0, np.float32)


class StreamResampler:
    """Mono float32 resampler fed chunk by chunk; ``flush`` returns the tail the filter still holds.

    The chunks' outputs concatenated equal the one-shot ``soxr.resample`` of the whole signal, and after
    ``flush`` their length is ``round(n * target / source)``.
    """

    def __init__(self, source: int, target: int, quality: str = "HQ") -> None:
        self.source, self.target = source, target
        self._stream: soxr.ResampleStream | None = soxr.ResampleStream(source, target, 1, dtype="float32",
                                                                        quality=quality)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """Resampled audio for ``samples``; the filter holds back its delay until later chunks or ``flush``."""
        if self._stream is None:
            raise ValueError("the resampler was flushed or closed")
        data = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        return self._stream.resample_chunk(data) if data.size else EMPTY

    def flush(self) -> np.ndarray:
        """The held-back tail; the resampler takes no more input after it."""
        if self._stream is None:
            return EMPTY
        tail = self._stream.resample_chunk(EMPTY, last=True)
        self._stream = None
        return tail

    def close(self) -> None:
        """Drop the stream without its tail."""
        self._stream = None


def resample(samples: np.ndarray, source: int, target: int) -> np.ndarray:
    """The whole of ``samples`` at ``target`` (what a ``StreamResampler`` fed any chunks gives)."""
    if source == target:
        return np.asarray(samples, dtype=np.float32).reshape(-1)
    return soxr.resample(np.asarray(samples, dtype=np.float32).reshape(-1), source, target, quality="HQ")
