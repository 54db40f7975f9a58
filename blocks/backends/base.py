"""What every backend offers: named numpy tensors in, named numpy tensors out."""

from __future__ import annotations

import abc
from pathlib import Path

import numpy as np

from blocks.config import BackendConfig, NetworkConfig


class NetworkLoadError(RuntimeError):
    """A network file is missing, corrupt or does not match its declaration."""

    def __init__(self, name: str, path: Path, reason: str) -> None:
        super().__init__(f"network {name!r} ({path.name}): {reason}")
        self.network = name
        self.path = path


class Network(abc.ABC):
    """An exported network bound to a device; ``run`` is the only call blocks make."""

    def __init__(self, name: str, config: NetworkConfig, path: Path, backend: BackendConfig) -> None:
        self.name = name
        self.config = config
        self.path = path
        self.backend = backend

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self.config.inputs]

    @property
    def output_names(self) -> list[str]:
        return list(self.config.outputs)

    @abc.abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; ``feeds`` holds exactly the declared inputs."""

    def describe(self) -> str:
        return f"{self.name}: {self.config.format} on {self.device} ({self.path.name})"

    @property
    def device(self) -> str:
        return self.backend.device
