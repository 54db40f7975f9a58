"""Effects and diagnostics: each only extends StreamableBlock and drops into any stack."""

from __future__ import annotations

import numpy as np

from blocks import parse_stack
from blocks.components.diagnostics import ChunkStats
from blocks.components.effects import Fade, FadeOptions, Gain, GainOptions
from blocks.core import Chunk, Request
from tests.conftest import NOISE_OFF, bare_stack, voice_with_stack


def chunks(data: np.ndarray, size: int):
    for start in range(0, data.shape[0], size):
        yield Chunk(data[start : start + size], start, start + size >= data.shape[0])


def test_gain_scales_and_clips():
    ones = np.full(100, 0.5, np.float32)
    out = np.concatenate([c.data for c in Gain(None, GainOptions(db=6.0)).stream(chunks(ones, 30), {}, Request())])
    np.testing.assert_allclose(out, np.full(100, 0.5 * 10 ** (6 / 20)), rtol=1e-6)
    loud = Gain(None, GainOptions(db=20.0)).stream(chunks(ones, 30), {}, Request())
    assert max(float(c.data.max()) for c in loud) == 1.0


def test_fade_ramps_the_ends_only_whatever_the_chunk_size(voice):
    ones = np.ones(4000, np.float32)
    fade = Fade(voice.addon.context(), FadeOptions(fade_in_ms=2, fade_out_ms=2))
    whole = np.concatenate([c.data for c in fade.stream(chunks(ones, 4000), {}, Request())])
    split = np.concatenate([c.data for c in fade.stream(chunks(ones, 100), {}, Request())])
    np.testing.assert_array_equal(whole, split)
    n = int(22050 * 0.002)
    assert whole[0] < 0.01 and whole[-1] < 0.01
    np.testing.assert_array_equal(whole[n:-n], 1.0)
    assert np.all(np.diff(whole[:n]) > 0)


def test_effects_and_diagnostics_in_a_real_stack():
    stack = [*bare_stack("piper-joe"), {"type": "Gain", "db": -6.0}, {"type": "ChunkStats", "label": "out"}]
    quiet = voice_with_stack("piper-joe", stack, warm_up=False)
    plain = voice_with_stack("piper-joe", bare_stack("piper-joe"))
    text = "Quiet please."
    a = quiet.synthesize(text, **NOISE_OFF).audio
    b = plain.synthesize(text, **NOISE_OFF).audio
    np.testing.assert_allclose(a, b * np.float32(10 ** (-6 / 20)), atol=1e-6)
    stats = quiet.engine.blocks[-1]
    assert isinstance(stats, ChunkStats)
    assert stats.stats.elements == a.shape[0] and stats.stats.chunks >= 1
    assert abs(stats.stats.rms - float(np.sqrt(np.mean(a.astype(np.float64) ** 2)))) < 1e-6
    assert stats.stats.non_finite == 0


def test_stats_can_watch_frames_inside_a_nested_stack():
    stack = bare_stack("piper-joe")
    inner = stack[0]["streamable_block"]["stack"]
    inner.insert(1, {"type": "ChunkStats", "label": "latent"})
    voice = voice_with_stack("piper-joe", stack)
    voice.synthesize("Frames.", **NOISE_OFF)
    stats = voice.engine.blocks[0].stack[1]
    assert stats.stats.elements % 192 == 0 and stats.stats.elements > 0
    assert parse_stack(stack)
