"""SSML on piper-joe and hibari, noise off: breaks, rate, pitch, volume, phonemes, say-as, sub, marks."""

from __future__ import annotations

import time
import unicodedata

import numpy as np
import pytest

from blocks import load_addon
from blocks.errors import InputError
from blocks.options import SynthesisOptions
from blocks.ssml import SsmlError, parse
from blocks.voice import Voice

ADDONS = ["piper-joe", "hibari"]
MARKS = ("sentence", "word", "ssml")
PLAIN = "Hello there, my dear friend. How are you?"


@pytest.fixture(scope="module", params=ADDONS)
def voice(request: pytest.FixtureRequest) -> Voice:
    return load_addon(request.param)


def speak(voice: Voice, text: str, text_type: str = "ssml") -> tuple[np.ndarray, list[dict]]:
    result = voice.synthesize(text, noise_scale=0.0, noise_w=0.0, marks=MARKS, text_type=text_type)
    return result.audio, result.marks


def frame_s(voice: Voice) -> float:
    return voice.addon.config.hop_length / voice.sample_rate


def word_time(marks: list[dict], value: str) -> int:
    return next(m.time for m in marks if m.type == "word" and m.value == value)


def ids(voice: Voice, text: str, text_type: str = "ssml") -> list[list[int]]:
    session = voice.session(text, SynthesisOptions(noise_scale=0.0, noise_w=0.0), text_type=text_type)
    return [job.utterance.ids for job in session.jobs()]


def test_a_break_adds_its_silence_there_and_each_side_is_the_text_without_it(voice: Voice) -> None:
    plain, plain_marks = speak(voice, PLAIN, "text")
    audio, marks = speak(voice, '<speak>Hello there, <break time="700ms"/>my dear friend. How are you?</speak>')
    added = (audio.shape[0] - plain.shape[0]) / voice.sample_rate
    assert abs(added - 0.7) <= frame_s(voice), added
    at = round(word_time(plain_marks, "my") / 1000 * voice.sample_rate)
    gap, margin = audio.shape[0] - plain.shape[0], round(0.006 * voice.sample_rate)  # 5 ms ramps either side
    np.testing.assert_allclose(audio[: at - margin], plain[: at - margin], atol=1e-5)
    np.testing.assert_allclose(audio[at + gap + margin :], plain[at + margin :], atol=1e-5)
    assert np.all(audio[at + margin : at + gap - margin] == 0)
    assert abs(word_time(marks, "my") - word_time(plain_marks, "my") - 700) <= frame_s(voice) * 1000


def test_break_strengths_and_the_maximum_are_documented_values() -> None:
    document = parse('<speak>a <break strength="x-strong"/> b <break/> c <break strength="none"/> d</speak>')
    assert [b.seconds for b in document.breaks] == [1.2, 0.4]
    with pytest.raises(SsmlError, match="maximum of 10 s"):
        parse('<speak>a <break time="10001ms"/> b</speak>')


def test_rate_50_percent_doubles_the_span_and_leaves_the_rest(voice: Voice) -> None:
    plain, plain_marks = speak(voice, PLAIN, "text")
    audio, marks = speak(voice, '<speak>Hello there, <prosody rate="50%">my dear</prosody> friend. '
                                'How are you?</speak>')
    span = word_time(plain_marks, "friend") - word_time(plain_marks, "my")
    slowed = word_time(marks, "friend") - word_time(marks, "my")
    assert abs(slowed / span - 2) <= 0.1, (span, slowed)
    for word in ("Hello", "there", "my"):
        assert word_time(marks, word) == word_time(plain_marks, word)
    def after(found: list[dict]) -> list[tuple[int, str]]:  # the marks from "friend" on, relative to it
        start = word_time(found, "friend")
        return [(m.time - start, m.value) for m in found if m.time >= start]

    assert after(marks) == after(plain_marks)
    assert abs((audio.shape[0] - plain.shape[0]) / voice.sample_rate * 1000 - span) <= 0.05 * span + 30
    if voice.name == "piper-joe":  # frame networks see 32 frames of context: audio well before the span is the same
        head = round(word_time(plain_marks, "my") / 1000 * voice.sample_rate) - 40 * 256
        np.testing.assert_allclose(audio[:head], plain[:head], atol=1e-4)


