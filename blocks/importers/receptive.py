"""Receptive field of a frame network (flow, vocoder), derived from its ONNX graph.

Static: for N input frames, every tensor that depends on the frame input carries, per position along
its time axis, the first and last input frame it depends on. Conv / ConvTranspose (kernel, dilation,
stride, pads, output_padding along time) widen and rescale those intervals; element-wise and
channel-only ops merge them; ops that mix time any other way are refused. The output's intervals give
the frames of context each side that make a chunk's output exact.

A stack's ``context`` for a frame network should cover its field; an importer derives it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from blocks.errors import VoiceImportError
from blocks.importers.onnx_index import GraphIndex

NONE_DEP = 1 << 40  # "depends on no frame": lo = +BIG, hi = -BIG

ELEMENTWISE = frozenset({
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Where", "Tanh", "Sigmoid", "LeakyRelu", "Relu", "Exp",
    "Log", "Neg", "Abs", "Sqrt", "Erf", "Softplus", "Clip", "Cast", "Identity", "Sin", "Cos", "Reciprocal",
    "Equal", "Less", "Greater", "Not", "And", "Or", "Floor", "Ceil", "Round", "Sign", "PRelu", "Elu", "Gelu",
})
NO_VALUES = frozenset({"Shape", "Size", "ConstantOfShape", "Constant"})


class UnsupportedGraph(VoiceImportError):
    """An op mixes the time axis in a way the static analysis does not model."""


@dataclass
class Dep:
    """Per time position: first (``lo``) and last (``hi``) input frame a tensor's values depend on."""

    axis: int
    """Time axis, counted from the end (-1 = last)."""
    lo: np.ndarray
    hi: np.ndarray

    def merge(self, other: Dep) -> Dep:
        if other.axis != self.axis:
            raise UnsupportedGraph(f"time axes {self.axis} and {other.axis} meet element-wise")
        if other.lo.size != self.lo.size:
            if 1 in (other.lo.size, self.lo.size):
                big, small = (self, other) if self.lo.size > 1 else (other, self)
                return Dep(self.axis, np.minimum(big.lo, small.lo[0]), np.maximum(big.hi, small.hi[0]))
            raise UnsupportedGraph(f"time lengths {self.lo.size} and {other.lo.size} meet element-wise")
        return Dep(self.axis, np.minimum(self.lo, other.lo), np.maximum(self.hi, other.hi))


@dataclass(frozen=True)
class Field:
    """Receptive field of a frame network, in input frames."""

    left: int
    """Most input frames before an output's own frame that it depends on."""
    right: int
    """Most input frames after it."""
    scale: int
    """Output elements per input frame along time (1 for the flow, the hop for the vocoder)."""

    @property
    def context(self) -> int:
        """Frames of context per side that make chunked output exact."""
        return max(self.left, self.right)


def _rank(idx: GraphIndex, name: str) -> int | None:
    dims = idx.shape(name)
    return None if dims is None else len(dims)


def _ints(idx: GraphIndex, node: onnx.NodeProto, attr: str, position: int) -> list[int] | None:
    """An int list given as attribute (older opsets) or as constant input ``position``."""
    value = idx.attr(node, attr)
    if value is None and len(node.input) > position and node.input[position]:
        found = idx.constant(node.input[position])
        value = None if found is None else found.reshape(-1).tolist()
    return None if value is None else [int(v) for v in value]  # type: ignore[union-attr]


def _conv(node: onnx.NodeProto, idx: GraphIndex, dep: Dep, transpose: bool) -> Dep:
    weight = idx.constant(node.input[1])
    kernel = list(idx.attr(node, "kernel_shape", []) or ([] if weight is None else weight.shape[2:]))
    if len(kernel) != 1 or dep.axis != -1:
        raise UnsupportedGraph(f"{node.op_type} is not 1-D along the time axis")
    if idx.attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise UnsupportedGraph(f"{node.op_type} uses auto_pad")
    k = int(kernel[0])
    d = int(idx.attr(node, "dilations", [1])[0])  # type: ignore[index]
    s = int(idx.attr(node, "strides", [1])[0])  # type: ignore[index]
    begin, end = (int(p) for p in idx.attr(node, "pads", [0, 0]))  # type: ignore[union-attr]
    n = dep.lo.size
    taps = np.arange(k) * d
    if not transpose:
        out = (n + begin + end - d * (k - 1) - 1) // s + 1
        src = np.arange(out)[:, None] * s - begin + taps[None, :]
        valid = (src >= 0) & (src < n)
        clipped = np.clip(src, 0, n - 1)
        lo = np.where(valid, dep.lo[clipped], NONE_DEP).min(axis=1)
        hi = np.where(valid, dep.hi[clipped], -NONE_DEP).max(axis=1)
        return Dep(-1, lo, hi)
    extra = int(idx.attr(node, "output_padding", [0])[0])  # type: ignore[index]
    out = s * (n - 1) + extra + d * (k - 1) + 1 - begin - end
    lo, hi = np.full(out, NONE_DEP), np.full(out, -NONE_DEP)
    dst = np.arange(n)[:, None] * s - begin + taps[None, :]
    valid = (dst >= 0) & (dst < out)
    rows = np.broadcast_to(np.arange(n)[:, None], dst.shape)
    np.minimum.at(lo, dst[valid], dep.lo[rows[valid]])
    np.maximum.at(hi, dst[valid], dep.hi[rows[valid]])
    return Dep(-1, lo, hi)


