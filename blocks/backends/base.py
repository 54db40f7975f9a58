"""What every backend offers: named numpy tensors in, named numpy tensors out."""

from __future__ import annotations

import abc
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from blocks.config import BackendConfig, NetworkConfig


@dataclass(frozen=True)
class TallyCounts:
    """A tally's counts as a plain record (what crosses processes)."""

    real: int = 0
    padded: int = 0
    calls: int = 0


@dataclass
class Tally:
    """Elements a request's network calls carried: real ones, and padding added for fixed shapes."""

    real: int = 0
    padded: int = 0
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, real: int, padded: int) -> None:
        with self.lock:
            self.real += real
            self.padded += padded
            self.calls += 1

    def merge(self, counts: TallyCounts) -> None:
        """Add another tally's counts (e.g. a serving stage's)."""
        with self.lock:
            self.real += counts.real
            self.padded += counts.padded
            self.calls += counts.calls

    def counts(self) -> TallyCounts:
        with self.lock:
            return TallyCounts(self.real, self.padded, self.calls)

    def since(self, before: Tally) -> TallyCounts:
        """What was added since ``before`` (a snapshot this call then moves forward)."""
        with self.lock:
            delta = TallyCounts(self.real - before.real, self.padded - before.padded, self.calls - before.calls)
            before.real, before.padded, before.calls = self.real, self.padded, self.calls
        return delta

    @property
    def waste(self) -> float:
        """Padded elements over real elements (0 when nothing was padded)."""
        return self.padded / self.real if self.real else 0.0


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
    def run(self, feeds: dict[str, np.ndarray], tally: Tally | None = None) -> dict[str, np.ndarray]:
        """Run once; ``feeds`` holds exactly the declared inputs; ``tally`` counts padding."""

    fixed_window: int | None = None
    """Frames per call when this network only accepts a fixed frame window."""

    def warm_up(self) -> None:  # noqa: B027 - optional hook, nothing to do for dynamic shapes
        """Run every shape this network will see once (fixed shapes: each bucket)."""

    def close(self) -> None:  # noqa: B027 - optional hook: most networks start no thread
        """Stop any thread this network started (a batching worker); it may not run after."""

    def describe(self) -> str:
        return f"{self.name}: {self.config.format} on {self.device} ({self.path.name})"

    @property
    def device(self) -> str:
        return self.backend.device
