"""Component types by short name. Config names types from this table, never by import path."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from blocks.core import Block, SequenceBlock, StreamableBlock

BlockType = TypeVar("BlockType", bound=type[Block])

REGISTRY: dict[str, type[Block]] = {}


def register(name: str) -> Callable[[BlockType], BlockType]:
    """Class decorator: make a component buildable from config as ``{"type": name}``."""

    def decorate(cls: BlockType) -> BlockType:
        if not issubclass(cls, (SequenceBlock, StreamableBlock)):
            raise TypeError(f"{cls.__name__} must extend SequenceBlock or StreamableBlock")
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise ValueError(f"component type {name!r} is already registered")
        cls.type_name = name
        REGISTRY[name] = cls
        return cls

    return decorate


def names(kind: type[Block] = Block) -> list[str]:
    """Registered names whose class extends ``kind``, sorted."""
    _load_components()
    return sorted(name for name, cls in REGISTRY.items() if issubclass(cls, kind))


def lookup(name: str) -> type[Block] | None:
    _load_components()
    return REGISTRY.get(name)


def _load_components() -> None:
    """Import the built-in components (light modules: backends load lazily)."""
    import blocks.components
    import blocks.containers  # noqa: F401
