"""Bad input gets a clear error; odd characters never crash; addon names cannot escape."""

from __future__ import annotations

import numpy as np
import pytest

from blocks import load_addon
from blocks.errors import AddonError, InputError
from tests.conftest import NOISE_OFF


@pytest.mark.parametrize("text", ["", "   ", "\n\t  \n"])
def test_empty_text_is_refused(voice, text):
    with pytest.raises(InputError, match="empty"):
        list(voice.stream(text))


def test_text_over_the_limit_is_refused(voice):
    limit = voice.addon.config.frontend.max_chars
    with pytest.raises(InputError, match=f"limit is {limit}"):
        list(voice.stream("a " * (limit // 2 + 1)))


@pytest.mark.parametrize(
    "text",
    [
        "Hello 😀 world ✨!",
        "Bell\x07 and\x00 nul\x1b[31m red",
        "Tab\tand\u200bzero width\u2028separator",
        "Mixed مرحبا and שלום here.",
        "<speak>Tags are <break time='1s'/> read as text.</speak>",
    ],
)
def test_odd_characters_are_dropped_or_spelled_never_a_crash(voice, text):
    result = voice.synthesize(text, **NOISE_OFF)
    assert result.audio.shape[0] > 0 and np.isfinite(result.audio).all()


@pytest.mark.parametrize("text", ["😀😀😀", "...", "!?"])
def test_nothing_sayable_is_a_clear_error(voice, text):
    try:
        result = voice.synthesize(text, **NOISE_OFF)
    except InputError as error:
        assert "nothing that can be spoken" in str(error)
    else:  # espeak may spell a symbol out: then there must be real audio
        assert result.audio.shape[0] > 0


@pytest.mark.parametrize(
    ("option", "value"),
    [("length_scale", 0.0), ("length_scale", float("nan")), ("noise_scale", -1.0), ("noise_w", 5.0),
     ("seed", -1), ("seed", 1.5)],
)
def test_bad_options_name_the_option(voice, option, value):
    with pytest.raises(InputError, match=option):
        list(voice.stream("Hello.", **{option: value}))


def test_unknown_mark_type(voice):
    with pytest.raises(InputError, match=r"marks.*viseme"):
        list(voice.stream("Hello.", marks=("viseme",)))


@pytest.mark.parametrize("name", ["../piper-joe", "piper-joe/..", "a/b", "/etc", "..", "piper\\joe", ""])
def test_addon_names_with_paths_are_refused(name):
    with pytest.raises(AddonError, match="invalid addon name"):
        load_addon(name)


def test_unknown_addon_lists_the_known_ones():
    with pytest.raises(AddonError, match="piper-joe"):
        load_addon("no-such-voice")
