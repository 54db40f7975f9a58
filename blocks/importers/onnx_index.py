"""A read-only index over an ONNX graph: producers, consumers, constants, shapes and value dependence."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import onnx
from onnx import numpy_helper

RANDOM_OPS = frozenset({"RandomNormalLike", "RandomNormal", "RandomUniformLike", "RandomUniform"})
SHAPE_ONLY_OPS = frozenset({"Shape", "Size"})
"""Ops whose output depends on their input's shape, never on its values."""
LAYOUT_OPS = frozenset({"Transpose", "Identity", "Reshape", "Squeeze", "Unsqueeze", "Cast"})

Dim = int | str | None


class GraphIndex:
    """Producers, consumers, constant values, inferred shapes and value sources of every tensor.

    A tensor's *sources* are the graph inputs and random nodes its values depend on (``Shape`` and
    the ``*Like`` random ops pass on no value dependence). ``scales`` is refined to ``scales[i]`` where
    it is indexed by a constant.
    """

    def __init__(self, model: onnx.ModelProto, infer_shapes: bool = True) -> None:
        if infer_shapes:
            model = onnx.shape_inference.infer_shapes(model)
        self.model = model
        self.graph = model.graph
        self.nodes: list[onnx.NodeProto] = list(self.graph.node)
        self.index = {id(node): i for i, node in enumerate(self.nodes)}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.nodes:
            for name in node.output:
                if name:
                    self.producer[name] = node
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)
        self.inputs = [value.name for value in self.graph.input]
        self.outputs = [value.name for value in self.graph.output]
        self.initializers = {tensor.name: tensor for tensor in self.graph.initializer}
        self.shapes: dict[str, list[Dim]] = {}
        for value in [*self.graph.input, *self.graph.output, *self.graph.value_info]:
            if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
                self.shapes[value.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                                           for d in value.type.tensor_type.shape.dim]
        self._constants: dict[str, np.ndarray] = {}
        self.sources = self._value_sources()

    # --- constants -------------------------------------------------------------------------------
    def constant(self, name: str) -> np.ndarray | None:
        """The value of an initializer or ``Constant`` output (through ``Identity``), else None."""
        if name in self._constants:
            return self._constants[name]
        value: np.ndarray | None = None
        if name in self.initializers:
            value = numpy_helper.to_array(self.initializers[name])
        elif name in self.producer:
            node = self.producer[name]
            if node.op_type == "Constant":
                attr = next((a for a in node.attribute if a.name == "value"), None)
                value = numpy_helper.to_array(attr.t) if attr is not None else None
            elif node.op_type == "Identity":
                value = self.constant(node.input[0])
        if value is not None:
            self._constants[name] = value
        return value

    def is_constant(self, name: str) -> bool:
        return not name or self.constant(name) is not None

    @staticmethod
    def attr(node: onnx.NodeProto, name: str, default: object = None) -> object:
        """An attribute's value, ``default`` when absent."""
        for attribute in node.attribute:
            if attribute.name == name:
                return onnx.helper.get_attribute_value(attribute)
        return default

    # --- value dependence ------------------------------------------------------------------------
    def _value_sources(self) -> dict[str, frozenset[str]]:
        sources: dict[str, frozenset[str]] = {name: frozenset({name}) for name in self.inputs}
        empty: frozenset[str] = frozenset()
        for i, node in enumerate(self.nodes):
            if node.op_type in RANDOM_OPS:
                found = frozenset({f"random:{i}"})
            elif node.op_type in SHAPE_ONLY_OPS:
                found = empty
            elif node.op_type in ("Gather", "Slice") and node.input[0] == "scales":
                position = self.constant(node.input[1])
                found = frozenset({f"scales[{int(position.reshape(-1)[0])}]"}) if position is not None \
                    and position.size == 1 else frozenset({"scales"})
            else:
                found = frozenset().union(*(sources.get(name, empty) for name in node.input if name))
            for name in node.output:
                if name:
                    sources[name] = found
        return sources

    def depends(self, name: str, source: str) -> bool:
        """Whether the values of ``name`` depend on ``source`` (a graph input, ``random:i``, ``scales[i]``)."""
        return source in self.sources.get(name, frozenset())

    # --- topology --------------------------------------------------------------------------------
    def ancestors(self, names: Iterable[str], stop: Iterable[str] = ()) -> set[int]:
        """Indices of the nodes that ``names`` are computed from, not walking past ``stop`` tensors."""
        stop_set = set(stop)
        found: set[int] = set()
        stack = [name for name in names if name not in stop_set]
        while stack:
            node = self.producer.get(stack.pop())
            if node is None or self.index[id(node)] in found:
                continue
            found.add(self.index[id(node)])
            stack.extend(name for name in node.input if name and name not in stop_set)
        return found

    def descendants(self, names: Iterable[str]) -> set[int]:
        """Indices of the nodes computed (by value or shape) from ``names``."""
        found: set[int] = set()
        stack = list(names)
        while stack:
            for node in self.consumers.get(stack.pop(), []):
                i = self.index[id(node)]
                if i not in found:
                    found.add(i)
                    stack.extend(name for name in node.output if name)
        return found

    def nodes_of(self, op_type: str, among: Iterable[int] | None = None) -> list[onnx.NodeProto]:
        """Nodes of ``op_type`` in graph order (only those with index in ``among`` when given)."""
        allowed = None if among is None else set(among)
        return [n for i, n in enumerate(self.nodes) if n.op_type == op_type and (allowed is None or i in allowed)]

    def walk_back(self, name: str, through: frozenset[str] = LAYOUT_OPS) -> Iterator[str]:
        """``name`` and the tensors behind it while each is made by a one-data-input op in ``through``."""
        while True:
            yield name
            node = self.producer.get(name)
            if node is None or node.op_type not in through:
                return
            name = node.input[0]

    def shape(self, name: str) -> list[Dim] | None:
        return self.shapes.get(name)
