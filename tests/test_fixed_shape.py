"""Fixed-shape profile: same audio as dynamic, networks see only declared shapes, batching is exact."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from blocks import controls, load_addon
from blocks.addon import Addon, addon_path
from blocks.backends import load_network
from blocks.backends.base import Network, Tally
from blocks.backends.batching import BatchingNetwork
from blocks.backends.compile import compile_fixed, is_current
from blocks.backends.fixed import FixedShapeNetwork
from blocks.components.text import Span
from blocks.config import BackendConfig, BatchConfig, NetworkConfig, TensorSpec
from blocks.core import Request
from blocks.errors import DeviceUnavailable, InputError
from blocks.utterance import Utterance
from tests.conftest import NOISE_OFF, snr_db

FIXED = {"backend": {"profile": "fixed"}}
PARAGRAPH = " ".join(
    [
        "The committee met on a grey Tuesday morning to discuss the proposal for the new library, which had been "
        "argued over for nearly three years by everyone in the village.",
        "Several members worried about the cost, while others insisted that the old building was no longer safe "
        "for children or for the elderly readers who came every afternoon.",
        "After a long debate, interrupted twice by the fire alarm and once by a delivery of sandwiches, they "
        "agreed to ask the council for a second survey before the end of the month.",
        "Nobody was entirely happy with the decision, but the chairwoman reminded them that patience had served "
        "the village well through floods, storms and one memorable summer of drought.",
    ]
)


class Recorder(Network):
    """Passes calls through to a real network and keeps the shape of every input it was given."""

    def __init__(self, inner: Network) -> None:
        super().__init__(inner.name, inner.config, inner.path, inner.backend)
        self.inner = inner
        self.shapes: list[dict[str, tuple[int, ...]]] = []

    def run(self, feeds, tally=None):
        self.shapes.append({k: tuple(v.shape) for k, v in feeds.items()})
        return self.inner.run(feeds, tally)


@pytest.fixture(scope="module")
def fixed_voice():
    addon = Addon(addon_path("piper-joe"))
    if not is_current(addon):
        compile_fixed(addon)
    return load_addon("piper-joe", overrides=FIXED)


def recorders(voice) -> dict[str, list[Recorder]]:
    """Wrap every static variant of every network of a fixed voice in a Recorder."""
    found: dict[str, list[Recorder]] = {}
    for network in voice.addon.loaded_networks():
        assert isinstance(network, FixedShapeNetwork)
        for size, variant in network.variants.items():
            network.variants[size] = Recorder(variant)
        found[network.name] = list(network.variants.values())
    return found


def ids_of_length(voice, length: int) -> list[int]:
    text = PARAGRAPH.split(". ")[0] * 3 + "."
    utterance = voice.frontend.phonemize(Span(0, len(text), text))
    assert len(utterance.ids) > length
    return [*utterance.ids[: length - 1], utterance.ids[-1]]


def test_shorter_than_the_largest_bucket_matches_dynamic(voice, fixed_voice):
    text = "A short sentence, padded up to its bucket."
    dynamic = voice.synthesize(text, **NOISE_OFF)
    fixed = fixed_voice.synthesize(text, **NOISE_OFF)
    assert snr_db(fixed.audio, dynamic.audio) >= 50
    assert fixed.padding_waste > 0 and dynamic.padding_waste == 0


def test_exactly_the_largest_bucket_matches_dynamic(voice, fixed_voice):
    largest = fixed_voice.addon.max_sequence_length()
    ids = ids_of_length(voice, largest)
    utterance = Utterance(Span(0, 1, "x"), tuple(ids))
    outputs = []
    for v in (voice, fixed_voice):
        tensors = {**utterance.tensors(), "scales": np.asarray([0.0, 1.0, 0.0], np.float32),
                   **controls.neutral(len(ids))}
        request = Request(**NOISE_OFF)
        encoded = v.engine.encode(tensors, request)
        outputs.append(np.concatenate([c.data for c in v.engine.stream(encoded.tensors, request)]))
    assert snr_db(outputs[1], outputs[0]) >= 50


def test_several_times_the_largest_bucket_matches_dynamic(voice, fixed_voice):
    total_ids = sum(len(u.ids) for u in voice.frontend.utterances(PARAGRAPH))
    assert total_ids > 2.5 * fixed_voice.addon.max_sequence_length()
    dynamic = voice.synthesize(PARAGRAPH, **NOISE_OFF)
    fixed = fixed_voice.synthesize(PARAGRAPH, **NOISE_OFF)
    assert snr_db(fixed.audio, dynamic.audio) >= 50


def test_a_sentence_past_the_largest_bucket_is_split_at_clauses(fixed_voice):
    sentence = ", ".join(["the long and winding road goes over the hills"] * 12) + "."
    recorded = recorders(fixed_voice)
    result = fixed_voice.synthesize(sentence, **NOISE_OFF)
    assert result.seconds > 20
    encoder_calls = [s for r in recorded["encoders"] for s in r.shapes]
    assert len(encoder_calls) >= 2
    words = [m.value for m in result.marks if m.type == "word"]
    assert len(words) == 12 * 9


def test_a_word_longer_than_the_largest_bucket_is_a_clear_error(fixed_voice):
    word = "".join(chr(ord("a") + i % 26) for i in range(900))
    with pytest.raises(InputError, match="the model takes at most 512"):
        fixed_voice.synthesize(f"Say {word} now.")


def test_every_network_call_sees_exactly_its_declared_shapes(fixed_voice):
    recorded = recorders(fixed_voice)
    fixed_voice.synthesize(PARAGRAPH[:400], **NOISE_OFF)
    fixed_voice.warm_up()
    profile = fixed_voice.addon.config.fixed_profile.networks
    for name, variants in recorded.items():
        sizes = profile[name].sizes
        for size, recorder in zip(sizes, variants, strict=True):
            assert recorder.shapes, f"{name} never ran at size {size}"
            for call in recorder.shapes:
                timed = [shape for key, shape in call.items() if key not in ("input_lengths", "scales")]
                assert all(shape[-1] == size for shape in timed), (name, size, call)
                assert all(shape[0] == 1 for shape in timed)


def test_neuron_adapter_refuses_without_torch_neuronx(tmp_path: Path):
    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(torch.nn.Identity()), path)
    config = NetworkConfig(file="net.pt", format="torchscript", inputs=[TensorSpec(name="x")], outputs=["y"])
    with pytest.raises(DeviceUnavailable, match="torch_neuronx is not importable"):
        load_network("net", config, path, BackendConfig(kind="neuron", profile="fixed"))


def test_batched_frames_equal_unbatched(fixed_voice):
    vocoder = fixed_voice.addon.network("vocoder")
    inner = vocoder.variants[280]
    inner = inner.inner if isinstance(inner, Recorder) else inner
    batcher = BatchingNetwork(inner, BatchConfig(max_size=8, max_wait_ms=20))
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((1, 192, 280)).astype(np.float32) for _ in range(6)]
    results: list = [None] * len(inputs)

    def call(index: int) -> None:
        results[index] = batcher.run({"z": inputs[index]})["audio"]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(batcher.batch_sizes) > 1
    for frames, batched in zip(inputs, results, strict=True):
        single = inner.run({"z": frames})["audio"]
        np.testing.assert_allclose(batched, single, atol=2e-5)


def test_concurrent_streams_with_batching_match_unbatched(fixed_voice):
    """Four streams at once, batched, each equal to its stream alone. Whether their chunks meet in one batch
    is up to the machine's scheduling, so the round repeats (each round checked) until they have met."""
    batched_voice = load_addon("piper-joe", overrides={"backend": {"profile": "fixed",
                                                                   "batch": {"max_size": 4, "max_wait_ms": 100}}})
    texts = [f"Stream number {n} is speaking over the others, with a clause." for n in range(4)]
    alone = [fixed_voice.synthesize(text, **NOISE_OFF).audio for text in texts]
    batchers = [v for n in ("flow", "vocoder") for v in batched_voice.addon.network(n).variants.values()]
    def speak(index: int, start: threading.Barrier, results: dict[int, np.ndarray]) -> None:
        start.wait()
        results[index] = batched_voice.synthesize(texts[index], **NOISE_OFF).audio

    for _ in range(10):
        results: dict[int, np.ndarray] = {}
        start = threading.Barrier(len(texts))
        threads = [threading.Thread(target=speak, args=(i, start, results)) for i in range(len(texts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for index in range(len(texts)):
            assert snr_db(results[index], alone[index]) >= 80
        if max(size for batcher in batchers for size in batcher.batch_sizes) > 1:
            return
    raise AssertionError("ten rounds of four simultaneous streams never shared a batch")


def test_padding_waste_is_counted_per_request(fixed_voice):
    tally = Tally()
    list(fixed_voice.stream("Count the padding.", tally=tally, **NOISE_OFF))
    assert tally.calls >= 3 and tally.padded > 0 and 0 < tally.waste < 5
