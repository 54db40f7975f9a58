"""Comparisons of the student's frames and audio with the teacher's."""

from __future__ import annotations

import numpy as np


def dtw_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean cosine similarity of frames ``[C, N]`` and ``[C, M]`` along their DTW path."""
    x = a / (np.linalg.norm(a, axis=0, keepdims=True) + 1e-8)
    y = b / (np.linalg.norm(b, axis=0, keepdims=True) + 1e-8)
    cost = 1.0 - x.T @ y
    n, m = cost.shape
    total = np.full((n + 1, m + 1), np.inf)
    steps = np.zeros((n + 1, m + 1))
    total[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            options = (total[i - 1, j - 1], total[i - 1, j], total[i, j - 1])
            k = int(np.argmin(options))
            prev = [(i - 1, j - 1), (i - 1, j), (i, j - 1)][k]
            total[i, j] = cost[i - 1, j - 1] + options[k]
            steps[i, j] = steps[prev] + 1
    return float(1.0 - total[n, m] / steps[n, m])


def spectrum(audio: np.ndarray, size: int = 1024, hop: int = 256) -> np.ndarray:
    """Power spectrogram ``[frames, bins]`` (Hann window)."""
    window = np.hanning(size)
    count = max(1, 1 + (len(audio) - size) // hop)
    frames = np.stack([np.pad(audio[i * hop : i * hop + size], (0, max(0, size - len(audio[i * hop:]))))
                       for i in range(count)])
    return np.abs(np.fft.rfft(frames * window, axis=1)) ** 2 + 1e-10


def flatness(audio: np.ndarray, sample_rate: int = 22050, band: tuple[float, float] = (100.0, 8000.0)) -> float:
    """Median spectral flatness in ``band`` of the louder half of the frames (1: white noise, near 0: tonal)."""
    power = spectrum(audio)
    hz = np.arange(power.shape[1]) * sample_rate / 2 / (power.shape[1] - 1)
    power = power[:, (hz >= band[0]) & (hz <= band[1])]
    loud = power.sum(1) >= np.median(power.sum(1))
    ratio = np.exp(np.log(power[loud]).mean(1)) / power[loud].mean(1)
    return float(np.median(ratio))


def rms_db(audio: np.ndarray) -> float:
    """Root-mean-square level in dB full scale."""
    return float(20 * np.log10(np.sqrt(np.mean(np.square(audio, dtype=np.float64))) + 1e-10))
