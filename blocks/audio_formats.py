"""Streaming encoders for OpenAI's ``response_format``s: mp3, opus, aac, flac, wav and pcm.

mp3, opus, aac and flac are FFmpeg's encoders and muxers through PyAV, muxed into a write-only sink (the
muxer never seeks back) with each packet flushed as the codec emits it; a rate the codec does not take is
converted with libsoxr, its state kept across chunks. wav and pcm are 16-bit PCM written here (pcm always at
24 kHz, as OpenAI documents it). Every encoder turns float32 mono chunks into bytes (``encode``), ends the
stream (``finish``) and frees what it holds, even mid-stream (``close``; ``with`` closes too).
"""

from __future__ import annotations

import abc
import ctypes
import functools
import glob
import logging
import os
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

import av
import numpy as np

from blocks.resample import EMPTY, StreamResampler

log = logging.getLogger(__name__)

UNKNOWN = 0xFFFFFFFF
PCM_RATE = 24000
"""OpenAI's ``pcm``: raw 24 kHz 16-bit signed little-endian mono, no header."""


@dataclass(frozen=True)
class Format:
    """How one ``response_format`` is encoded."""

    media_type: str
    codec: str | None = None
    """FFmpeg encoder; None: 16-bit PCM written here."""
    container: str | None = None
    """FFmpeg muxer."""
    rates: tuple[int, ...] = ()
    """Rates the codec takes (empty: any)."""
    bit_rate: int | None = None
    sample_format: str = "flt"
    """What the codec is opened with (FFmpeg converts the float32 input to it)."""
    codec_options: dict[str, str] = field(default_factory=dict)
    container_options: dict[str, str] = field(default_factory=dict)
    upward: bool = False
    """Pick the lowest listed rate at or above the voice's (else the nearest)."""


FLUSH = {"flush_packets": "1"}
MPEG_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
FORMATS: dict[str, Format] = {
    # raw MPEG frames, CBR; no ID3 tag (the first byte is a frame sync) and no Xing frame (written by seeking).
    # LAME's -q 7: a third less CPU than its default, the same bit rate, no loss measurable on speech
    "mp3": Format("audio/mpeg", "libmp3lame", "mp3", MPEG_RATES, 64000, "fltp", {"compression_level": "7"},
                  {**FLUSH, "id3v2_version": "0", "write_xing": "0"}),
    # one 20 ms packet per Ogg page: FFmpeg's default page of 1 s would hold the first byte for 2 s.
    # Complexity 5 of 10: under half the CPU of 10
    "opus": Format("audio/ogg; codecs=opus", "libopus", "ogg", (8000, 12000, 16000, 24000, 48000), 32000, "flt",
                   {"application": "audio", "frame_duration": "20", "compression_level": "5"},
                   {**FLUSH, "page_duration": "20000"}, upward=True),
    # the fast coder: a quarter of the default two-loop search's CPU, and closer to the input on speech
    "aac": Format("audio/aac", "aac", "adts", MPEG_RATES, 64000, "fltp", {"aac_coder": "fast"}, FLUSH),
    # 1152-sample blocks: the first chunk carries audio; no 8 KiB padding block in front
    "flac": Format("audio/flac", "flac", "flac", sample_format="s16", codec_options={"frame_size": "1152"},
                   container_options={**FLUSH, "metadata_header_padding": "0"}),
    "wav": Format("audio/wav"),
    "pcm": Format("audio/pcm", rates=(PCM_RATE,)),
}
MEDIA_TYPES = {name: spec.media_type for name, spec in FORMATS.items()}
EXTENSIONS = {**{name: name for name in FORMATS}, "ogg": "opus", "raw": "pcm"}
"""A file's extension -> the format written to it."""


class Encoder(Protocol):
    """Chunks of float32 mono audio in, bytes out as soon as the codec and muxer give them."""

    rate: int
    """The rate the audio is encoded at."""
    threaded: bool
    """Whether its work is worth a thread off an event loop (FFmpeg's codecs; not 16-bit PCM)."""

    def encode(self, samples: np.ndarray) -> bytes: ...
    def finish(self) -> bytes: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None: ...


def encode_rate(spec: Format, voice_rate: int) -> int:
    """The voice's own rate where the codec takes it; else the lowest listed above it (``upward``) or the nearest."""
    if not spec.rates or voice_rate in spec.rates:
        return voice_rate
    above = [rate for rate in spec.rates if rate >= voice_rate]
    if spec.upward and above:
        return min(above)
    return min(spec.rates, key=lambda rate: (abs(rate - voice_rate), -rate))


def format_rate(response_format: str, voice_rate: int) -> int:
    """The rate ``response_format`` carries a voice at ``voice_rate`` in."""
    return encode_rate(FORMATS[response_format], voice_rate)


def pcm16(samples: np.ndarray) -> bytes:
    """float32 [-1, 1] to little-endian signed 16-bit, scaled and rounded as FFmpeg converts (wav, pcm and
    flac carry the same integers)."""
    return np.clip(np.rint(np.asarray(samples, np.float32) * 32768.0), -32768, 32767).astype("<i2").tobytes()


def wav_header(sample_rate: int, channels: int = 1, bits: int = 16) -> bytes:
    """A 44-byte PCM WAV header whose RIFF and data sizes say 'unknown' (0xFFFFFFFF)."""
    block = channels * bits // 8
    return (b"RIFF" + struct.pack("<I", UNKNOWN) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block, block, bits)
            + b"data" + struct.pack("<I", UNKNOWN))