def test_volume_scales_the_span_only(voice: Voice) -> None:
    plain, plain_marks = speak(voice, PLAIN, "text")
    audio, _ = speak(voice, '<speak>Hello there, <prosody volume="-6dB">my dear friend.</prosody> '
                            'How are you?</speak>')
    assert audio.shape == plain.shape
    begin = round((word_time(plain_marks, "my") + 20) / 1000 * voice.sample_rate)
    end = round((word_time(plain_marks, "friend") + 150) / 1000 * voice.sample_rate)
    ratio = np.sqrt(np.mean(audio[begin:end] ** 2) / np.mean(plain[begin:end] ** 2))
    assert abs(ratio - 10 ** (-6 / 20)) < 0.01, ratio
    head = round((word_time(plain_marks, "my") - 20) / 1000 * voice.sample_rate)
    np.testing.assert_allclose(audio[:head], plain[:head], atol=1e-5)


def test_phoneme_gives_exactly_those_ids(voice: Voice) -> None:
    ph = "təmˈɑːtoʊ" if voice.name == "piper-joe" else "təmˈɑtO"
    [said] = ids(voice, f'<speak>I like <phoneme alphabet="ipa" ph="{ph}">tomato</phoneme> soup.</speak>')
    expected = voice.frontend.phoneme_ids(unicodedata.normalize("NFD", ph))
    session = voice.session("I like tomato soup.", SynthesisOptions())
    [job] = list(session.jobs())
    word = next(w for w in job.utterance.words if w.span.text == "tomato")
    own = voice.frontend.phoneme_ids(word.phonemes, strict=False)
    ids_ = list(job.utterance.ids)
    assert ids_[word.first_id : word.first_id + len(own)] == own  # the word's own ids, replaced
    assert list(said) == ids_[: word.first_id] + expected + ids_[word.first_id + len(own) :]


def test_x_sampa_is_read_as_its_ipa() -> None:
    voice = load_addon("piper-joe")  # IPA symbols (hibari writes diphthongs as single letters)
    by_ipa = ids(voice, '<speak>A <phoneme ph="təmˈɑːtoʊ">tomato</phoneme>.</speak>')
    by_sampa = ids(voice, '<speak>A <phoneme alphabet="x-sampa" ph="t@m&quot;A:toU">tomato</phoneme>.</speak>')
    assert by_sampa == by_ipa


def test_a_phoneme_the_voice_lacks_is_refused(voice: Voice) -> None:
    with pytest.raises(InputError, match="not one of this voice's phonemes"):
        ids(voice, '<speak>A <phoneme ph="☃">snowman</phoneme>.</speak>')


def test_say_as_characters_spells_the_letters(voice: Voice) -> None:
    ssml = '<speak>Spell <say-as interpret-as="characters">cat</say-as> now.</speak>'
    assert ids(voice, ssml) == ids(voice, "Spell see eigh tee now.", "text")
    words = [w.phonemes.strip(",.") for job in voice.session(ssml, SynthesisOptions(), text_type="ssml").jobs()
             for w in job.utterance.words]
    letters = {"piper-joe": ["sˈiː", "ˈeɪ", "tˈiː"], "hibari": ["sˈi", "ˈA", "tˈi"]}[voice.name]
    assert [word.rstrip("ʲ") for word in words[1:4]] == letters


def test_sub_speaks_its_alias_and_marks_point_at_the_element(voice: Voice) -> None:
    ssml = '<speak>Visit the <sub alias="World Wide Web">WWW</sub> today.</speak>'
    assert ids(voice, ssml) == ids(voice, "Visit the World Wide Web today.", "text")
    _, marks = speak(voice, ssml)
    source = ssml.encode()
    for value in ("World", "Wide", "Web"):
        mark = next(m for m in marks if m.type == "word" and m.value == value)
        assert source[mark.start : mark.end] == b"WWW"


def test_say_as_numbers_dates_and_phones_read_as_words(voice: Voice) -> None:
    cases = {"cardinal": ("1234", "one thousand two hundred thirty-four"), "ordinal": ("21", "twenty-first"),
             "digits": ("123", "one two three"), "telephone": ("555-0199", "five five five, zero one nine nine"),
             "time": ("10:05", "ten oh five")}
    for kind, (text, words) in cases.items():
        assert parse(f'<speak><say-as interpret-as="{kind}">{text}</say-as></speak>').text == words
    date = parse('<speak><say-as interpret-as="date" format="mdy">05/01/2024</say-as></speak>').text
    assert date == "May first, twenty twenty-four"


