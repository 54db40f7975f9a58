"""Chunked equals whole: an addon's streamed audio equals its whole-utterance audio (>= 60 dB, the same
length). The stacks' contexts cover the networks' receptive fields; a context cut short shows here.

The test takes 16 of the 216 varied sentences (the longest, where chunks and contexts matter most, and a
spread of the rest); ``python -m bench.chunked_vs_whole`` measures every one of them for every addon.
"""

from __future__ import annotations

import pytest

from bench.chunked_vs_whole import FLOOR_DB, chunked_and_whole, sentences, snr_db
from blocks.voice import Voice


def chosen() -> list[str]:
    found = sentences()
    longest = sorted(found, key=len)[-6:]
    rest = [text for text in found if text not in longest]
    return longest + rest[:: max(1, len(rest) // 10)][:10]


@pytest.mark.parametrize("addon", ["piper-joe", "hibari", "legacy-ar"])
def test_chunked_audio_equals_whole_utterance_audio(addon: str) -> None:
    voice = Voice.load(addon, warm_up=False)
    for text in chosen():
        chunked, whole = chunked_and_whole(voice, text)
        assert chunked.shape == whole.shape, text
        assert snr_db(chunked, whole) >= FLOOR_DB, text
