"""Text streamed in: sentences released as soon as they are confirmed, the same utterances as the whole text."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from blocks.errors import InputError
from blocks.options import SynthesisOptions
from blocks.session import Job, Session
from blocks.text_stream import LONG_RUN_CHARS, TextStream
from blocks.voice import Voice

TEXT = "Dr. Smith paid $42.50 at 9:30, e.g. for tea. Then we left! Did you see it?"


def stream_of(voice: Voice, fragments: list[str], seed: int = 4) -> TextStream:
    stream = TextStream(voice.addon, voice.frontend, SynthesisOptions(seed=seed), request_id="r")
    for fragment in fragments:
        stream.feed(fragment)
    stream.end()
    return stream


def plan(jobs: list[Job]) -> list[tuple]:
    return [(j.utterance.span, j.utterance.ids, j.index, j.sentence, j.final, j.options) for j in jobs]


def test_fragments_cut_at_every_boundary_make_the_one_shot_utterances(voice: Voice) -> None:
    whole = plan(list(voice.session(TEXT, SynthesisOptions(seed=4), "r").jobs()))
    assert len(whole) == 3
    assert plan(list(stream_of(voice, list(TEXT)).jobs())) == whole
    for cut in range(1, len(TEXT)):
        assert plan(list(stream_of(voice, [TEXT[:cut], TEXT[cut:]]).jobs())) == whole, cut


def test_a_sentence_is_released_by_what_confirms_it_and_not_before(voice: Voice) -> None:
    stream = TextStream(voice.addon, voice.frontend, SynthesisOptions())
    first = "Dr. Smith paid $42.50 at 9:30, e.g. for tea."
    for fragment in ("Dr", ".", " Smith paid $42", ".", "50 at 9", ":", "30, e", ".", "g", ".", " for tea", ".",
                     " "):
        stream.feed(fragment)
        assert stream.spans == [], fragment  # "Dr.", "$42.", "9:", "e.g." and the end need what follows
    stream.feed("T")
    assert [s.text for s in stream.spans] == [first]
    assert [j.utterance.span.text for j in stream.jobs()] == [first]
    stream.feed("hen we left")
    assert stream.take() is None and not stream.unplanned


def test_streamed_audio_equals_the_whole_text_audio(voice: Voice) -> None:
    options = SynthesisOptions(seed=9)
    stream = TextStream(voice.addon, voice.frontend, options)
    pieces = []
    for fragment in [TEXT[i:i + 7] for i in range(0, len(TEXT), 7)]:
        stream.feed(fragment)
        pieces += _speak(voice, stream)
    stream.end()
    pieces += _speak(voice, stream)
    whole = _speak(voice, voice.session(TEXT, options))
    assert np.array_equal(np.concatenate([p.samples for p in pieces]), np.concatenate([p.samples for p in whole]))
    assert [m for p in pieces for m in p.marks] == [m for p in whole for m in p.marks]


def _speak(voice: Voice, session: Session) -> list:
    """The audio pieces of the session's jobs, run through the voice's stack as ``Voice.stream`` runs them."""
    pieces = []
    for job in session.jobs():
        pieces += list(voice.utterance(session, job))
    return pieces


def test_marks_count_bytes_into_every_fragment_received(voice: Voice) -> None:
    stream = stream_of(voice, ["Café ", "crème. ", "Naïve idea."])
    pieces = _speak(voice, stream)
    words = [m for p in pieces for m in p.marks if m.type == "word"]
    raw = stream.text.encode()
    assert [raw[m.start:m.end].decode() for m in words] == ["Café", "crème", "Naïve", "idea"]


def test_flush_speaks_the_buffer_and_clear_drops_it(voice: Voice) -> None:
    stream = TextStream(voice.addon, voice.frontend, SynthesisOptions())
    stream.feed("Half a thought")
    assert stream.spans == []
    stream.flush()
    assert [j.utterance.span.text for j in stream.jobs()] == ["Half a thought"]
    stream.feed(" and more. Then more to come")
    stream.clear()
    assert stream.take() is None
    stream.feed(". Next one. ")
    stream.end()
    jobs = list(stream.jobs())
    assert [j.utterance.span.text for j in jobs] == ["Next one."]
    assert jobs[0].index == 1 and jobs[0].final  # indices run on; offsets count every fragment
    assert stream.text[jobs[0].utterance.span.start:jobs[0].utterance.span.end] == "Next one."


def test_a_long_run_without_a_sentence_end_is_cut_at_a_clause(voice: Voice) -> None:
    stream = TextStream(voice.addon, voice.frontend, SynthesisOptions())
    clause = "and the river kept running past the old mill, "
    while len(stream.text) <= LONG_RUN_CHARS:
        assert stream.spans == []
        stream.feed(clause)
    stream.feed("and")
    assert stream.spans and stream.spans[0].text.endswith("mill,")
    assert len(stream.spans[0].text) <= LONG_RUN_CHARS + len(clause)


def test_too_much_buffered_text_and_text_after_the_end_are_errors(voice: Voice) -> None:
    stream = TextStream(voice.addon, voice.frontend, SynthesisOptions())
    with pytest.raises(InputError, match="buffered without a sentence end"):
        stream.feed("a" * (voice.addon.config.frontend.max_chars + 1))
    stream.end()
    with pytest.raises(InputError, match="after the end"):
        stream.feed("more")


def speculated(voice: Voice, fragments: list[str], seed: int = 4) -> tuple[list[Job], int]:
    """The jobs a socket speaks from a speculating stream (the jobs taken before a refutation dropped, as
    the socket drops their held audio), and how many speculations were refuted."""
    stream = TextStream(voice.addon, voice.frontend, SynthesisOptions(seed=seed), request_id="r", speculate=True)
    kept: list[Job] = []
    refuted = 0
    for fragment in [*fragments, None]:
        stream.end() if fragment is None else stream.feed(fragment)
        if stream.refuted:
            kept, refuted, stream.refuted = [], refuted + 1, False
        stream.plan()
        while (job := stream.take()) is not None:
            kept.append(job)
    assert stream.speculative is None
    return kept, refuted


def test_a_speculating_stream_speaks_the_one_shot_utterances_at_every_cut(voice: Voice) -> None:
    whole = plan(list(voice.session(TEXT, SynthesisOptions(seed=4), "r").jobs()))
    jobs, refuted = speculated(voice, list(TEXT))
    assert plan(jobs) == whole
    assert refuted >= 3  # "Dr.", "$42.", "e." and "e.g." each looked like a first sentence's end
    for cut in range(1, len(TEXT)):
        assert plan(speculated(voice, [TEXT[:cut], TEXT[cut:]])[0]) == whole, cut


def test_the_first_sentence_is_released_at_its_end_and_held_until_confirmed(voice: Voice) -> None:
    stream = TextStream(voice.addon, voice.frontend, SynthesisOptions(), speculate=True)
    stream.feed("Sure, I can help with that")
    assert stream.spans == [] and stream.speculative is None
    stream.feed(".")
    assert [s.text for s in stream.spans] == ["Sure, I can help with that."] == [s.text for s in stream.speculative]
    stream.feed(" Dr")
    assert stream.speculative is None and not stream.refuted
    assert [s.text for s in stream.spans] == ["Sure, I can help with that."]
    stream.feed(".")  # only the first sentence is spoken on speculation
    assert stream.speculative is None and len(stream.spans) == 1

    other = TextStream(voice.addon, voice.frontend, SynthesisOptions(), speculate=True)
    other.feed("Dr.")
    assert other.speculative is not None
    other.feed(" Reyes")
    assert other.refuted and other.speculative is None and other.spans == [] and other.take() is None



class HeldFrontend:
    """A voice's frontend whose ``phonemize`` waits until released: a planner caught mid-utterance."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.entered, self.release = threading.Event(), threading.Event()

    def phonemize(self, span: Any) -> Any:
        self.entered.set()
        self.release.wait(10)
        return self.inner.phonemize(span)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_stream_ended_while_its_sentence_is_phonemized_is_not_done(voice: Voice) -> None:
    frontend = HeldFrontend(voice.frontend)
    stream = TextStream(voice.addon, frontend, SynthesisOptions(), speculate=True)  # type: ignore[arg-type]
    stream.feed("Key checked.")  # released on speculation: phonemized while the end travels
    planner = threading.Thread(target=stream.plan)
    planner.start()
    assert frontend.entered.wait(10)
    stream.end()
    assert not stream.done  # its only sentence is neither pending nor ready, but not yet spoken either
    frontend.release.set()
    planner.join()
    job = stream.take()
    assert job is not None and job.final and stream.done