def test_ssml_marks_fall_on_their_positions_and_words_are_all_marked(voice: Voice) -> None:
    ssml = ('<speak><mark name="start"/>Hello there, <mark name="before"/><break time="500ms"/>'
            '<mark name="after"/>my dear <mark name="friend"/>friend. How are you?<mark name="end"/></speak>')
    audio, marks = speak(voice, ssml)
    frame_ms = frame_s(voice) * 1000
    by_name = {m.value: m for m in marks if m.type == "ssml"}
    assert list(by_name) == ["start", "before", "after", "friend", "end"]
    assert by_name["start"].time <= word_time(marks, "Hello")
    assert abs(by_name["after"].time - word_time(marks, "my")) <= frame_ms
    assert abs(by_name["before"].time - (word_time(marks, "my") - 500)) <= frame_ms
    assert abs(by_name["friend"].time - word_time(marks, "friend")) <= frame_ms
    assert abs(by_name["end"].time - audio.shape[0] / voice.sample_rate * 1000) <= 2 * frame_ms
    source = ssml.encode()
    assert source[by_name["friend"].start : by_name["friend"].end] == b'<mark name="friend"/>'
    spoken = [m.value for m in marks if m.type == "word"]
    assert spoken == ["Hello", "there", "my", "dear", "friend", "How", "are", "you"]
    for mark in (m for m in marks if m.type == "word"):
        assert source[mark.start : mark.end].decode() == mark.value


def _f0_track(audio: np.ndarray, rate: int, threshold: float = 0.15) -> np.ndarray:
    """f0 of each 40 ms window, 10 ms apart (YIN: first dip of the cumulative mean normalised difference
    below ``threshold``, 70-400 Hz, refined by a parabola); NaN where unvoiced or silent."""
    size, hop, low, high = int(0.04 * rate), int(0.01 * rate), int(rate / 400), int(rate / 70)
    track = []
    for begin in range(0, audio.shape[0] - size - high, hop):
        x = audio[begin : begin + size + high].astype(np.float64)
        f0 = np.nan
        if np.dot(x[:size], x[:size]) >= 1e-4:
            diff = np.array([np.sum((x[:size] - x[lag : lag + size]) ** 2) for lag in range(high + 1)])
            cmnd = np.concatenate([[1.0], diff[1:] * np.arange(1, high + 1) / np.maximum(np.cumsum(diff[1:]), 1e-12)])
            dips = [t for t in range(low, high) if cmnd[t] < threshold and cmnd[t] <= min(cmnd[t - 1], cmnd[t + 1])]
            if dips:
                t = dips[0]
                a, b, c = cmnd[t - 1 : t + 2]
                f0 = rate / (t + (0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c else 0.0))
        track.append(f0)
    return np.asarray(track)


def _median_ratio(test: np.ndarray, reference: np.ndarray, rate: int) -> float:
    """Median f0 of ``test`` over that of ``reference``, over the windows voiced in both."""
    ours, theirs = _f0_track(test, rate), _f0_track(reference, rate)
    voiced = ~np.isnan(ours) & ~np.isnan(theirs)
    assert voiced.sum() >= 10, voiced.sum()
    return float(np.median(ours[voiced]) / np.median(theirs[voiced]))


def test_pitch_raises_the_spans_median_f0_on_hibari_and_is_refused_on_piper_joe(voice: Voice) -> None:
    ssml = '<speak>Hello there, <prosody pitch="+20%">my dear friend.</prosody> How are you?</speak>'
    if voice.name == "piper-joe":
        with pytest.raises(SsmlError, match="'piper-joe' cannot honour SSML pitch"):
            speak(voice, ssml)
        return
    plain, marks = speak(voice, PLAIN, "text")
    raised, _ = speak(voice, ssml)
    assert raised.shape == plain.shape
    rate = voice.sample_rate
    begin, end = (round(word_time(marks, word) / 1000 * rate) for word in ("my", "How"))
    assert abs(_median_ratio(raised[begin:end], plain[begin:end], rate) - 1.2) <= 0.03
    head = round((word_time(marks, "my") - 60) / 1000 * rate)
    assert abs(_median_ratio(raised[:head], plain[:head], rate) - 1) <= 0.01


