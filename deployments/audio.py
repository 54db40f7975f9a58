"""Streamable audio encodings: WAV with an unknown-length header, raw PCM, Ogg/Opus."""

from __future__ import annotations

import struct
from typing import Protocol

import numpy as np
import soundfile

UNKNOWN = 0xFFFFFFFF
MEDIA_TYPES = {"wav": "audio/wav", "pcm": "audio/pcm", "opus": "audio/ogg; codecs=opus"}
FORMATS = tuple(MEDIA_TYPES)
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def pcm16(samples: np.ndarray) -> bytes:
    """float32 [-1, 1] to little-endian signed 16-bit."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def f32(samples: np.ndarray) -> bytes:
    return np.asarray(samples, dtype="<f4").tobytes()


SAMPLE_FORMATS = {"s16le": pcm16, "f32le": f32}


def wav_header(sample_rate: int, channels: int = 1, bits: int = 16) -> bytes:
    """A 44-byte PCM WAV header whose RIFF and data sizes say 'unknown' (0xFFFFFFFF)."""
    block = channels * bits // 8
    return (
        b"RIFF" + struct.pack("<I", UNKNOWN) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block, block, bits)
        + b"data" + struct.pack("<I", UNKNOWN)
    )


class Encoder(Protocol):
    def encode(self, samples: np.ndarray) -> bytes: ...
    def finish(self) -> bytes: ...


class PcmEncoder:
    """Raw 16-bit PCM, optionally after a streaming WAV header."""

    def __init__(self, sample_rate: int, header: bool) -> None:
        self.pending = wav_header(sample_rate) if header else b""

    def encode(self, samples: np.ndarray) -> bytes:
        out, self.pending = self.pending + pcm16(samples), b""
        return out

    def finish(self) -> bytes:
        return self.pending


class _Sink:
    """A write-only file for libsndfile: collects what it writes; no seeking back."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = 0) -> int:
        target = {0: offset, 1: self.position + offset, 2: self.position + offset}[whence]
        if target != self.position:
            raise OSError("the Ogg/Opus stream cannot seek")
        return self.position

    def read(self, size: int = -1) -> bytes:
        return b""

    def drain(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


class Resampler:
    """Linear-interpolation resampler that keeps its phase across chunks."""

    def __init__(self, source: int, target: int) -> None:
        self.step = source / target
        self.position = 0.0
        self.history = np.zeros(0, np.float32)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        data = np.concatenate([self.history, samples.astype(np.float32)])
        if data.shape[0] < 2:
            self.history = data
            return np.zeros(0, np.float32)
        points = np.arange(self.position, data.shape[0] - 1, self.step)
        out = np.interp(points, np.arange(data.shape[0]), data).astype(np.float32)
        consumed = int(points[-1]) if points.size else 0
        self.position = (points[-1] + self.step - consumed) if points.size else self.position
        self.history = data[consumed:]
        return out


class OpusEncoder:
    """Ogg/Opus pages as they fill (libsndfile through soundfile), resampled to an Opus rate."""

    def __init__(self, sample_rate: int) -> None:
        self.rate = next((r for r in OPUS_RATES if r >= sample_rate), 48000)
        self.resample = Resampler(sample_rate, self.rate) if self.rate != sample_rate else None
        self.sink = _Sink()
        self.file = soundfile.SoundFile(self.sink, "w", samplerate=self.rate, channels=1,
                                        format="OGG", subtype="OPUS")

    def encode(self, samples: np.ndarray) -> bytes:
        data = self.resample(samples) if self.resample else samples
        if data.size:
            self.file.write(np.clip(data, -1.0, 1.0))
        return self.sink.drain()

    def finish(self) -> bytes:
        self.file.close()
        return self.sink.drain()


def encoder_for(response_format: str, sample_rate: int) -> Encoder:
    if response_format == "opus":
        return OpusEncoder(sample_rate)
    return PcmEncoder(sample_rate, header=response_format == "wav")
