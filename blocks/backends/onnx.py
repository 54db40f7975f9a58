"""onnxruntime backend: CPU, or CUDA where the provider is present and asked for."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort

from blocks.backends.base import Network, Tally
from blocks.config import BackendConfig, NetworkConfig
from blocks.errors import DeviceUnavailable, NetworkLoadError


def providers_for(device: str) -> list[str]:
    """Execution providers for a device: ``cuda`` (DeviceUnavailable if onnxruntime has no CUDA provider),
    ``cpu``, ``auto`` (CUDA where available, else the CPU)."""
    available = ort.get_available_providers()
    if device in ("cuda", "auto") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise DeviceUnavailable(
            "device 'cuda' asked for, but onnxruntime has no CUDAExecutionProvider here "
            f"(available: {available}); install onnxruntime-gpu or set device 'cpu'"
        )
    return ["CPUExecutionProvider"]


class CallsInFlight:
    """Network calls running in this process, across every network."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def enter(self) -> int:
        """Count a call in; returns how many others were running."""
        with self.lock:
            self.count += 1
            return self.count - 1

    def leave(self) -> None:
        with self.lock:
            self.count -= 1


IN_FLIGHT = CallsInFlight()


def session_options(threads: int | None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Blocks call several sessions in turn: idle threads spinning for work would steal the cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    return options


class OnnxNetwork(Network):
    """An ONNX file run by onnxruntime."""

    def __init__(self, name: str, config: NetworkConfig, path: Path, backend: BackendConfig) -> None:
        super().__init__(name, config, path, backend)
        providers = providers_for(backend.device)
        self.busy_session: ort.InferenceSession | None = None
        """The session used while other calls run (``busy_threads``); CPU only."""
        try:
            self.session = ort.InferenceSession(str(path), session_options(backend.threads), providers=providers)
            if backend.busy_threads is not None and self.device == "cpu":
                self.busy_session = ort.InferenceSession(str(path), session_options(backend.busy_threads),
                                                         providers=providers)
        except RuntimeError:
            raise
        except Exception as error:  # onnxruntime raises its own types for bad files
            raise NetworkLoadError(name, path, f"not a loadable ONNX model ({error})") from None
        if backend.device == "cuda" and self.device != "cuda":
            raise DeviceUnavailable(f"network {name!r}: device 'cuda' asked for, but onnxruntime's CUDA provider "
                                    "did not start (no GPU visible, or its CUDA and cuDNN libraries missing)")
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
        others = IN_FLIGHT.enter()
        try:
            session = self.busy_session if others and self.busy_session is not None else self.session
            values = session.run(self.output_names, feeds)
        finally:
            IN_FLIGHT.leave()
        return dict(zip(self.output_names, values, strict=True))
