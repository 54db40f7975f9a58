"""Admission by schedulability: measured costs, the demand-bound test, the learned margin, Retry-After."""

from __future__ import annotations

from blocks.admission import COMFORT_S, FULL, NEAR_STALL_S, SHRINK, Admission
from blocks.admission_model import Load, schedulable

KEY = ("piper", "joe")


def still() -> float:
    """A clock that stands still: a stream's wall time is what the test says."""
    return 100.0


def _stream(admission: Admission, audio_s: float, wall_s: float, sharing: float = 1.0, key=KEY,
            least_ahead_s: float | None = None, planned: float = 0.0) -> None:
    """A stream that produced ``audio_s`` in ``wall_s`` while ``sharing`` streams (itself included) produced,
    admitted into a plan ``planned`` full."""
    ticket = admission.open(key)
    ticket.planned = planned
    ticket.started -= wall_s
    ticket.area -= wall_s * sharing
    admission.release(ticket, audio_s, least_ahead_s=least_ahead_s)


def _measured(capacity: float, margin: float = 0.65, fallback: int = 16) -> Admission:
    admission = Admission(margin=margin, fallback=fallback, clock=still)
    for _ in range(3):
        _stream(admission, audio_s=capacity / 4, wall_s=1.0, sharing=4.0)
    assert admission.capacity(KEY) is not None and abs(admission.capacity(KEY) - capacity) < 0.01
    return admission


def test_the_demand_bound_test() -> None:
    playing = Load(cost=0.05, start_audio=1.0, buffered=0.4)
    thin = schedulable([playing], Load(0.05, 1.0, None), margin=0.5)  # by 0.4 s: 0.05 of start; 0.2 machine-s
    assert thin.admit and abs(thin.tightest - (0.5 * 0.4 - 0.05)) < 1e-9
    starts = [Load(0.05, 1.0, None)] * 4  # four starts owed: 0.25 machine-s before the playing stream's 0.2
    crowded = schedulable([playing, *starts], Load(0.05, 1.0, None), margin=0.5)
    assert not crowded.admit and crowded.reason == "burst" and abs(crowded.burst - 0.25) < 1e-9
    full = schedulable([Load(0.1, 1.0, 10.0)] * 5, Load(0.1, 1.0, 10.0), margin=0.5)
    assert not full.admit and full.reason == "steady" and abs(full.steady - 0.6) < 1e-9


def test_a_stream_with_less_buffered_is_kept_playing_first() -> None:
    """By a stream's deadline the machine also keeps every stream with less buffered playing."""
    early, late = Load(0.2, 1.0, 0.5), Load(0.2, 1.0, 1.0)
    verdict = schedulable([early, late], Load(0.2, 0.5, None), margin=0.6)
    # at 1.0 s: the start (0.1) and the early stream from 0.5 s to 1.0 s (0.1) against 0.6 of the machine
    assert verdict.admit and abs(verdict.tightest - min(0.6 * 0.5 - 0.1, 0.6 * 1.0 - 0.2, 0.6 * 0.5 - 0.1)) < 1e-9


def test_before_any_measure_the_fallback_count_holds() -> None:
    admission = Admission(fallback=3)
    decisions = [admission.admit(KEY)[0] is not None for _ in range(4)]
    assert decisions == [True, True, True, False]


def test_a_start_waits_while_a_playing_buffer_is_thin() -> None:
    admission = _measured(capacity=20.0)  # 0.05 machine-seconds per audio second
    ticket, _ = admission.admit(KEY)
    assert ticket is not None
    buffered = [0.02]
    admission.playing(ticket, 2.0, lambda: buffered[0])
    refused, verdict = admission.admit(KEY)  # its start (0.1 machine-s) would outlast the 20 ms left
    assert refused is None and verdict.reason == "burst" and admission.retry_after(verdict) == 1
    buffered[0] = 1.0
    assert admission.admit(KEY)[0] is not None


def test_the_machine_fills_by_the_measured_cost() -> None:
    admission = _measured(capacity=20.0, margin=0.5)  # 0.05 each: ten fit in half the machine
    for _ in range(10):
        ticket, _ = admission.admit(KEY)
        assert ticket is not None
        admission.playing(ticket, 2.0, lambda: 30.0)
    refused, verdict = admission.admit(KEY)
    assert refused is None and verdict.reason == "steady"
    assert admission.load() is not None and abs(admission.load() - 1.0) < 1e-9


