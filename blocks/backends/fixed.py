"""Fixed shapes: pad inputs up to a profile size, run the static artefact for it, crop the outputs.

The networks only ever see the sizes of the addon's fixed profile. Time is the last axis of every
tensor along the profile's dim; outputs whose last axis is a multiple of the padded size (frames,
or samples per frame) are cropped back to the real length.
"""

from __future__ import annotations

import numpy as np

from blocks.backends.base import Network, Tally
from blocks.config import FixedNetworkProfile
from blocks.errors import AddonError, ShapeError


class FixedShapeNetwork(Network):
    """One static variant per profile size, behind the usual ``run``."""

    def __init__(self, variants: dict[int, Network], profile: FixedNetworkProfile, window: bool) -> None:
        first = next(iter(variants.values()))
        super().__init__(first.name, first.config, first.path, first.backend)
        self.variants = dict(sorted(variants.items()))
        self.profile = profile
        self.axes = {s.name: len(s.shape) - 1 for s in first.config.inputs if s.shape and s.shape[-1] == profile.dim}
        if not self.axes:
            raise AddonError(f"network {self.name!r}: no input has {profile.dim!r} as its last dim")
        self.fixed_window = profile.sizes[-1] if window else None

    @property
    def device(self) -> str:
        return next(iter(self.variants.values())).device

    def size_for(self, length: int) -> int:
        for size in self.variants:
            if length <= size:
                return size
        raise ShapeError(
            f"network {self.name!r}: {self.profile.dim}={length} exceeds the largest fixed size {max(self.variants)}"
        )

    def run(self, feeds: dict[str, np.ndarray], tally: Tally | None = None) -> dict[str, np.ndarray]:
        name = next(iter(self.axes))
        length = int(feeds[name].shape[-1])
        size = self.size_for(length)
        padded: dict[str, np.ndarray] = {}
        for key, value in feeds.items():
            if key in self.axes and value.shape[-1] != size:
                widths = [(0, 0)] * (value.ndim - 1) + [(0, size - value.shape[-1])]
                value = np.pad(value, widths, constant_values=np.asarray(self.profile.pad_value, value.dtype))
            padded[key] = value
        real = sum(int(v.size) for v in feeds.values())
        added = sum(int(v.size) for v in padded.values()) - real
        if tally is not None:
            tally.add(real, added)
        outputs = self.variants[size].run(padded)
        return {key: self._crop(value, length, size) for key, value in outputs.items()}

    @staticmethod
    def _crop(value: np.ndarray, length: int, size: int) -> np.ndarray:
        last = value.shape[-1] if value.ndim else 0
        if last and last % size == 0:
            return value[..., : length * (last // size)]
        return value

    def warm_up(self) -> None:
        for size, network in self.variants.items():
            feeds = {}
            for spec in network.config.inputs:
                shape = [size if d == self.profile.dim else (d if isinstance(d, int) else 1) for d in spec.shape]
                integer = np.issubdtype(np.dtype(spec.dtype), np.integer)
                feeds[spec.name] = (np.ones if integer else np.zeros)(shape, dtype=spec.dtype)
            network.run(feeds)

    def close(self) -> None:
        for variant in self.variants.values():
            variant.close()

    def describe(self) -> str:
        return f"{self.name}: fixed {self.profile.dim} in {list(self.variants)} on {self.device}"
