"""The one runtime's logic on the numpy addon: contracts, containers, utterance plan, marks, tally, cancel."""

from __future__ import annotations

import numpy as np
import pytest

from blocks.config import ScheduleConfig
from blocks.errors import AddonError, InputError
from blocks.options import SynthesisOptions
from blocks.voice import WHOLE, Voice
from tests.fake_addon import HOP, fake_addon, fake_config

TEXT = "Hello there, my friend. Dr. Smith paid $42.50 at 9:30 today! Is that so?"


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Voice:
    return Voice(fake_addon(tmp_path_factory.mktemp("fake") / "fake"))


def test_chunked_audio_equals_whole_utterance_audio(fake: Voice) -> None:
    chunked = fake.synthesize(TEXT, seed=3)
    whole = fake.synthesize(TEXT, seed=3, schedule=WHOLE)
    assert np.array_equal(chunked.audio, whole.audio)
    assert chunked.marks == whole.marks
    small_first = ScheduleConfig(first=2, second=7, growth=2.0, max=16)
    assert np.array_equal(fake.synthesize(TEXT, seed=3, schedule=small_first).audio, whole.audio)


def test_the_same_seed_is_bit_identical_and_another_seed_differs(fake: Voice) -> None:
    first, again = fake.synthesize(TEXT, seed=11), fake.synthesize(TEXT, seed=11)
    other = fake.synthesize(TEXT, seed=12)
    assert np.array_equal(first.audio, again.audio)
    assert first.audio.shape != other.audio.shape or not np.array_equal(first.audio, other.audio)


def test_chunk_offsets_are_contiguous_and_only_the_final_chunk_is_last(fake: Voice) -> None:
    chunks = list(fake.stream(TEXT))
    assert [c.offset for c in chunks] == list(np.cumsum([0] + [c.samples.shape[0] for c in chunks[:-1]]))
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]


def test_marks_cover_every_word_in_time_order(fake: Voice) -> None:
    result = fake.synthesize(TEXT, marks=("sentence", "word"))
    words = [m for m in result.marks if m.type == "word"]
    said = [TEXT.encode()[m.start:m.end].decode() for m in words]
    assert said == [m.value for m in words]
    assert said[:4] == ["Hello", "there", "my", "friend"]
    assert [m.time for m in result.marks] == sorted(m.time for m in result.marks)
    assert result.marks[-1].time < result.seconds * 1000


def test_a_sentence_is_one_utterance_abbreviations_do_not_end_it(fake: Voice) -> None:
    session = fake.session(TEXT, SynthesisOptions())
    assert [s.text for s in session.spans] == ["Hello there, my friend.", "Dr. Smith paid $42.50 at 9:30 today!",
                                               "Is that so?"]
    assert [job.sentence for job in session.jobs()] == [0, 1, 2]


def test_over_the_limit_a_sentence_is_split_at_the_clause_nearest_its_middle(tmp_path) -> None:
    voice = Voice(fake_addon(tmp_path / "fake", limit=60))
    text = "One two three four, five six seven eight, nine ten eleven twelve, and thirteen fourteen fifteen."
    session = voice.session(text, SynthesisOptions())
    jobs = list(session.jobs())
    assert len(jobs) > 1 and all(len(job.utterance.ids) <= 60 for job in jobs)
    assert jobs[0].utterance.span.text.endswith(",")  # cut at a clause, not mid-clause
    assert [job.index for job in jobs] == list(range(len(jobs))) and jobs[-1].final
    assert not any(job.final for job in jobs[:-1])
    audio = voice.synthesize(text).audio
    assert audio.shape[0] > 0


def test_a_word_longer_than_the_limit_is_a_clear_error(tmp_path) -> None:
    voice = Voice(fake_addon(tmp_path / "fake", limit=24))
    with pytest.raises(InputError, match="takes at most 24"):
        voice.synthesize("Say supercalifragilisticexpialidocious now.")


@pytest.mark.parametrize("text", ["...", "", "\x00\x01"])
def test_nothing_to_say_is_a_clear_error(fake: Voice, text: str) -> None:
    with pytest.raises(InputError, match=r"nothing that can be spoken|empty"):
        fake.synthesize(text)


@pytest.mark.parametrize(("option", "value"), [("length_scale", 0.0), ("noise_w", 9.0), ("seed", -1),
                                               ("length_scale", float("inf")), ("marks", ("viseme",))])
