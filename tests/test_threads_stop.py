"""Everything stops: the threads a voice's networks and a replica's compute pool start end on close."""

from __future__ import annotations

import asyncio
import threading

import pytest

from blocks.backends.compile import compile_fixed, is_current
from blocks.voice import Voice
from deployments.steps import Steps
from tests.conftest import NOISE_OFF

BATCHED = {"backend": {"profile": "fixed", "batch": {"max_size": 4, "max_wait_ms": 1}}}


def _threads() -> set[threading.Thread]:
    return set(threading.enumerate())


def test_a_batching_voice_leaves_no_thread_after_close() -> None:
    before = _threads()
    voice = Voice.load("piper-joe", overrides=BATCHED, warm_up=False)
    if not is_current(voice.addon):
        compile_fixed(voice.addon)
    voice.synthesize("Batched, then closed.", **NOISE_OFF)
    started = {t.name for t in _threads() - before}
    assert any(name.startswith("batch-") for name in started), started  # the batching workers ran
    voice.close()
    assert not {t for t in _threads() - before if t.is_alive()}


def test_a_closed_voice_refuses_to_run_rather_than_hang() -> None:
    voice = Voice.load("piper-joe", overrides=BATCHED, warm_up=False)
    voice.synthesize("Once.", **NOISE_OFF)
    voice.close()
    with pytest.raises(Exception, match="closed"):
        voice.synthesize("Twice.", **NOISE_OFF)


def test_a_replicas_compute_pool_ends_its_threads_on_close() -> None:
    before = _threads()
    steps = Steps(threads=4, name="test-steps")

    async def work() -> list[int]:
        return list(await asyncio.gather(*(steps.run(None, lambda n=n: n * n) for n in range(8))))

    assert asyncio.run(work()) == [n * n for n in range(8)]
    assert any(t.name.startswith("test-steps") for t in _threads() - before)
    steps.close()
    assert not {t for t in _threads() - before if t.is_alive()}
    with pytest.raises(Exception, match="shutting down"):
        asyncio.run(work())
