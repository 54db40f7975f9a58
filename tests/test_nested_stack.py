"""Any StreamableBlock may be a whole nested stack: built and streamed like any other block."""

from __future__ import annotations

import numpy as np

from blocks import load_addon
from blocks.containers import StreamableStack
from tests.conftest import NOISE_OFF, bare_stack, voice_with_stack


def test_nested_stacks_stream_the_same_audio_as_the_flat_stack():
    flat = bare_stack("piper-joe")
    pipeline, vocoder = flat
    nested = [
        {**pipeline, "streamable_block": {"type": "StreamableStack", "stack": [
            pipeline["streamable_block"]["stack"][0],
            {"type": "StreamableStack", "stack": [pipeline["streamable_block"]["stack"][1]]},
        ]}},
        {"type": "StreamableStack", "stack": [vocoder, {"type": "StreamableStack", "stack": [{"type": "Gain"}]}]},
    ]
    text = "Stacks inside stacks."
    a = voice_with_stack("piper-joe", flat)
    b = voice_with_stack("piper-joe", nested)
    chunks = list(b.stream(text, **NOISE_OFF))
    assert len(chunks) > 1
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), a.synthesize(text, **NOISE_OFF).audio)


def test_legacy_ar_streams_through_its_nested_universal_vocoder():
    voice = load_addon("legacy-ar")
    assert isinstance(voice.engine.blocks[1], StreamableStack)
    assert [b.type_name for b in voice.engine.blocks[1].stack] == ["Decoder", "Vocoder"]
    chunks = list(voice.stream("The universal vocoder is a nested stack."))
    assert len(chunks) > 1 and sum(c.samples.shape[0] for c in chunks) > voice.sample_rate