HOSTILE = {
    "billion laughs": '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">'
                      '<!ENTITY lol3 "&lol2;&lol2;&lol2;">]><speak>&lol3;</speak>',
    "external entity": '<?xml version="1.0"?><!DOCTYPE speak [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                       '<speak>&xxe;</speak>',
    "10,000 nested tags": "<speak>" + "<p>" * 10_000 + "deep" + "</p>" * 10_000 + "</speak>",
    "unclosed tags": "<speak><prosody rate='slow'>never closed",
    "a one-hour break": '<speak>Wait <break time="3600s"/> for it.</speak>',
    "rate of 0%": '<speak><prosody rate="0%">stopped</prosody></speak>',
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_is_refused_at_once(name: str) -> None:
    started = time.perf_counter()
    with pytest.raises(SsmlError) as error:
        parse(HOSTILE[name])
    assert time.perf_counter() - started < 1.0
    assert "line" in str(error.value) or "maximum" in str(error.value)


def test_malformed_xml_names_line_and_column() -> None:
    with pytest.raises(SsmlError, match="mismatched tag at line 2, column"):
        parse("<speak>\nHello</s></speak>")


def test_unsupported_tags_and_attributes_are_named() -> None:
    with pytest.raises(SsmlError, match="unsupported SSML tag <emphasis>"):
        parse("<speak><emphasis>Hi</emphasis></speak>")
    with pytest.raises(SsmlError, match="unsupported attribute 'duration' on <prosody>"):
        parse('<speak><prosody duration="2s">Hi</prosody></speak>')


def test_only_text_content_counts_against_the_limit(voice: Voice) -> None:
    limit = voice.addon.config.frontend.max_chars
    markup = "<speak>" + '<prosody volume="+0dB">a </prosody>' * (limit // 4) + "</speak>"
    assert len(markup) > limit
    voice.session(markup, SynthesisOptions(), text_type="ssml")  # accepted: its text is half the limit
    with pytest.raises(InputError, match="limit"):
        voice.session("<speak>" + "ab " * limit + "</speak>", SynthesisOptions(), text_type="ssml")


def test_cli_reads_ssml_from_a_file_and_refuses_bad_ssml(tmp_path) -> None:
    import json
    import subprocess
    import sys

    source, out, marks = tmp_path / "note.ssml", tmp_path / "note.wav", tmp_path / "marks.jsonl"
    source.write_text('<speak>Wait <break time="1s"/> for <mark name="it"/>it.</speak>', encoding="utf-8")
    cli = [sys.executable, "-m", "blocks.cli", "synthesize", "--ssml"]
    done = subprocess.run([*cli, "--file", str(source), "-o", str(out), "--marks", str(marks)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in marks.read_text().splitlines()]
    assert [m["value"] for m in lines if m["type"] in ("word", "ssml")] == ["Wait", "for", "it", "it"]
    bad = subprocess.run([*cli, "<speak><emphasis>x</emphasis></speak>", "-o", str(tmp_path / "bad.wav")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "<emphasis>" in bad.stderr and not (tmp_path / "bad.wav").exists()


def test_ssml_streamed_in_documents_speaks_as_the_whole_document(voice: Voice) -> None:
    from blocks.ssml_stream import SsmlTextStream

    first = '<speak>Hello there, <break time="700ms"/>my <mark name="m"/>friend.</speak>'
    second = '<speak>How <prosody rate="50%">are</prosody> you?</speak>'
    options = SynthesisOptions(noise_scale=0.0, noise_w=0.0, marks=MARKS)
    stream = SsmlTextStream(voice.addon, voice.frontend, options)
    for piece in (first[:10], first[10:33], first[33:]):  # fragments cut anywhere
        stream.feed(piece)
    stream.flush()
    stream.feed(second)
    stream.end()
    pieces = []
    for job in stream.jobs():
        pieces += list(voice.utterance(stream, job))
    whole, whole_marks = speak(voice, first.removesuffix("</speak>") + " " + second.removeprefix("<speak>"))
    np.testing.assert_allclose(np.concatenate([p.samples for p in pieces]), whole, atol=1e-5)
    source = (first + second).encode()
    marks = [m for p in pieces for m in p.marks]
    assert [source[m.start : m.end].decode() for m in marks if m.type in ("word", "ssml")] == \
        ["Hello", "there", "my", '<mark name="m"/>', "friend", "How", "are", "you"]
    assert [m.time for m in marks] == [m.time for m in whole_marks]