def _time_axis_hit(axes: list[int], dep: Dep, rank: int | None) -> bool:
    if rank is None:
        return any(a == dep.axis or a == -1 for a in axes) if dep.axis == -1 else True
    return (rank + dep.axis) in [a % rank for a in axes]


def _propagate(node: onnx.NodeProto, idx: GraphIndex, deps: dict[str, Dep]) -> list[Dep | None]:
    ins = [deps.get(name) for name in node.input]
    live = [d for d in ins if d is not None]
    op = node.op_type
    if not live or op in NO_VALUES:
        return [None] * len(node.output)
    rank = _rank(idx, node.input[0])
    if op in ELEMENTWISE:
        merged = live[0]
        for other in live[1:]:
            merged = merged.merge(other)
        return [merged]
    if op in ("Conv", "ConvTranspose"):
        if ins[0] is None:
            raise UnsupportedGraph(f"{op} weights depend on the frames")
        return [_conv(node, idx, ins[0], op == "ConvTranspose")]
    if op == "Slice":
        axes = _ints(idx, node, "axes", 3)
        starts, ends = _ints(idx, node, "starts", 1), _ints(idx, node, "ends", 2)
        steps = _ints(idx, node, "steps", 4) or [1] * len(starts or [])
        if axes is None:
            axes = list(range(len(starts or [])))
        if not _time_axis_hit(axes, live[0], rank):
            return [live[0]]
        where = next(i for i, a in enumerate(axes) if rank is not None and a % rank == rank + live[0].axis)
        part = slice(starts[where], ends[where], steps[where])  # type: ignore[index]
        return [Dep(live[0].axis, live[0].lo[part], live[0].hi[part])]
    if op == "Split":
        if _time_axis_hit([int(idx.attr(node, "axis", 0))], live[0], rank):  # type: ignore[arg-type]
            raise UnsupportedGraph("Split along time")
        return [live[0]] * len(node.output)
    if op == "Concat":
        if _time_axis_hit([int(idx.attr(node, "axis", 0))], live[0], rank):  # type: ignore[arg-type]
            raise UnsupportedGraph("Concat along time")
        merged = live[0]
        for other in live[1:]:
            merged = merged.merge(other)
        return [merged]
    if op in ("Unsqueeze", "Squeeze"):
        axes = _ints(idx, node, "axes", 1) or []
        out_rank = _rank(idx, node.output[0])
        if rank is None or out_rank is None:
            raise UnsupportedGraph(f"{op} without known ranks")
        position = rank + live[0].axis
        if op == "Unsqueeze":
            kept = [i for i in range(out_rank) if i not in [a % out_rank for a in axes]]
            return [Dep(kept[position] - out_rank, live[0].lo, live[0].hi)]
        if position in [a % rank for a in axes]:
            raise UnsupportedGraph("Squeeze of the time axis")
        return [Dep(live[0].axis, live[0].lo, live[0].hi)]
    if op == "Transpose":
        perm = list(idx.attr(node, "perm", []))  # type: ignore[arg-type]
        if rank is None or not perm:
            raise UnsupportedGraph("Transpose without known rank")
        return [Dep(perm.index(rank + live[0].axis) - rank, live[0].lo, live[0].hi)]
    if op.startswith("Reduce") or op in ("Softmax", "LogSoftmax"):
        axes = _ints(idx, node, "axes", 1) or ([int(idx.attr(node, "axis", -1))] if "Softmax" in op else [])  # type: ignore[arg-type]
        if not axes or _time_axis_hit(axes, live[0], rank):
            raise UnsupportedGraph(f"{op} over time")
        if op.startswith("Reduce") and not idx.attr(node, "keepdims", 1):
            raise UnsupportedGraph(f"{op} without keepdims")
        return [live[0]]
    raise UnsupportedGraph(f"op {op} on a frame-dependent tensor is not modelled")


def static_field(model: onnx.ModelProto | str | Path, frame_input: str | None = None, frames: int = 96) -> Field:
    """Receptive field from the graph's structure (grows ``frames`` until the field fits well inside)."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    idx = GraphIndex(model)
    name = frame_input or idx.inputs[0]
    output = idx.outputs[0]
    while True:
        deps: dict[str, Dep] = {name: Dep(-1, np.arange(frames), np.arange(frames))}
        for node in idx.nodes:
            for out, dep in zip(node.output, _propagate(node, idx, deps), strict=True):
                if dep is not None:
                    deps[out] = dep
        if output not in deps:
            raise UnsupportedGraph(f"output {output} does not depend on {name}")
        result = deps[output]
        if result.lo.size % frames:
            raise UnsupportedGraph(f"{result.lo.size} outputs for {frames} frames is not a whole multiple")
        scale = result.lo.size // frames
        own = np.arange(result.lo.size) // scale
        used = result.hi >= 0
        left, right = int((own - result.lo)[used].max()), int((result.hi - own)[used].max())
        if 3 * max(left, right) < frames:
            return Field(left, right, scale)
        frames *= 2
