"""Declared tensor contracts: what each block reads from an utterance's tensors and what it adds.

A stack is checked when its addon loads, before any network runs: a block that reads a tensor
nothing before it writes (or with another dtype or rank) fails with its JSON path.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from blocks.errors import ContractError

if TYPE_CHECKING:
    from blocks.config import AddonConfig, NetworkConfig
    from blocks.spec import Node


@dataclass(frozen=True)
class TensorSpec:
    """A named tensor; ``None`` dtype or rank: not declared."""

    name: str
    dtype: str | None = None
    rank: int | None = None

    def __str__(self) -> str:
        kind = "" if self.dtype is None else f" {self.dtype}"
        rank = "" if self.rank is None else f" rank {self.rank}"
        return f"{self.name!r}{kind}{rank}"


@dataclass(frozen=True)
class Contract:
    """The tensors a block reads (all must exist before it runs) and writes."""

    reads: tuple[TensorSpec, ...] = ()
    writes: tuple[TensorSpec, ...] = ()

    def then(self, later: Contract) -> Contract:
        """This block followed by ``later``: what ``later`` reads that this writes is not read from outside."""
        written = {spec.name for spec in self.writes}
        return Contract(self.reads + tuple(s for s in later.reads if s.name not in written),
                        self.writes + later.writes)

    @property
    def read_names(self) -> frozenset[str]:
        return frozenset(spec.name for spec in self.reads)

    @property
    def write_names(self) -> frozenset[str]:
        return frozenset(spec.name for spec in self.writes)


CONTROL_TENSORS = (TensorSpec("duration_scales", "float32", 1), TensorSpec("gains", "float32", 1),
                   TensorSpec("pitch_scales", "float32", 1), TensorSpec("pauses", "float32", 1))
"""Per-span controls beside the ids (SSML rate, volume, pitch, breaks): see ``blocks.controls``."""
UTTERANCE_TENSORS = (TensorSpec("input", "int64", 2), TensorSpec("input_lengths", "int64", 1),
                     TensorSpec("scales", "float32", 1), *CONTROL_TENSORS)
"""What every utterance starts with: its phoneme ids, their count, (noise, length, noise_w), its controls."""


def voice_tensors(config: AddonConfig) -> tuple[TensorSpec, ...]:
    """The tensors every voice of the addon adds to an utterance (all voices give the same)."""
    tensors = config.voices[0].tensors
    return tuple(TensorSpec(name, spec.dtype, None if spec.value is None else int(np.ndim(spec.value)))
                 for name, spec in tensors.items())


def utterance_tensors(config: AddonConfig) -> dict[str, TensorSpec]:
    """What every utterance of the addon starts with: the ids, scales, controls, and its voice's tensors."""
    return {spec.name: spec for spec in (*UTTERANCE_TENSORS, *voice_tensors(config))}


def network_contract(name: str, config: AddonConfig, path: str) -> Contract:
    """A network's declared inputs (those not drawn at random) and outputs."""
    network: NetworkConfig | None = config.networks.get(name)
    if network is None:
        raise ContractError(path, f"no network {name!r} in the addon (has {sorted(config.networks)})")
    reads = tuple(TensorSpec(s.name, s.dtype, len(s.shape) or None) for s in network.inputs if s.random is None)
    return Contract(reads, tuple(TensorSpec(out) for out in network.outputs))


def _children(node: Node) -> list[Node]:
    return [c for slot in node.children.values() for c in (slot if isinstance(slot, list) else [slot])]


def contract_of(node: Node, config: AddonConfig) -> Contract:
    """The contract of a parsed stack entry: a container's children run in order; a leaf's class decides."""
    children = _children(node)
    if not children:
        return node.cls.contract(node.options, config, node.path)
    combined = Contract()
    for child in children:
        combined = combined.then(contract_of(child, config))
    return combined


def check_stack(nodes: list[Node], config: AddonConfig) -> None:
    """Walk the stack in order; raise ContractError at the first read nothing before it provides, or at
    the first block that transforms a stream with no stream before it. Each node keeps its contract
    (``Node.contract``): the block built from it sees exactly those tensors."""
    available = utterance_tensors(config)
    streaming = False
    for node in nodes:
        streaming = _check(node, config, available, streaming)


def _check(node: Node, config: AddonConfig, available: dict[str, TensorSpec], streaming: bool) -> bool:
    """Check ``node`` given whether a stream flows into it; returns whether one flows out."""
    node.contract = contract_of(node, config)
    if children := _children(node):
        for child in children:
            if child.cls.streams:
                streaming = _check(child, config, available, streaming)
            else:  # a sequence block (a pipeline's first child) neither takes nor gives a stream
                _check(child, config, available, False)
        return streaming
    if node.cls.streams and node.cls.transforms and not streaming:
        raise ContractError(node.path, f"{node.cls.type_name} transforms a stream, but nothing before it "
                                       f"in its chain makes one")
    own = node.cls.contract(node.options, config, node.path)
    for spec in own.reads:
        found = available.get(spec.name)
        if found is None:
            raise ContractError(node.path, f"{node.cls.type_name} reads tensor {spec}, which nothing before it "
                                           f"writes; available: {sorted(available)}")
        for field in ("dtype", "rank"):
            want, have = getattr(spec, field), getattr(found, field)
            if want is not None and have is not None and want != have:
                raise ContractError(node.path, f"{node.cls.type_name} reads tensor {spec.name!r} as {field} "
                                               f"{want}, but it is written with {field} {have}")
    for spec in own.writes:
        available[spec.name] = spec
    return streaming or node.cls.streams


class Scoped(MutableMapping[str, np.ndarray]):
    """One block's view of an utterance's tensors: exactly what its contract declares.

    Reading a tensor the contract does not declare (as read or as written), or writing one it does not
    declare as written, raises ContractError naming the block: the same in process and served, where a
    stage holds only the tensors its blocks declare.
    """

    def __init__(self, tensors: MutableMapping[str, np.ndarray], contract: Contract, owner: str) -> None:
        self._tensors = tensors
        self._writes = contract.write_names
        self._visible = contract.read_names | self._writes
        self._owner = owner

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._visible:
            raise ContractError(self._owner, f"reads tensor {name!r}, which its contract does not declare "
                                             f"(declared: {sorted(self._visible)})")
        return self._tensors[name]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        if name not in self._writes:
            raise ContractError(self._owner, f"writes tensor {name!r}, which its contract does not declare "
                                             f"(declared writes: {sorted(self._writes)})")
        self._tensors[name] = value

    def __delitem__(self, name: str) -> None:
        raise ContractError(self._owner, f"deletes tensor {name!r}: blocks add tensors, never remove them")

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._tensors if name in self._visible)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, name: object) -> bool:
        return name in self._visible and name in self._tensors


def scoped(tensors: MutableMapping[str, np.ndarray], contract: Contract | None, owner: str
           ) -> MutableMapping[str, np.ndarray]:
    """``tensors`` as a block with ``contract`` may see them (unchanged for a block with none)."""
    return tensors if contract is None else Scoped(tensors, contract, owner)
