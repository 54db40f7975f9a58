"""piper-joe end to end: split graphs equal the monolithic model; chunks equal whole utterances."""

from __future__ import annotations

import numpy as np
import pytest

from blocks.voice import WHOLE
from tests.conftest import NOISE_OFF, snr_db

SENTENCES = [
    "Hello world.",
    "The quick brown fox jumps over the lazy dog while the children watch from the window.",
    "Is it raining in Seattle today, or will the sun come out at 3 p.m.?",
    "Numbers like 1,234 and 56.7 percent are spelled out by the frontend!",
]


def audio(voice, text, **options) -> np.ndarray:
    return np.concatenate([c.samples for c in voice.stream(text, **options)])


@pytest.mark.parametrize("text", SENTENCES)
def test_split_graphs_equal_the_monolithic_model(bare_voice, reference_model, text):
    (utterance,) = list(bare_voice.frontend.utterances(text))
    ids = np.asarray([utterance.ids], dtype=np.int64)
    scales = np.asarray([0.0, 1.0, 0.0], dtype=np.float32)
    (reference,) = reference_model.run(None, {"input": ids, "input_lengths": [ids.shape[1]], "scales": scales})
    ours = audio(bare_voice, text, schedule=WHOLE, **NOISE_OFF)
    assert snr_db(ours, reference.reshape(-1)) >= 60


@pytest.mark.parametrize("text", SENTENCES[1:])
def test_chunked_streaming_equals_whole_utterance(voice, text):
    chunks = list(voice.stream(text, **NOISE_OFF))
    assert len(chunks) > 1
    chunked = np.concatenate([c.samples for c in chunks])
    whole = audio(voice, text, schedule=WHOLE, **NOISE_OFF)
    assert snr_db(chunked, whole) >= 60


def test_chunks_follow_the_schedule(voice):
    hop = voice.addon.config.hop_length
    sizes = [c.samples.shape[0] // hop for c in voice.stream(SENTENCES[1], **NOISE_OFF)]
    assert sizes[0] == voice.addon.config.schedule.first
    assert sizes[1] > sizes[0]


def test_same_seed_gives_identical_bytes_and_seeds_differ(voice):
    text = SENTENCES[2]
    first = audio(voice, text, seed=7)
    again = audio(voice, text, seed=7)
    other = audio(voice, text, seed=8)
    assert first.tobytes() == again.tobytes()
    assert first.shape != other.shape or first.tobytes() != other.tobytes()


def test_seeded_noise_does_not_depend_on_chunking(voice):
    chunked = audio(voice, SENTENCES[1], seed=3, noise_w=0.0)
    whole = audio(voice, SENTENCES[1], seed=3, noise_w=0.0, schedule=WHOLE)
    assert snr_db(chunked, whole) >= 60


def test_length_scale_changes_speed(voice):
    normal = audio(voice, SENTENCES[1], **NOISE_OFF)
    slow = audio(voice, SENTENCES[1], length_scale=1.5, **NOISE_OFF)
    assert 1.25 < slow.shape[0] / normal.shape[0] < 1.65


def test_long_input_streams_first_utterance_before_the_rest(voice):
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    stream = voice.stream(text, **NOISE_OFF)
    first = next(stream)
    assert first.utterance == 0 and first.utterances == 40
    assert first.samples.shape[0] == voice.addon.config.schedule.first * voice.addon.config.hop_length
    stream.close()


def test_synthesize_returns_audio_and_marks(voice):
    result = voice.synthesize("Good morning. Good night.", seed=1)
    assert result.sample_rate == 22050
    assert result.audio.dtype == np.float32
    assert 0.8 < result.seconds < 4
    assert [m.value for m in result.marks if m.type == "word"] == ["Good", "morning", "Good", "night"]