def test_bad_options_name_the_option(fake: Voice, option: str, value: object) -> None:
    with pytest.raises(InputError, match=option):
        fake.synthesize("Hi.", **{option: value})


def test_length_scale_stretches_the_audio(fake: Voice) -> None:
    slow = fake.synthesize(TEXT, length_scale=2.0, noise_w=0.0).audio.shape[0]
    normal = fake.synthesize(TEXT, length_scale=1.0, noise_w=0.0).audio.shape[0]
    assert slow > 1.6 * normal


def test_cancelling_stops_the_stream(fake: Voice) -> None:
    stop: list[bool] = []
    chunks = []
    for chunk in fake.stream(TEXT + " " + TEXT, cancelled=lambda: bool(stop)):
        chunks.append(chunk)
        stop.append(True)
    whole = sum(c.samples.shape[0] for c in fake.stream(TEXT + " " + TEXT))
    assert sum(c.samples.shape[0] for c in chunks) < whole / 2


def test_the_tally_counts_every_network_call(fake: Voice) -> None:
    from blocks.backends.base import Tally

    tally = Tally()
    result = fake.synthesize("Hello there.", tally=tally)
    assert tally.calls >= 3 and tally.real > 0 and result.padding_waste == 0
    assert result.audio.shape[0] % HOP == 0


def test_a_block_reading_a_tensor_nothing_writes_fails_at_load_with_its_path(tmp_path) -> None:
    stack = fake_config()["stack"]
    stack[0]["streamable_block"]["stack"][0]["encoding"] = "nope"
    with pytest.raises(AddonError, match=r"\$\.stack\[0\]\.streamable_block\.stack\[0\].*'nope'"):
        fake_addon(tmp_path / "fake", stack=stack)


def test_a_rank_mismatch_fails_at_load(tmp_path) -> None:
    stack = fake_config()["stack"]
    stack[0]["streamable_block"]["stack"][0]["durations"] = "input_lengths"
    with pytest.raises(AddonError, match="rank"):
        fake_addon(tmp_path / "fake", stack=stack)


def test_a_stack_without_the_encoders_fails_at_load(tmp_path) -> None:
    stack = fake_config()["stack"]
    stack[0]["sequence_block"] = {"type": "SequenceBlockContainer", "blocks": [{"type": "Network", "network": "flow"}]}
    with pytest.raises(AddonError, match=r"reads tensor 'z_p'"):
        fake_addon(tmp_path / "fake", stack=stack)


def test_adaptive_chunks_grow_only_with_room() -> None:
    import itertools
    import time

    from blocks.components.windowed import chunk_sizes
    from blocks.scheduler import Clock, DeadlineScheduler, room_to_grow

    adaptive = ScheduleConfig(first=4, growth=2.0, max=16, adaptive=True)
    assert list(itertools.islice(chunk_sizes(adaptive, lambda: True), 4)) == [4, 8, 16, 16]
    assert list(itertools.islice(chunk_sizes(adaptive, lambda: False), 4)) == [4, 4, 4, 4]
    second = ScheduleConfig(first=2, second=6, growth=2.0, max=16)
    assert list(itertools.islice(chunk_sizes(second), 5)) == [2, 6, 12, 16, 16]
    assert list(itertools.islice(chunk_sizes(second, iter([False, True, True]).__next__), 4)) == [2, 2, 6, 12]
    scheduler = DeadlineScheduler(slots=1)
    buffered = Clock(started=time.time(), produced_s=10.0)
    assert room_to_grow(buffered, scheduler)()
    assert not room_to_grow(Clock(), scheduler)()  # nothing buffered yet
    scheduler._waiting.append((float("inf"), -1))  # another stream's step waits for a core
    assert not room_to_grow(buffered, scheduler)()


def test_adaptive_chunking_keeps_the_audio(fake: Voice) -> None:
    adaptive = ScheduleConfig(first=4, growth=2.0, max=16, adaptive=True)
    assert np.array_equal(fake.synthesize(TEXT, schedule=adaptive).audio, fake.synthesize(TEXT, schedule=WHOLE).audio)


def test_a_block_that_transforms_a_stream_with_none_before_it_fails_at_load(tmp_path) -> None:
    stack = fake_config()["stack"]
    stack.insert(0, {"type": "Fade"})
    with pytest.raises(AddonError, match=r"\$\.stack\[0\]: Fade transforms a stream, but nothing before it"):
        fake_addon(tmp_path / "fake", stack=stack)
