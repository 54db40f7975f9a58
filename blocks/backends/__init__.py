"""Network backends. One is chosen per network when the addon loads; blocks only call ``run``."""

from __future__ import annotations

from pathlib import Path

from blocks.backends.base import Network
from blocks.config import BackendConfig, NetworkConfig
from blocks.errors import NetworkLoadError

__all__ = ["Network", "NetworkLoadError", "load_network"]


def load_network(name: str, config: NetworkConfig, path: Path, backend: BackendConfig) -> Network:
    """Load the network file at ``path`` (already checked to lie inside its addon)."""
    if not path.is_file():
        raise NetworkLoadError(name, path, "file is missing")
    if config.format == "onnx":
        if backend.kind != "onnxruntime":
            raise NetworkLoadError(name, path, f"format onnx needs backend onnxruntime, not {backend.kind}")
        from blocks.backends.onnx import OnnxNetwork

        return OnnxNetwork(name, config, path, backend)
    if backend.kind == "neuron":
        from blocks.backends.neuron import NeuronNetwork

        return NeuronNetwork(name, config, path, backend)
    if backend.kind != "torch":
        raise NetworkLoadError(name, path, f"format {config.format} needs backend torch, not {backend.kind}")
    from blocks.backends.torch import TorchNetwork

    return TorchNetwork(name, config, path, backend)