class _Resampling(abc.ABC):
    """Converts the voice's rate to the encoder's where they differ; ``with`` closes the encoder."""

    rate: int
    _resample: StreamResampler | None

    def _setup(self, voice_rate: int, rate: int) -> None:
        self.rate = rate
        self._resample = StreamResampler(voice_rate, rate) if rate != voice_rate else None

    def _convert(self, samples: np.ndarray) -> np.ndarray:
        data = np.asarray(samples, dtype=np.float32).reshape(-1)
        return self._resample(data) if self._resample else data

    def _tail(self) -> np.ndarray:
        return self._resample.flush() if self._resample else EMPTY

    @abc.abstractmethod
    def close(self) -> None:
        """Release the encoder (each encoder says what it holds)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


class PcmEncoder(_Resampling):
    """16-bit PCM at ``rate``, after a streaming WAV header when ``header``."""

    threaded = False

    def __init__(self, voice_rate: int, rate: int, header: bool) -> None:
        self._setup(voice_rate, rate)
        self._pending = wav_header(rate) if header else b""
        self._done = False

    def encode(self, samples: np.ndarray) -> bytes:
        if self._done:
            raise ValueError("the encoder is finished or closed")
        out, self._pending = self._pending + pcm16(self._convert(samples)), b""
        return out

    def finish(self) -> bytes:
        if self._done:
            return b""
        out = self._pending + pcm16(self._tail())
        self.close()
        return out

    def close(self) -> None:
        self._done, self._pending = True, b""
        if self._resample:
            self._resample.close()


class _Sink:
    """Write-only file for FFmpeg's muxer: no ``seek``/``tell``, so FFmpeg treats the output as a stream."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


class AvEncoder(_Resampling):
    """One FFmpeg encoder and muxer: each packet is muxed and flushed to memory as the codec emits it."""

    threaded = True

    def __init__(self, spec: Format, voice_rate: int, bit_rate: int | None = None) -> None:
        assert spec.codec and spec.container
        self._setup(voice_rate, encode_rate(spec, voice_rate))
        self._sink = _Sink()
        self._pts = 0
        self._container: av.container.OutputContainer | None = av.open(
            self._sink, "w", format=spec.container, container_options=spec.container_options, buffer_size=4096)
        try:
            self._stream = self._container.add_stream(spec.codec, rate=self.rate, options=spec.codec_options)
            context = self._stream.codec_context
            context.layout, context.format, context.thread_count = "mono", spec.sample_format, 1
            context.time_base = Fraction(1, self.rate)
            if bit_rate or spec.bit_rate:
                context.bit_rate = bit_rate or spec.bit_rate
            self._container.start_encoding()  # the header leaves with the first chunk
        except BaseException:
            self.close()
            raise

    def encode(self, samples: np.ndarray) -> bytes:
        data = self._convert(samples)
        if data.size:
            self._write(data)
        return self._sink.drain()

    def finish(self) -> bytes:
        """The codec's and the resampler's tail, then the trailer; the encoder is closed after it."""
        if self._container is None:
            return b""
        try:
            tail = self._tail()
            if tail.size:
                self._write(tail)
            self._container.mux(self._stream.encode(None))
            self._container.close()
            return self._sink.drain()
        finally:
            self.close()

    def close(self) -> None:
        """Free the muxer, codec, filter graph and resampler, even mid-stream (what they hold is dropped)."""
        container, self._container = self._container, None
        if self._resample:
            self._resample.close()
        if container is not None:
            try:
                container.close()  # mid-stream: writes a trailer into the sink, which is dropped
            except Exception:  # nothing is delivered after close, and closing must not raise
                pass
        self._stream = None
        self._sink.drain()

    @property
    def closed(self) -> bool:
        return self._container is None

    def _write(self, data: np.ndarray) -> None:
        if self._container is None:
            raise ValueError("the encoder is finished or closed")
        frame = av.AudioFrame.from_ndarray(np.clip(data, -1.0, 1.0)[np.newaxis, :], format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = self.rate, self._pts, Fraction(1, self.rate)
        self._pts += data.shape[0]
        self._container.mux(self._stream.encode(frame))


def encoder_for(response_format: str, voice_rate: int, bit_rate: int | None = None) -> Encoder:
    """A fresh streaming encoder of ``response_format`` for mono audio at ``voice_rate``."""
    spec = FORMATS[response_format]
    if spec.codec is None:
        return PcmEncoder(voice_rate, encode_rate(spec, voice_rate), header=response_format == "wav")
    return AvEncoder(spec, voice_rate, bit_rate)


def format_of(path: Path) -> str:
    """The format a file is written in, from its extension; a ValueError names the extensions known."""
    extension = path.suffix.lower().lstrip(".")
    if extension not in EXTENSIONS:
        raise ValueError(f"cannot tell the audio format of {str(path)!r} from its extension; use one of "
                         f"{', '.join('.' + name for name in EXTENSIONS)}")
    return EXTENSIONS[extension]


@functools.cache
def ffmpeg_single_thread() -> bool:
    """Make FFmpeg see one CPU, process-wide, so that the filter graph PyAV builds per audio encoder (to cut
    frames to the codec's size) starts no slice-thread pool (otherwise as many idle threads as CPUs, per open
    encoder). Once per process, in one that uses FFmpeg only for audio; False where libavutil is not found."""
    libs = glob.glob(os.path.join(os.path.dirname(av.__file__), os.pardir, "av.libs", "libavutil*.so*"))
    try:
        library = ctypes.CDLL(libs[0]) if libs else ctypes.CDLL("libavutil.so")
        library.av_cpu_force_count(1)
    except (OSError, AttributeError) as error:
        log.warning("FFmpeg keeps its CPU count (each open encoder may start idle threads): %s", error)
        return False
    return True
