"""torch backend: TorchScript archives or torch.export programs, on CPU or CUDA.

Neither format runs Python pickles: TorchScript restores only tensors and
compiled code, and torch.export programs are serialized graphs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from blocks.backends.base import Network, Tally
from blocks.config import BackendConfig, NetworkConfig
from blocks.errors import DeviceUnavailable, NetworkLoadError


def torch_device(device: str) -> torch.device:
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise DeviceUnavailable("device 'cuda' asked for, but torch sees no CUDA device; set device 'cpu'")
        return torch.device("cuda")
    return torch.device("cpu")


class TorchNetwork(Network):
    """A TorchScript (``torchscript``) or torch.export (``torch_export``) network."""

    def __init__(self, name: str, config: NetworkConfig, path: Path, backend: BackendConfig) -> None:
        super().__init__(name, config, path, backend)
        self._device = torch_device(backend.device)
        if backend.threads:
            torch.set_num_threads(backend.threads)
        try:
            if config.format == "torchscript":
                self.module = torch.jit.load(str(path), map_location=self._device).eval()
            elif config.format == "torch_export":
                self.module = torch.export.load(str(path)).module().to(self._device)
            else:
                raise NetworkLoadError(name, path, f"unknown torch format {config.format!r}")
        except NetworkLoadError:
            raise
        except Exception as error:
            raise NetworkLoadError(name, path, f"not a loadable {config.format} file ({error})") from None

    @property
    def device(self) -> str:
        return self._device.type

    def run(self, feeds: dict[str, np.ndarray], tally: Tally | None = None) -> dict[str, np.ndarray]:
        if tally is not None:
            tally.add(sum(int(np.size(v)) for v in feeds.values()), 0)
        args = [torch.from_numpy(np.ascontiguousarray(feeds[n])).to(self._device) for n in self.input_names]
        with torch.inference_mode():
            result = self.module(*args)
        values = result if isinstance(result, (tuple, list)) else (result,)
        return {n: v.detach().cpu().numpy() for n, v in zip(self.output_names, values, strict=True)}
