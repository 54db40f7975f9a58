"""legacy-ar: an attention decoder distilled from piper-joe, streaming into piper-joe's flow and vocoder."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType

import numpy as np
import pytest

from blocks import controls, load_addon
from blocks.addon import addon_path
from blocks.core import Chunk, Request, Tensors
from blocks.voice import Voice
from tests.conftest import NOISE_OFF, voice_with_stack

HELD_OUT = [
    "The quick brown fox jumps over the lazy dog while the children watch from the window.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "She sells sea shells by the shore, and the shells she sells are surely real.",
    "Is it raining in Seattle today?",
]


def load_metrics() -> ModuleType:
    spec = importlib.util.spec_from_file_location("legacy_ar_metrics", addon_path("legacy-ar") / "metrics.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


metrics = load_metrics()


@pytest.fixture(scope="module")
def ar() -> Voice:
    return load_addon("legacy-ar")


def encode(voice: Voice, text: str) -> tuple[Tensors, Request]:
    """The utterance's tensors after the voice's Encoders (noise off)."""
    (utterance,) = list(voice.frontend.utterances(text))
    request = Request(**NOISE_OFF)
    tensors = utterance.tensors()
    tensors["scales"] = np.asarray([0.0, 1.0, 0.0], np.float32)
    tensors.update(controls.neutral(len(utterance.ids)))
    return voice.engine.encode(tensors, request).tensors, request


def teacher_frames(teacher: Voice, text: str) -> np.ndarray:
    """piper-joe's upsampled latent frames ``[192, F]`` with the noise off."""
    tensors, _ = encode(teacher, text)
    durations = tensors["durations"].reshape(-1).astype(np.int64)
    return tensors["m_p"][0][:, np.repeat(np.arange(durations.shape[0]), durations)]


def decode(voice: Voice, text: str) -> tuple[list[Chunk], Tensors]:
    """AttentionDecoder chunks and the tensors it left."""
    tensors, request = encode(voice, text)
    decoder = voice.engine.blocks[0]
    return list(decoder.stream(None, tensors, request)), tensors


def test_first_frames_arrive_before_decoding_ends(ar):
    chunks, _ = decode(ar, HELD_OUT[0])
    assert len(chunks) > 1 and not chunks[0].last and chunks[-1].last
    assert chunks[0].meta.steps < chunks[-1].meta.steps / 4
    assert [c.start for c in chunks] == list(np.cumsum([0] + [c.length for c in chunks[:-1]]))


@pytest.mark.parametrize("text", HELD_OUT)
def test_stops_on_the_stop_token_near_the_teachers_length(ar, voice, text):
    chunks, tensors = decode(ar, text)
    teacher = teacher_frames(voice, text)
    frames = sum(c.length for c in chunks)
    assert chunks[-1].meta.stopped
    assert abs(np.log(frames / teacher.shape[1])) < 0.15, (frames, teacher.shape[1])
    assert tensors["attention_durations"].sum() == frames
    assert "durations" not in tensors  # the teacher's durations do not time this model


@pytest.mark.parametrize("text", HELD_OUT)
def test_frames_match_the_teacher_after_dtw(ar, voice, text):
    chunks, _ = decode(ar, text)
    teacher = teacher_frames(voice, text)
    frames = np.concatenate([c.data[0] for c in chunks], axis=-1)
    assert metrics.dtw_cosine(frames, teacher) >= 0.9


def test_step_cap_cuts_with_a_warning():
    stack = json.loads((addon_path("legacy-ar") / "addon.json").read_text())["stack"]
    stack[0]["streamable_block"]["max_steps"] = 4
    capped = voice_with_stack("legacy-ar", stack[:2])
    with pytest.warns(RuntimeWarning, match="no stop token after 4 steps"):
        audio = capped.synthesize(HELD_OUT[3], **NOISE_OFF).audio
    assert audio.shape[0] == 4 * 3 * capped.addon.config.hop_length


def test_cancelling_stops_the_loop(ar):
    tensors, request = encode(ar, HELD_OUT[0])
    seen: list[Chunk] = []
    request.cancelled = lambda: bool(seen)
    for chunk in ar.engine.blocks[0].stream(None, tensors, request):
        seen.append(chunk)
    assert len(seen) == 1 and not seen[0].last
    assert "attention_durations" not in tensors


@pytest.mark.parametrize("text", HELD_OUT[:3])
def test_audio_is_speech_like_beside_piper_joe(ar, voice, text):
    ours = ar.synthesize(text, **NOISE_OFF)
    theirs = voice.synthesize(text, **NOISE_OFF)
    assert abs(np.log(ours.audio.shape[0] / theirs.audio.shape[0])) < 0.15
    assert abs(metrics.rms_db(ours.audio) - metrics.rms_db(theirs.audio)) < 3.0
    flat_ours, flat_theirs = metrics.flatness(ours.audio), metrics.flatness(theirs.audio)
    assert flat_ours < 0.05 and abs(np.log(flat_ours / flat_theirs)) < np.log(2.0), (flat_ours, flat_theirs)
    words = [m.value for m in ours.marks if m.type == "word"]
    assert words == [m.value for m in theirs.marks if m.type == "word"]


def test_loads_beside_piper_joe_with_its_own_files(ar, voice):
    assert ar.synthesize("Side by side.").audio.size and voice.synthesize("Side by side.").audio.size
    kinds = {net.name: type(net).__name__ for net in ar.addon.loaded_networks()}
    assert kinds["step"] == kinds["memory"] == "TorchNetwork"
    assert kinds["encoders"] == kinds["flow"] == kinds["vocoder"] == "OnnxNetwork"
    for net in ar.addon.loaded_networks():
        assert net.path.is_relative_to(ar.addon.folder)
