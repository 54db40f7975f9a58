"""Admission from measured capacity: the fallback before any measure, the limit after, Retry-After."""

from __future__ import annotations

from blocks.admission import Admission


def _stream(admission: Admission, cap: int, audio_s: float, wall_s: float) -> None:
    ticket = admission.admit(cap)
    assert ticket is not None
    ticket.started -= wall_s  # as if it had produced for wall_s seconds, alone
    ticket.area -= wall_s
    admission.release(ticket, audio_s)


def test_before_any_measure_the_fallback_holds() -> None:
    admission = Admission(fallback=3)
    tickets = [admission.admit(cap=16) for _ in range(4)]
    assert [t is not None for t in tickets] == [True, True, True, False]


def test_after_measuring_the_limit_follows_capacity_times_margin() -> None:
    admission = Admission(margin=0.75, fallback=16)
    for _ in range(3):
        _stream(admission, 16, audio_s=8.1, wall_s=1.0)  # about 8 audio seconds per second, alone
    assert admission.capacity is not None and 7.9 < admission.capacity < 8.2
    assert admission.limit(cap=16) == 6
    held = [admission.admit(16) for _ in range(7)]
    assert sum(t is not None for t in held) == 6 and held[-1] is None
    assert admission.limit(cap=4) == 4  # the configured cap still bounds it


def test_streams_sharing_the_machine_count_their_share() -> None:
    now = [100.0]
    admission = Admission(margin=1.0, fallback=16, clock=lambda: now[0])
    beside = [admission.admit(16) for _ in range(3)]  # three streams produce alongside the measured one
    ticket = admission.admit(16)
    assert ticket is not None and all(beside)
    now[0] += 0.1
    admission.release(ticket, audio_s=0.3)  # 3x real time while four streams shared the machine
    (rate, wall), = admission.samples
    assert abs(rate - 12.0) < 1e-9 and abs(wall - 0.1) < 1e-9


def test_retry_after_comes_from_the_measured_stream_time() -> None:
    admission = Admission(fallback=16)
    assert admission.retry_after() == 1.0
    for _ in range(3):
        _stream(admission, 16, audio_s=40.0, wall_s=4.0)
    held = [admission.admit(16) for _ in range(2)]
    assert all(held)
    assert abs(admission.retry_after() - 2.0) < 0.2  # a 4 s stream over two held


def test_a_failed_or_cancelled_stream_measures_nothing() -> None:
    admission = Admission(fallback=16)
    ticket = admission.admit(16)
    assert ticket is not None
    ticket.started -= 10.0  # ten seconds for 0.4 s of audio: a stream stuck on a dead stage
    admission.release(ticket, audio_s=0.4, completed=False)
    assert admission.active == 0 and not admission.samples


def test_load_is_streams_held_over_the_measured_limit() -> None:
    admission = Admission(margin=0.75, fallback=16)
    assert admission.load(cap=16) is None  # nothing measured: no signal to scale by
    for _ in range(3):
        _stream(admission, 16, audio_s=8.1, wall_s=1.0)
    tickets = [admission.open() for _ in range(9)]  # a stage counts past the limit; it never refuses
    assert admission.active == 9 and admission.load(cap=16) == 9 / 6
    for ticket in tickets:
        admission.release(ticket, 0.0, completed=False)
    assert admission.load(cap=16) == 0.0


def test_short_streams_weigh_by_their_wall_time() -> None:
    admission = Admission(margin=0.75, fallback=16)
    for _ in range(2):
        _stream(admission, 16, audio_s=80.0, wall_s=5.0)  # long streams: 16 audio seconds per second
    for _ in range(3):
        _stream(admission, 16, audio_s=1.5, wall_s=0.5)  # short ones that mostly waited for their start: 3
    assert admission.capacity is not None and 15.9 < admission.capacity < 16.1  # unweighted median: 3


def _shared_stream(admission: Admission, audio_s: float, wall_s: float, sharing: float) -> None:
    ticket = admission.open()
    ticket.started -= wall_s
    ticket.area -= wall_s * sharing  # as if ``sharing`` streams had produced beside it all along
    admission.release(ticket, audio_s)


def test_lone_streams_only_bound_the_capacity_until_shared_ones_measure_it() -> None:
    admission = Admission(margin=0.65, fallback=16)
    for _ in range(5):
        _stream(admission, 16, audio_s=12.0, wall_s=1.0)  # alone: one stream's steps leave a core idle
    assert admission.capacity is not None and 11.9 < admission.capacity < 12.1
    for _ in range(2):
        _shared_stream(admission, audio_s=6.0, wall_s=2.0, sharing=6.0)  # 3x real time beside five others
    assert admission.capacity is not None and admission.capacity < 12.1  # two shared are not enough yet
    _shared_stream(admission, audio_s=6.0, wall_s=2.0, sharing=6.0)
    assert admission.capacity is not None and 17.9 < admission.capacity < 18.1
