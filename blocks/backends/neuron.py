"""AWS Neuron (Inferentia2 / Trainium) adapter.

On an Inf2 node with the Neuron driver and ``torch-neuronx`` installed, ``voxstack addons compile
NAME --profile fixed`` traces each torch network at every profile size with ``torch_neuronx.trace``;
the service then loads those artefacts with ``torch.jit.load`` onto the NeuronCores. Without
``torch_neuronx`` the adapter refuses with a clear message instead of falling back silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from blocks.backends.base import Network, Tally
from blocks.config import BackendConfig, NetworkConfig
from blocks.errors import DeviceUnavailable, NetworkLoadError

MISSING = (
    "backend kind 'neuron' needs the AWS Neuron SDK: torch_neuronx is not importable here. "
    "Run on an Inf2/Trn1 instance with the Neuron driver and `pip install torch-neuronx "
    "--extra-index-url https://pip.repos.neuron.amazonaws.com`, or set backend kind to "
    "'onnxruntime' or 'torch'"
)


def require_neuron() -> Any:
    try:
        import torch_neuronx
    except ImportError as error:
        raise DeviceUnavailable(MISSING) from error
    return torch_neuronx


def neuron_trace(module: Any, example: tuple, target: Path) -> None:
    """Compile ``module`` for NeuronCores at the example's exact shapes and save it."""
    import torch

    torch_neuronx = require_neuron()
    compiled = torch_neuronx.trace(module, example)
    torch.jit.save(compiled, str(target))


class NeuronNetwork(Network):
    """A network compiled for NeuronCores (static shapes only: use the fixed profile)."""

    def __init__(self, name: str, config: NetworkConfig, path: Path, backend: BackendConfig) -> None:
        super().__init__(name, config, path, backend)
        require_neuron()
        import torch

        if backend.profile != "fixed":
            raise NetworkLoadError(name, path, "the neuron backend needs backend.profile 'fixed'")
        try:
            self.module = torch.jit.load(str(path))
        except Exception as error:
            raise NetworkLoadError(name, path, f"not a loadable Neuron artefact ({error})") from None

    @property
    def device(self) -> str:
        return "neuron"

    def run(self, feeds: dict[str, np.ndarray], tally: Tally | None = None) -> dict[str, np.ndarray]:
        import torch

        if tally is not None:
            tally.add(sum(int(v.size) for v in feeds.values()), 0)
        args = [torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in self.input_names]
        with torch.inference_mode():
            result = self.module(*args)
        values = result if isinstance(result, (tuple, list)) else (result,)
        return {n: v.numpy() for n, v in zip(self.output_names, values, strict=True)}