def test_costs_are_per_voice_then_per_addon_then_any() -> None:
    admission = _measured(capacity=20.0)
    assert abs(admission.cost(("piper", "amy")) - 0.05) < 1e-9  # the addon's streams stand in for its voice
    for _ in range(3):
        _stream(admission, audio_s=2.0, wall_s=1.0, sharing=4.0, key=("piper", "amy"))
    assert abs(admission.cost(("piper", "amy")) - 1 / 8) < 1e-9
    assert abs(admission.cost(KEY) - 0.05) < 1e-9
    assert admission.cost(("kokoro", "af")) in (0.05, 1 / 8)  # nothing of its own: every key's streams


def test_near_stalls_shrink_the_margin_once_per_stream_and_comfort_grows_it_back() -> None:
    admission = _measured(capacity=20.0, margin=0.6)
    thin, _ = admission.admit(KEY)
    beside, _ = admission.admit(KEY)
    assert thin is not None and beside is not None
    admission.near_stall(thin)
    admission.near_stall(thin)  # once per stream
    shrunk = admission.learned
    assert abs(shrunk - 0.6 * SHRINK) < 1e-9
    admission.release(thin, 1.0, least_ahead_s=0.0)  # its end does not count it again
    admission.release(beside, 1.0, least_ahead_s=NEAR_STALL_S * 2)  # neither close nor comfortable
    assert admission.learned == shrunk
    for _ in range(20):
        _stream(admission, 5.0, 1.0, 4.0, least_ahead_s=COMFORT_S, planned=0.5)
    assert admission.learned == shrunk  # comfort in a half-empty plan says nothing of a full one
    for _ in range(20):
        _stream(admission, 5.0, 1.0, 4.0, least_ahead_s=COMFORT_S, planned=FULL)
    assert admission.learned == 0.6  # never past the configured share


def test_a_lone_streams_thin_moment_leaves_the_margin() -> None:
    """Right after a lone stream's small first chunk its buffer is thin by design: nothing admission planned."""
    admission = _measured(capacity=20.0, margin=0.6)
    alone, _ = admission.admit(KEY)
    assert alone is not None
    admission.near_stall(alone)
    assert admission.learned == 0.6


def test_a_known_machine_counts_streams() -> None:
    admission = _measured(capacity=20.0)
    admission.configure(0.65, fallback=2, measure=False)
    assert [admission.admit(KEY)[0] is not None for _ in range(3)] == [True, True, False]
    assert admission.load() is None


def test_a_failed_stream_measures_nothing() -> None:
    admission = Admission()
    ticket = admission.open(KEY)
    ticket.started -= 1.0
    admission.release(ticket, audio_s=0.4, completed=False)
    assert admission.active == 0 and admission.capacity(KEY) is None


def test_retry_after_a_full_machine_is_a_stream_over_those_held() -> None:
    admission = Admission(fallback=2, clock=still)
    for _ in range(3):
        _stream(admission, audio_s=40.0, wall_s=4.0)
    held = [admission.admit(KEY)[0] for _ in range(2)]
    refused, verdict = admission.admit(KEY, cap=2)
    assert all(held) and refused is None and verdict.reason == "cap"
    assert admission.retry_after(verdict) == 2  # a 4 s stream over two held


def test_decisions_are_recorded_with_their_inputs() -> None:
    admission = _measured(capacity=20.0)
    _, verdict = admission.admit(KEY, request_id="r1")
    record = admission.note(KEY, "r1", verdict, waited_s=0.0)
    assert record["admitted"] and record["request_id"] == "r1" and record["measured"]
    assert list(admission.decisions) == [record]
    state = admission.state()
    assert state["held"] == [{"request_id": "r1", "addon": "piper", "voice": "joe", "buffered_s": None}]


def test_short_streams_weigh_by_their_wall_time() -> None:
    admission = Admission(clock=still)
    for _ in range(2):
        _stream(admission, audio_s=40.0, wall_s=5.0, sharing=2.0)  # long streams: 16 audio seconds per second
    for _ in range(3):
        _stream(admission, audio_s=0.75, wall_s=0.5, sharing=2.0)  # short ones that mostly waited: 3
    capacity = admission.capacity(KEY)
    assert capacity is not None and 15.9 < capacity < 16.1  # unweighted: 3


def test_lone_streams_only_bound_the_capacity_until_shared_ones_measure_it() -> None:
    admission = Admission(clock=still)
    for _ in range(5):
        _stream(admission, audio_s=12.0, wall_s=1.0)  # alone: one stream's steps leave a core idle
    assert 11.9 < (admission.capacity(KEY) or 0) < 12.1
    for _ in range(2):
        _stream(admission, audio_s=6.0, wall_s=2.0, sharing=6.0)  # 3x real time beside five others
    assert (admission.capacity(KEY) or 0) < 12.1  # two shared are not enough yet
    _stream(admission, audio_s=6.0, wall_s=2.0, sharing=6.0)
    assert 17.9 < (admission.capacity(KEY) or 0) < 18.1
