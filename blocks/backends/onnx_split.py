"""Cut an ONNX graph into networks at named tensors, renaming the cut edges (used by addon builds)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import onnx
import onnx.utils

Cuts = dict[str, tuple[list[str], list[str]]]
"""Output file name -> (input tensor names, output tensor names) in the source graph."""


def rename_tensors(model: onnx.ModelProto, renames: dict[str, str]) -> None:
    """Rename graph inputs, outputs and node edges in place."""
    graph = model.graph
    for value in [*graph.input, *graph.output, *graph.value_info]:
        value.name = renames.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]


def split_graph(source: Path, out_dir: Path, cuts: Cuts, renames: dict[str, str],
                edit: Callable[[str, onnx.ModelProto], None] | None = None) -> None:
    """Extract each cut of ``source`` into ``out_dir``, apply ``edit`` (if any), rename, check, save."""
    for file_name, (inputs, outputs) in cuts.items():
        with tempfile.TemporaryDirectory() as tmp:
            cut_path = Path(tmp) / file_name
            onnx.utils.extract_model(str(source), str(cut_path), inputs, outputs)
            model = onnx.load(str(cut_path))
        if edit is not None:
            edit(file_name, model)
        rename_tensors(model, renames)
        onnx.checker.check_model(model)
        onnx.save(model, str(out_dir / file_name))
