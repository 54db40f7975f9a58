"""HarmonicVocoder: spectral parts per frame -> audio, by signal processing (no network).

Per frame (hop ``H`` samples, window ``N = 4H``, ``N / 2 + 1`` bins) the spectrum is

    S = exp(lh) e^{i pi tanh(theta)} E  +  exp(ln) Z  +  exp(lr) e^{i phi}      (exponents capped at 7)

with ``E`` the Hann-windowed STFT (centred, reflect-padded) of a band-limited pulse train that
follows ``f0``, and ``Z`` complex Gaussian noise; the audio is the inverse STFT of ``S``
(windowed overlap-add normalised by the summed squared window). Streaming keeps the pulse
phase, the last pulse samples and the last three windowed frames between chunks, so any
chunking gives the audio of the whole utterance at once. The noise is drawn bin-major over the
whole utterance (``[bins, 2 F]`` normals, pairs as real and imaginary parts) when the first
chunk arrives, which needs the utterance's frame count (``meta["frames"]`` or a last chunk).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from blocks import controls
from blocks.components.windowed import chunk_sizes
from blocks.config import AddonConfig, ScheduleConfig
from blocks.contracts import Contract, TensorSpec
from blocks.core import Chunk, Request, StreamableBlock, Tensors, needs_upstream
from blocks.errors import AddonError, ServiceError

NOISE_SALT = 0xB1A5
"""Salt of the request generator the noise ``Z`` is drawn from."""
PARTS = 5
"""Spectral parts before ``f0`` in a frame's channels: lh, theta, ln, lr, phi."""


def _capped_exp(x: np.ndarray, cap: float) -> np.ndarray:
    return np.exp(np.minimum(x, cap), dtype=np.float32)


