"""Split an addon's stack into serving stages, named from the stack so configs can target them.

An addon's top-level stack is a list of StreamableBlocks. When the first one is a
StreamablePipeline, its sequence block (the encoders) becomes the *encoder stage*: it runs
once per utterance and returns tensors. Every top-level block (for the pipeline, its
streamable part) becomes a *stream stage*; ``groups`` may put several top-level blocks in
one stage to save replicas (each hop costs a serialization and a network round trip).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blocks.addon import Addon, addon_path
from blocks.contracts import contract_of
from blocks.core import Block
from blocks.spec import Node

PathPart = int | str
"""A stage's block address: a top-level index, then child slot names."""


@dataclass(frozen=True)
class StagePlan:
    """Where each stage's blocks live in the stack."""

    encoder_name: str
    """Deployment name of the encoder stage (the sequence block's type)."""
    encoder_path: tuple[PathPart, ...]
    streams: list[tuple[str, tuple[tuple[PathPart, ...], ...]]]
    """Stream stages in stack order: (deployment name, addresses of the blocks it chains)."""


def load_addon_config(name: str, root: Path | None = None, overrides: dict[str, Any] | None = None) -> Addon:
    """The parsed addon (config and validated stack; no network is loaded), with config overrides."""
    return Addon(addon_path(name, root), overrides)


def node_at(addon: Addon, path: tuple[PathPart, ...]) -> Node:
    """The parsed stack entry at a stage address (a top-level index, then single-child slot names)."""
    node: Node | list[Node] = addon.stack_nodes[int(path[0])]
    for part in path[1:]:
        if not isinstance(node, Node):
            break
        node = node.children[str(part)]
    if not isinstance(node, Node):
        raise ValueError(f"addon {addon.name!r}: {list(path)} does not address one block of the stack")
    return node


def _label(node: Node) -> str:
    """A node's name: its type, or its children's types for a plain chain."""
    stack = node.children.get("stack")
    if isinstance(stack, list):
        return "-".join(_label(child) for child in stack)
    return node.cls.type_name or node.cls.__name__


def plan_stages(addon: Addon, groups: list[list[int]] | None = None) -> StagePlan:
    """Plan the stages of ``addon``; ``groups`` lists top-level indices per stream stage."""
    nodes = addon.stack_nodes
    first = nodes[0]
    if "sequence_block" not in first.children or "streamable_block" not in first.children:
        raise ValueError(
            f"addon {addon.name!r}: the first stack entry must be a StreamablePipeline "
            f"(a sequence block, then a streamable block) to be served in stages; got {_label(first)}"
        )
    addresses: list[tuple[PathPart, ...]] = [(0, "streamable_block")] + [(i,) for i in range(1, len(nodes))]
    groups = groups or [[i] for i in range(len(nodes))]
    flat = [i for group in groups for i in group]
    if flat != list(range(len(nodes))):
        raise ValueError(f"groups must cover the stack's {len(nodes)} top-level blocks in order, got {groups}")
    streams: list[tuple[str, tuple[tuple[PathPart, ...], ...]]] = []
    taken: set[str] = set()
    for group in groups:
        name = "-".join(_label(node_at(addon, addresses[i])) for i in group)
        base, count = name, 1
        while name in taken:
            count += 1
            name = f"{base}{count}"
        taken.add(name)
        streams.append((name, tuple(addresses[i] for i in group)))
    sequence = node_at(addon, (0, "sequence_block"))
    return StagePlan(_label(sequence), (0, "sequence_block"), streams)


def stage_reads(addon: Addon, paths: tuple[tuple[PathPart, ...], ...]) -> set[str]:
    """Names of the utterance tensors a stage's blocks read (their declared contracts)."""
    return set().union(*(contract_of(node_at(addon, path), addon.config).read_names for path in paths))


def build_block(addon: Addon, path: tuple[PathPart, ...]) -> Block:
    """Instantiate the block at ``path`` (loading only its own networks)."""
    return node_at(addon, path).build(addon.context())
