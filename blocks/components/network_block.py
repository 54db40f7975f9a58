"""Feed one network from the utterance's tensors (drawing seeded noise where declared)."""

from __future__ import annotations

import zlib

import numpy as np

from blocks.backends import Network
from blocks.config import TensorSpec
from blocks.core import Request, Tensors


def _salt(name: str) -> int:
    return zlib.crc32(name.encode())


def bind_shapes(specs: list[TensorSpec], tensors: Tensors) -> dict[str, int]:
    """Bind symbolic dims (e.g. ``phonemes``) from the actual shapes of the given inputs."""
    bound: dict[str, int] = {}
    for spec in specs:
        if spec.random or spec.name not in tensors:
            continue
        for dim, size in zip(spec.shape, np.shape(tensors[spec.name]), strict=False):
            if isinstance(dim, str):
                bound.setdefault(dim, int(size))
    return bound


def feeds_for(network: Network, tensors: Tensors, request: Request) -> dict[str, np.ndarray]:
    """The exact inputs of ``network``: read from ``tensors`` or drawn from the seeded generator."""
    specs = network.config.inputs
    bound = bind_shapes(specs, tensors)
    feeds: dict[str, np.ndarray] = {}
    for spec in specs:
        if spec.random == "normal":
            shape = tuple(bound[d] if isinstance(d, str) else d for d in spec.shape)
            rng = request.rng(_salt(f"{network.name}/{spec.name}"))
            feeds[spec.name] = rng.standard_normal(shape, dtype=np.float32)
        elif spec.name in tensors:
            feeds[spec.name] = np.asarray(tensors[spec.name], dtype=spec.dtype)
        else:
            raise KeyError(
                f"network {network.name!r} needs tensor {spec.name!r}; available: {sorted(tensors)}"
            )
    return feeds
