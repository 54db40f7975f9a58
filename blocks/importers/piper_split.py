"""Cut a piper voice graph into encoders / flow / vocoder networks at the tensors ``piper_graph`` finds.

Cut edges are renamed (``dp_noise``, ``m_p``, ``logs_p``, ``durations``, ``z_p``, ``mask``, ``z``,
``audio``, and ``g`` for multi-speaker voices) and declared with symbolic ``phonemes`` / ``frames`` axes
and a symbolic batch axis in the files (concurrent streams' equal-shape calls may run stacked), while the
addon declares one utterance per call (batch 1).
A multi-speaker voice's encoders also output the speaker embedding ``g`` [1, gin, 1], which the flow and
the vocoder take as a per-utterance input (the graph's own dataflow).
"""

from __future__ import annotations

from typing import Any

import onnx
import onnx.utils
from onnx import TensorProto, helper

from blocks.backends.onnx_split import rename_tensors
from blocks.importers.piper_cut_plan import CutPlan

NETWORKS = ("encoders", "flow", "vocoder")
BATCH = "batch"


def _value_info(name: str, dims: list[int | str], elem: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, dims)


def _declare(model: onnx.ModelProto, shapes: dict[str, list[int | str]]) -> None:
    """Give the cut tensors known types before extraction."""
    graph = model.graph
    keep = [v for v in graph.value_info if v.name not in shapes]
    del graph.value_info[:]
    graph.value_info.extend(keep)
    graph.value_info.extend(_value_info(name, dims) for name, dims in shapes.items())


def _set_io_shapes(model: onnx.ModelProto, shapes: dict[str, list[int | str]]) -> None:
    """Declare the cut inputs and outputs, their batch axis symbolic."""
    for value in [*model.graph.input, *model.graph.output]:
        if value.name in shapes:
            dims = [BATCH, *shapes[value.name][1:]]
            value.CopyFrom(_value_info(value.name, dims, value.type.tensor_type.elem_type))


def extract(model: onnx.ModelProto, plan: CutPlan) -> dict[str, onnx.ModelProto]:
    """The three networks of ``model`` (a shape-inferred copy is made here), renamed and checked."""
    model = onnx.shape_inference.infer_shapes(model)
    renames = plan.renames()
    declared = plan.declared_shapes()
    _declare(model, {source: declared[name] for source, name in renames.items() if name in declared})
    extractor = onnx.utils.Extractor(model)
    networks: dict[str, onnx.ModelProto] = {}
    for network, (inputs, outputs) in plan.cuts().items():
        part = extractor.extract_model(inputs, outputs)
        rename_tensors(part, renames)
        _set_io_shapes(part, declared)
        part.graph.name = f"piper_{network}"
        onnx.checker.check_model(part)
        networks[network] = part
    return networks


def interface(model: onnx.ModelProto) -> dict[str, Any]:
    """A network's inputs (name, dtype, shape) and outputs, as ``addon.json`` declares them."""
    def dims(value: onnx.ValueInfoProto) -> list[int | str]:
        found = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value.type.tensor_type.shape.dim]
        return [1, *found[1:]] if len(found) > 1 else found  # a call is one utterance: batch 1

    def dtype(value: onnx.ValueInfoProto) -> str:
        return str(helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))

    inputs: list[dict[str, Any]] = [{"name": v.name, "dtype": dtype(v), "shape": dims(v)} for v in model.graph.input]
    for spec in inputs:
        if spec["name"] == "dp_noise":
            spec["random"] = "normal"
    return {"inputs": inputs, "outputs": [v.name for v in model.graph.output]}
