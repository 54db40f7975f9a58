"""A sentence is one utterance unless it passes what the model takes; defaults are faithful."""

from __future__ import annotations

import numpy as np

from blocks.addon import Addon, addon_path
from blocks.voice import WHOLE
from tests.conftest import NOISE_OFF, snr_db
from tests.test_piper_parity import piper_ids

# 324 characters, no comma: the earlier frontend cut it at a word (300 characters) and spoke two utterances.
LONG = (
    "The committee reviewed every single proposal that the regional offices had submitted during the "
    "previous fiscal year and then carefully selected the three projects that promised the greatest "
    "lasting benefit to the small rural communities they served before announcing the results at a "
    "packed public meeting in the town hall."
)
OPENING = ("When the morning train finally arrived at the crowded station, the tired travelers gathered their "
           "heavy bags and walked out into the bright sunlight, hoping to find a quiet place to rest.")


def test_limits_come_from_the_addon_and_the_fixed_profile():
    assert Addon(addon_path("piper-joe")).max_sequence_length() == 2048
    assert Addon(addon_path("piper-joe"), {"backend": {"profile": "fixed"}}).max_sequence_length() == 512
    assert Addon(addon_path("hibari")).max_sequence_length() == 402
    lowered = Addon(addon_path("piper-joe"), {"frontend": {"max_utterance_ids": 300}})
    assert lowered.max_sequence_length() == 300


def test_a_long_sentence_is_one_utterance_and_equals_the_monolithic_model(bare_voice, reference_model):
    assert len(LONG) == 324 and "," not in LONG
    (span,) = bare_voice.frontend.split(LONG)
    (ids,) = piper_ids(LONG)
    assert list(bare_voice.frontend.phonemize(span).ids) == ids and 600 < len(ids) < 2048
    feeds = {"input": np.asarray([ids], dtype=np.int64), "input_lengths": np.asarray([len(ids)]),
             "scales": np.asarray([0.0, 1.0, 0.0], dtype=np.float32)}
    reference = reference_model.run(None, feeds)[0].reshape(-1)
    ours = np.concatenate([c.samples for c in bare_voice.stream(LONG, schedule=WHOLE, **NOISE_OFF)])
    assert ours.shape == reference.shape
    assert snr_db(ours, reference) >= 60


def test_the_first_sentence_is_not_cut_unless_asked(voice):
    assert [s.text for s in voice.frontend.split(OPENING + " Then silence.")] == [OPENING, "Then silence."]
    assert voice.addon.config.frontend.first_utterance_chars is None
    assert voice.addon.config.frontend.max_utterance_chars is None
