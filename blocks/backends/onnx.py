"""onnxruntime backend: CPU, or CUDA where the provider is present and asked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from blocks.backends.base import Network, NetworkLoadError, Tally
from blocks.config import BackendConfig, NetworkConfig


def providers_for(device: str) -> list[str]:
    """Execution providers for a device: ``cuda`` (falls back to CPU if absent), ``cpu``, ``auto``."""
    available = ort.get_available_providers()
    if device in ("cuda", "auto") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise RuntimeError(
            "device 'cuda' asked for, but onnxruntime has no CUDAExecutionProvider here "
            f"(available: {available}); install onnxruntime-gpu or set device 'cpu'"
        )
    return ["CPUExecutionProvider"]


class OnnxNetwork(Network):
    """An ONNX file run by onnxruntime."""

    def __init__(self, name: str, config: NetworkConfig, path: Path, backend: BackendConfig) -> None:
        super().__init__(name, config, path, backend)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # Blocks call several sessions in turn: idle threads spinning for work would steal the cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if backend.threads:
            options.intra_op_num_threads = backend.threads
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=options, providers=providers_for(backend.device)
            )
        except RuntimeError:
            raise
        except Exception as error:  # onnxruntime raises its own types for bad files
            raise NetworkLoadError(name, path, f"not a loadable ONNX model ({error})") from None
        declared = set(self.input_names)
        actual = {i.name for i in self.session.get_inputs()}
        if declared != actual:
            raise NetworkLoadError(name, path, f"inputs {sorted(actual)} != declared {sorted(declared)}")
        outputs = {o.name for o in self.session.get_outputs()}
        if missing := set(self.output_names) - outputs:
            raise NetworkLoadError(name, path, f"declared outputs {sorted(missing)} not in the model")

    @property
    def device(self) -> str:
        return "cuda" if "CUDAExecutionProvider" in self.session.get_providers() else "cpu"

    def run(self, feeds: dict[str, np.ndarray], tally: Tally | None = None) -> dict[str, np.ndarray]:
        if tally is not None:
            tally.add(sum(int(v.size) for v in feeds.values()), 0)
        values = self.session.run(self.output_names, feeds)
        return dict(zip(self.output_names, values, strict=True))
