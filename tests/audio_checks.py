"""Helpers for checking encoded audio: test signals cut as the service cuts audio, decoding through FFmpeg
(PyAV), the codecs' known delays, alignment and resource counts."""

from __future__ import annotations

import gc
import io
import os
import threading
from collections.abc import Iterator

import av
import numpy as np

from blocks import parity
from blocks.audio_formats import PCM_RATE, encoder_for

OPENAI_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
LEAD = {"mp3": 576 + 529, "aac": 1024}
"""Samples the decoded audio starts late by, where the stream cannot say: LAME's encoder delay plus the MP3
synthesis filterbank's, and the AAC encoder's priming frame (ADTS has a field for neither)."""
FRAME = {"mp3": 576, "aac": 1024}
"""Samples per codec frame at rates up to 24 kHz (MPEG-2 layer III; AAC-LC): the most the last is padded by."""
SYNC = {"mp3": lambda b: b[0] == 0xFF and b[1] & 0xE0 == 0xE0, "aac": lambda b: b[0] == 0xFF and b[1] & 0xF6 == 0xF0,
        "opus": lambda b: b[:4] == b"OggS", "flac": lambda b: b[0] == 0xFF and b[1] & 0xFE == 0xF8,
        "wav": lambda b: True, "pcm": lambda b: True}
"""Whether a chunk after the first starts at a frame or page boundary."""
AV_TYPES = {"OutputContainer", "PyIOFile", "AudioStream", "AudioCodecContext", "AudioResampler", "Graph",
            "FilterContext", "AudioFrame", "Packet"}
"""PyAV objects that wrap FFmpeg state (container, I/O, codec, filter graph, frames, packets)."""


def speech_like(rate: int, seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Voiced syllables: 12 harmonics of a gliding 90-260 Hz pitch under a syllable envelope, short pauses,
    a little noise (fricatives); peak 0.5."""
    rng = np.random.default_rng(seed)
    n = round(rate * seconds)
    t = np.arange(n) / rate
    pitch = 160 + 60 * np.sin(2 * np.pi * 0.7 * t) + 30 * np.sin(2 * np.pi * 2.3 * t + 1.0)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 13))
    syllables = np.clip(np.sin(2 * np.pi * 3.1 * t), 0, None) ** 0.5 * (np.sin(2 * np.pi * 0.45 * t) > -0.6)
    noise = rng.standard_normal(n) * 0.02 * (np.sin(2 * np.pi * 1.3 * t) > 0.7)
    signal = 0.25 * harmonics * syllables + noise
    return (0.5 * signal / np.max(np.abs(signal))).astype(np.float32)


def service_chunks(samples: np.ndarray, first: int = 16 * 256, growth: int = 2, largest: int = 256 * 256
                   ) -> Iterator[np.ndarray]:
    """``samples`` cut as the stages cut audio: 16 frames of 256 samples first, doubling up to 256 frames."""
    start, size = 0, first
    while start < samples.shape[0]:
        yield samples[start:start + size]
        start, size = start + size, min(size * growth, largest)


def encode(response_format: str, audio: np.ndarray, voice_rate: int) -> tuple[list[bytes], int]:
    """``audio`` encoded in the service's chunks: each ``encode`` result, then ``finish``'s; and the encode rate."""
    encoder = encoder_for(response_format, voice_rate)
    try:
        pieces = [encoder.encode(chunk) for chunk in service_chunks(audio)]
        pieces.append(encoder.finish())
        return pieces, encoder.rate
    finally:
        encoder.close()


def decode(data: bytes, response_format: str, pcm_rate: int = PCM_RATE) -> tuple[np.ndarray, int]:
    """Mono float32 audio and its rate, decoded by FFmpeg through PyAV (raw ``pcm`` read as s16le)."""
    if response_format == "pcm":
        return _floats(np.frombuffer(data, "<i2")), pcm_rate
    parts, rate = [], 0
    with av.open(io.BytesIO(data), "r") as container:
        for frame in container.decode(audio=0):
            parts.append(_floats(frame.to_ndarray().reshape(frame.layout.nb_channels, -1)[0]))
            rate = frame.sample_rate
    return (np.concatenate(parts) if parts else np.zeros(0, np.float32)), rate


def _floats(samples: np.ndarray) -> np.ndarray:
    """Decoded samples as float32 in [-1, 1] (integer formats scaled as FFmpeg scales them)."""
    if np.issubdtype(samples.dtype, np.integer):
        return samples.astype(np.float32) / float(-np.iinfo(samples.dtype).min)
    return samples.astype(np.float32)


def lag(decoded: np.ndarray, reference: np.ndarray, most: int = 4096) -> int:
    """Samples by which ``decoded`` trails ``reference`` (peak of their cross-correlation, 0..``most``)."""
    size = 1 << int(np.ceil(np.log2(decoded.shape[0] + reference.shape[0])))
    spectrum = np.fft.rfft(decoded, size) * np.conj(np.fft.rfft(reference, size))
    correlation = np.fft.irfft(spectrum, size)[:most + 1]
    return int(np.argmax(correlation))


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    """10·log10 of the reference's energy over the difference's."""
    return parity.snr_db(other, reference)


def resources() -> dict[str, int]:
    """Native threads of this process, Python threads, and live PyAV objects holding FFmpeg state."""
    gc.collect()
    live = sum(1 for item in gc.get_objects()
               if type(item).__name__ in AV_TYPES and str(getattr(type(item), "__module__", "")).startswith("av."))
    return {"native_threads": len(os.listdir("/proc/self/task")), "python_threads": threading.active_count(),
            "av_objects": live}
