"""Weighted, sticky choice between encoder variants (A/B tests)."""

from __future__ import annotations

import hashlib
import random

from blocks.errors import ConfigError


class WeightedRouter:
    """Maps a client id to a variant: the same id keeps its variant while weights hold.

    A client id hashes to a point in [0, 1); the variants own consecutive slices of that
    interval in the order given, sized by weight. Moving weight moves only the clients whose
    point falls in the slice that changed hands. Requests without an id get a random point.
    """

    def __init__(self, weights: dict[str, float], salt: str = "voxstack") -> None:
        if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ConfigError(f"weights must be non-negative with a positive sum, got {weights}")
        total = sum(weights.values())
        self.names = list(weights)
        self.bounds: list[float] = []
        running = 0.0
        for name in self.names:
            running += weights[name] / total
            self.bounds.append(running)
        self.salt = salt

    def point(self, client: str | None) -> float:
        if not client:
            return random.random()
        digest = hashlib.sha256(f"{self.salt}:{client}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def choose(self, client: str | None) -> str:
        point = self.point(client)
        for name, bound in zip(self.names, self.bounds, strict=True):
            if point < bound:
                return name
        return self.names[-1]