class HarmonicSynth:
    """One utterance's vocoder state: feed frames ``[5 * bins + 1, n]`` in order, get samples."""

    def __init__(self, frames: int, rng: np.random.Generator, sample_rate: int = 24000, hop: int = 300,
                 voiced_hz: float = 40.0, max_hz: float = 11000.0, cap: float = 7.0) -> None:
        self.total, self.rate, self.hop, self.voiced_hz, self.max_hz, self.cap = (
            frames, sample_rate, hop, voiced_hz, max_hz, cap)
        self.n_fft = 4 * hop
        self.bins = self.n_fft // 2 + 1
        n = np.arange(self.n_fft)
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * n / self.n_fft)).astype(np.float32)
        self.source_window = self.window / np.float32(hop)  # a unit cosine then has magnitude 1
        self.window_sq = (self.window * self.window).reshape(4, hop)
        j = (np.arange(hop) + 0.5) / hop - 0.5
        self.frac = (j % 1.0).astype(np.float32)  # position of each sample between two frame centres
        self.left = np.where(j < 0, -1, 0)  # sample j of frame k lies between frames k + left and k + left + 1
        self.noise = rng.standard_normal((self.bins, 2 * frames), dtype=np.float32).view(np.complex64)
        self.f0 = np.zeros(frames, np.float32)
        self.received = 0
        self.params = np.zeros((PARTS * self.bins, 0), np.float32)  # frames from self.synthesized on
        self.phase = 0.0  # running sum of instantaneous frequency (Hz * samples)
        self.pulse = np.zeros(0, np.float32)
        self.pulse_start = 0  # sample index of self.pulse[0]
        self.pulse_blocks = 0  # hops of pulse train computed
        self.synthesized = 0  # frames whose windowed inverse FFT is in self.recent
        self.recent = np.zeros((0, 4, hop), np.float32)  # windowed frames from self.recent_start on
        self.recent_start = 0
        self.emitted = 2  # next block (in hops) of the centred, padded output to emit

    def push(self, frames: np.ndarray, last: bool) -> np.ndarray:
        """Add frames (channels: lh, theta, ln, lr, phi over the bins, then f0); return new samples."""
        n = frames.shape[-1]
        if self.received + n > self.total:
            raise ServiceError(f"got {self.received + n} frames; the utterance has {self.total}")
        self.f0[self.received : self.received + n] = frames[-1]
        self.received += n
        self.params = np.concatenate([self.params, frames[:-1].astype(np.float32, copy=False)], axis=1)
        done = last or self.received == self.total
        # A hop of pulses needs the next frame's f0; a frame's STFT the pulses a hop past its centre.
        self._pulses(self.total if done else self.received - 1)
        ready = self.total if done else (self.pulse_blocks - 1 if self.pulse_blocks >= 3 else 0)
        self._frames(ready)
        return self._emit(self.total + 2 if done else self.synthesized)

    def _pulses(self, stop: int) -> None:
        """Pulse train hops ``pulse_blocks .. stop``: sum of unit cosines at every harmonic below max_hz."""
        if stop <= self.pulse_blocks:
            return
        k = np.arange(self.pulse_blocks, stop)[:, None]
        lo = np.clip(k + self.left, 0, self.total - 1)
        hi = np.clip(k + self.left + 1, 0, self.total - 1)
        f = self.f0[lo] * (np.float32(1) - self.frac)
        f += self.f0[hi] * self.frac
        f = f.reshape(-1)
        voiced = f > self.voiced_hz
        np.maximum(f, np.float32(self.voiced_hz), out=f)
        cycles = np.cumsum(np.concatenate([[self.phase], f.astype(np.float64)]))
        self.phase = float(cycles[-1])
        cycles = cycles[1:] * (1.0 / self.rate)
        t = (np.modf(cycles)[0] * (2 * np.pi)).astype(np.float32)
        harmonics = np.floor(np.float32(self.max_hz) / f) + np.float32(0.5)
        # sum_{h<=H} cos(h t) = sin((H + 1/2) t) / (2 sin(t / 2)) - 1/2, with its limit H + 1/2 near t = 0
        denominator = np.sin(t * np.float32(0.5)) * np.float32(2)
        near_zero = np.abs(denominator) <= 2e-3
        denominator[near_zero] = 1
        x = np.sin(harmonics * t) / denominator
        x[near_zero] = harmonics[near_zero]
        x -= np.float32(0.5)
        x[~voiced] = 0
        self.pulse = np.concatenate([self.pulse, x])
        self.pulse_blocks = stop

    def _frames(self, stop: int) -> None:
        """Spectra of frames ``synthesized .. stop``, inverse-transformed and windowed into ``recent``."""
        start = self.synthesized
        if stop <= start:
            return
        hop, n_fft, bins = self.hop, self.n_fft, self.bins
        length = self.total * hop
        period = max(2 * (length - 1), 1)
        index = np.arange(start * hop - n_fft // 2, (stop - 1) * hop + n_fft // 2) % period
        index = np.where(index >= length, period - index, index)  # reflect padding at both ends
        segment = self.pulse[index - self.pulse_start]
        windows = np.lib.stride_tricks.sliding_window_view(segment, n_fft)[::hop] * self.source_window
        source = np.fft.rfft(windows, axis=1).T  # [bins, frames]
        count = stop - start
        lh, theta, ln, lr, phi = (self.params[p * bins : (p + 1) * bins, :count] for p in range(PARTS))
        turn = np.tanh(theta) * np.float32(np.pi)
        spectrum = source * ((np.cos(turn) + 1j * np.sin(turn)).astype(np.complex64) * _capped_exp(lh, self.cap))
        spectrum += self.noise[:, start:stop] * _capped_exp(ln, self.cap)
        spectrum += (np.cos(phi) + 1j * np.sin(phi)).astype(np.complex64) * _capped_exp(lr, self.cap)
        frames = np.fft.irfft(spectrum.T, n_fft, axis=1).astype(np.float32, copy=False) * self.window
        self.params = self.params[:, count:]
        self.recent = np.concatenate([self.recent, frames.reshape(count, 4, hop)])
        self.synthesized = stop
        keep = max(0, min(self.synthesized * hop - n_fft // 2, length - n_fft))
        if keep > self.pulse_start:
            self.pulse = self.pulse[keep - self.pulse_start :]
            self.pulse_start = keep

    def _emit(self, stop: int) -> np.ndarray:
        """Overlap-add output hops ``emitted .. stop`` (hops of the padded signal), normalised."""
        start = self.emitted
        if stop <= start:
            return np.zeros(0, np.float32)
        blocks = np.arange(start, stop)
        out = np.zeros((stop - start, self.hop), np.float32)
        weight = np.zeros((stop - start, self.hop), np.float32)
        for k in range(4):  # frame b - k covers hop b with quarter k of its window
            frame = blocks - k
            valid = (frame >= 0) & (frame < self.total)
            out[valid] += self.recent[frame[valid] - self.recent_start, k]
            weight[valid] += self.window_sq[k]
        out *= np.float32(1) / np.maximum(weight, np.float32(1e-11))
        self.emitted = stop
        drop = max(0, stop - 3 - self.recent_start)  # later hops need frames from stop - 3 on
        self.recent = self.recent[drop:]
        self.recent_start += drop
        return out.reshape(-1)


class HarmonicVocoderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hop: int = Field(default=300, ge=1)
    """Samples per frame; the STFT window is four hops."""
    voiced_hz: float = Field(default=40.0, gt=0)
    """Frames with a lower f0 get no pulses (unvoiced)."""
    max_hz: float = Field(default=11000.0, gt=0)
    """Highest harmonic frequency of the pulse train."""
    cap: float = 7.0
    """Upper bound of the log magnitudes before exponentiation."""
    schedule: ScheduleConfig | None = None
    """Frames per step (default: the addon's): an upstream chunk is vocoded in these pieces."""
    pitch: bool = False
    """Scale each frame's f0 by its id's ``pitch_scales`` entry (SSML ``pitch``); needs ``durations``."""


class HarmonicVocoder(StreamableBlock):
    """Frames ``[1, 5 * bins + 1, n]`` (lh, theta, ln, lr, phi, f0) to audio chunks, ``hop`` samples each.

    The noise comes from the request's seeded generator; ``noise_scale`` does not apply to it.
    """

    transforms = True

    Options = HarmonicVocoderOptions

    @classmethod
    def contract(cls, options: Any, config: AddonConfig, path: str) -> Contract:
        if not options.pitch:
            return Contract()
        return Contract((TensorSpec("durations", rank=None), TensorSpec(controls.DURATION_SCALES, "float32", 1),
                         TensorSpec(controls.PITCH_SCALES, "float32", 1)))

    @classmethod
    def controls(cls, options: Any) -> frozenset[str]:
        return frozenset({"pitch"} if options.pitch else ())

    def stream(
        self, upstream: Iterator[Chunk] | None, inputs: Tensors, request: Request
    ) -> Iterator[Chunk]:
        upstream = needs_upstream(self, upstream)
        context = self.context
        rate = context.sample_rate if context else 24000
        schedule = self.schedule_for(request, self.options.schedule)
        sizes = chunk_sizes(schedule)
        synth: HarmonicSynth | None = None
        position = 0
        ratio = (context.hop_length if context else self.options.hop) / self.options.hop
        pitch: np.ndarray | None = None
        for chunk in upstream:
            if synth is None:
                total = chunk.meta.frames or (chunk.start + chunk.length if chunk.last else None)
                if total is None:
                    raise AddonError("HarmonicVocoder needs the frame count: meta.frames or one whole chunk")
                opts = self.options
                synth = HarmonicSynth(int(total), request.rng(NOISE_SALT), rate, opts.hop, opts.voiced_hz,
                                      opts.max_hz, opts.cap)
                pitch = controls.pitch_track(inputs, ratio) if opts.pitch else None  # durations exist now
            data = chunk.data[0] if chunk.data.ndim == 3 else chunk.data
            if data.ndim != 2 or not chunk.length:
                data = np.zeros((PARTS * synth.bins + 1, 0), np.float32)
            elif pitch is not None:  # f0 is the last channel
                data = data.copy()
                scale = pitch[np.minimum(np.arange(synth.received, synth.received + data.shape[-1]), pitch.size - 1)]
                data[-1] *= scale
            begin = 0
            while True:
                stop = min(data.shape[-1], begin + next(sizes))
                last = chunk.last and stop == data.shape[-1]
                samples = synth.push(data[:, begin:stop], last)
                if samples.shape[0] or last:
                    yield Chunk(samples.astype(np.float32, copy=False), position, last)
                    position += samples.shape[0]
                if request.cancelled():
                    return
                if stop == data.shape[-1]:
                    break
                begin = stop
            if chunk.last:
                return
