"""Component types by short name. Config names types from this table, never by import path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from blocks.core import Block, SequenceBlock, StreamableBlock

BlockType = TypeVar("BlockType", bound=type[Block])

REGISTRY: dict[str, type[Block]] = {}


def register(name: str) -> Callable[[BlockType], BlockType]:
    """Class decorator: make a component buildable from config as ``{"type": name}``."""

    def decorate(cls: BlockType) -> BlockType:
        if not issubclass(cls, (SequenceBlock, StreamableBlock)):
            raise TypeError(f"{cls.__name__} must extend SequenceBlock or StreamableBlock")
        enter(REGISTRY, name, cls, "component")
        return cls

    return decorate


def enter(table: dict[str, Any], name: str, cls: Any, kind: str) -> None:
    """Put ``cls`` in ``table`` under ``name`` (its ``type_name`` from now on); a name is taken once."""
    if name in table and table[name] is not cls:
        raise ValueError(f"{kind} type {name!r} is already registered")
    cls.type_name = name
    table[name] = cls


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
