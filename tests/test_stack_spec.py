"""The stack format: the seed example parses and builds; bad specs fail with a path and valid names."""

from __future__ import annotations

import pytest

from blocks import parse_stack
from blocks.containers import SequenceBlockContainer, StreamablePipeline, StreamableStack
from blocks.errors import StackError
from blocks.spec import build_stack
from tests.conftest import voice_with_stack

SEED_EXAMPLE = [
    {
        "type": "StreamablePipeline",
        "sequence_block": {"type": "Encoders"},
        "streamable_block": {
            "type": "StreamableStack",
            "stack": [{"type": "Upsampler"}, {"type": "Decoder"}],
        },
    }
]


def test_seed_example_parses_and_builds(voice):
    nodes = parse_stack(SEED_EXAMPLE)
    (pipeline,) = build_stack(nodes, voice.addon.context())
    assert isinstance(pipeline, StreamablePipeline)
    assert isinstance(pipeline.sequence_block, SequenceBlockContainer)
    assert isinstance(pipeline.streamable_block, StreamableStack)
    assert [b.type_name for b in pipeline.streamable_block.stack] == ["Upsampler", "Decoder"]
    assert [b.options.network for b in pipeline.sequence_block.children()] == ["encoders"]


def test_seed_example_streams_frames():
    voice = voice_with_stack("piper-joe", [*SEED_EXAMPLE, {"type": "Vocoder"}])
    audio = voice.synthesize("It works.", noise_scale=0.0, noise_w=0.0).audio
    assert audio.shape[0] > 0.3 * voice.sample_rate
    assert 0.01 < float(abs(audio).max()) <= 1.0


def test_a_single_object_is_a_one_block_stack():
    assert len(parse_stack(SEED_EXAMPLE[0])) == 1


@pytest.mark.parametrize(
    ("spec", "path", "words"),
    [
        ([{"type": "Upsamplr"}], "$.stack[0].type", ["unknown type 'Upsamplr'", "Upsampler", "Decoder"]),
        ([{"type": "StreamablePipeline", "sequence_block": {"type": "Encoders"}}], "$.stack[0]",
         ["streamable_block"]),
        ([{"type": "Decoder", "contxt": 3}], "$.stack[0].contxt", ["Extra inputs"]),
        ([{"type": "Decoder", "context": -1}], "$.stack[0].context", ["greater than or equal"]),
        ([{"type": "Encoders"}], "$.stack[0].type", ["not a StreamableBlock", "Upsampler"]),
        ([SEED_EXAMPLE[0] | {"sequence_block": {"type": "Upsampler"}}], "$.stack[0].sequence_block.type",
         ["not a SequenceBlock", "Encoders"]),
        ([{"type": "StreamableStack", "stack": [{"type": "Vocoder"}, {"name": "x"}]}], "$.stack[0].stack[1]",
         ["missing 'type'"]),
        ([], "$.stack", ["empty"]),
        (["Decoder"], "$.stack[0]", ["expected an object"]),
    ],
)
def test_bad_specs_name_the_path_and_valid_types(spec, path, words):
    with pytest.raises(StackError) as caught:
        parse_stack(spec)
    assert caught.value.path == path
    for word in words:
        assert word in str(caught.value)
