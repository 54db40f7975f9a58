"""Speech marks: Polly-shaped, monotonic, one word mark per word, byte offsets into the text."""

from __future__ import annotations

import re

from tests.conftest import NOISE_OFF

TEXT = "Café owners say: “twenty-three” is fine, aren't they? Yes! The 2nd test ends here."


def test_word_marks_are_monotonic_and_cover_every_word(voice):
    marks = voice.synthesize(TEXT, **NOISE_OFF).marks
    words = [m for m in marks if m.type == "word"]
    expected = re.findall(r"\w[\w'’-]*", TEXT)
    assert [m.value for m in words] == expected
    times = [m.time for m in words]
    assert times == sorted(times) and len(set(times)) == len(times)
    raw = TEXT.encode("utf-8")
    for mark in words:
        assert raw[mark.start : mark.end].decode("utf-8") == mark.value
        assert set(mark.as_json()) == {"time", "type", "start", "end", "value"}


def test_marks_fall_inside_the_audio(voice):
    result = voice.synthesize(TEXT, **NOISE_OFF)
    duration_ms = result.seconds * 1000
    assert all(0 <= m.time < duration_ms for m in result.marks)
    sentences = [m for m in result.marks if m.type == "sentence"]
    assert len(sentences) == 3 and sentences[0].time == 0


def test_phoneme_marks_on_request(voice):
    marks = voice.synthesize("Hello world.", marks=("word", "phoneme"), **NOISE_OFF).marks
    phonemes = [m for m in marks if m.type == "phoneme"]
    assert "".join(m.value for m in phonemes).startswith("həlo")
    times = [m.time for m in marks]
    assert times == sorted(times)


def test_marks_arrive_with_the_first_chunk_of_each_utterance(voice):
    chunks = list(voice.stream("One sentence here. Another one there.", **NOISE_OFF))
    with_marks = [c for c in chunks if c.marks]
    assert [c.utterance for c in with_marks] == [0, 1]
    assert chunks[0].marks[0].type == "sentence"


def test_an_autoregressive_model_marks_words_as_it_decodes():
    from blocks import load_addon

    legacy, teacher = load_addon("legacy-ar"), load_addon("piper-joe")
    text = "Hello from the legacy model, with word marks as it decodes."
    chunks = list(legacy.stream(text))
    words = [m for c in chunks for m in c.marks if m.type == "word"]
    assert [m.value for m in words] == re.findall(r"\w[\w'’-]*", text)
    assert sum(1 for c in chunks if any(m.type == "word" for m in c.marks)) >= 2, "marks follow the decoding"
    times = [m.time for m in words]
    assert times == sorted(times)
    reference = [m.time for m in teacher.synthesize(text, **NOISE_OFF).marks if m.type == "word"]
    assert max(abs(a - b) for a, b in zip(times, reference, strict=True)) < 250
