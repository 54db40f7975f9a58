"""Component and frontend types by short name. Config names types from these tables, never by import path.

Each table has three sources: the built-in types (listed here by module, imported when first needed),
the types installed distributions declare as entry points (group ``voxstack.components`` or
``voxstack.frontends``: name = the type name, object = the class; loaded when first needed), and
classes registered in code with ``register``. A name is taken once: two claims are an error naming both
claimants. A plugin that fails to load is reported by name and reason and never breaks the others.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from blocks.core import Block, SequenceBlock, StreamableBlock
from blocks.errors import AddonError

T = TypeVar("T")
BlockType = TypeVar("BlockType", bound=type[Block])

COMPONENT_GROUP = "voxstack.components"
BUILTIN = "voxstack (built in)"
"""The claimant named for built-in types."""

BUILTIN_COMPONENTS = {
    "SequenceBlockContainer": "blocks.containers:SequenceBlockContainer",
    "StreamableStack": "blocks.containers:StreamableStack",
    "StreamablePipeline": "blocks.containers:StreamablePipeline",
    "Network": "blocks.components.encoders:NetworkBlock",
    "Encoders": "blocks.components.encoders:Encoders",
    "CustomizedEncoders": "blocks.components.customized_encoders:CustomizedEncoders",
    "Upsampler": "blocks.components.upsampler:Upsampler",
    "Decoder": "blocks.components.decoder:Decoder",
    "Vocoder": "blocks.components.decoder:Vocoder",
    "AttentionDecoder": "blocks.components.attention_decoder:AttentionDecoder",
    "HarmonicVocoder": "blocks.components.harmonic_vocoder:HarmonicVocoder",
    "Gain": "blocks.components.effects:Gain",
    "Fade": "blocks.components.effects:Fade",
    "ChunkStats": "blocks.components.diagnostics:ChunkStats",
}
"""Built-in component types: name -> ``module:Class``, imported when first needed."""


@dataclass(frozen=True)
class Claim:
    """Where a type name comes from: the built-in table, an entry point, or code."""

    name: str
    source: str
    """``voxstack (built in)``, a distribution ``name version``, or ``code``."""
    target: str
    """The ``module:Class`` it loads."""


@dataclass(frozen=True)
class Problem:
    """A plugin that could not be used, and why."""

    name: str
    source: str
    reason: str


def distribution(entry: EntryPoint) -> str:
    """The distribution (name and version) that declares an entry point."""
    dist = entry.dist
    return f"{dist.metadata['Name']} {dist.version}" if dist is not None else "an unknown distribution"


class Table(Generic[T]):
    """One kind of type (components or frontends) by name, filled lazily from its three sources."""

    def __init__(self, kind: str, group: str, builtin: dict[str, str], base: type) -> None:
        self.kind = kind
        self.group = group
        self.builtin = builtin
        self.base = base
        self._classes: dict[str, T] = {}
        self._claims: dict[str, Claim] | None = None
        self._entries: dict[str, EntryPoint] = {}
        self._problems: dict[str, Problem] = {}
        self._in_code: dict[str, Claim] = {}

    def claims(self) -> dict[str, Claim]:
        """Every name with its claimant (entry points are listed, not loaded)."""
        if self._claims is None:
            claims = {name: Claim(name, BUILTIN, target) for name, target in self.builtin.items()}
            for entry in entry_points(group=self.group):
                claim = Claim(entry.name, distribution(entry), entry.value)
                if (taken := claims.get(entry.name)) is not None:
                    self._problems[entry.name] = Problem(
                        entry.name, claim.source, f"{self.kind} type {entry.name!r} is claimed twice: by "
                                                  f"{taken.source} ({taken.target}) and by {claim.source} "
                                                  f"({claim.target})")
                    continue
                claims[entry.name] = claim
                self._entries[entry.name] = entry
            self._claims = claims
        return {**self._claims, **self._in_code}

    def problems(self) -> list[Problem]:
        """Plugins that could not be used so far (every one, after ``load_all``)."""
        self.claims()
        return sorted(self._problems.values(), key=lambda p: p.name)

    def lookup(self, name: str) -> T | None:
        """The class of type ``name``, loading it on first use; None when no usable class has it."""
        if name in self._classes:
            return self._classes[name]
        claims = self.claims()
        if name in self._problems or name not in claims:
            return None
        try:
            cls = self._load(name)
        except Exception as error:  # a broken plugin is reported, never fatal to the others
            self._problems[name] = Problem(name, claims[name].source, f"{type(error).__name__}: {error}")
            return None
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            self._problems[name] = Problem(name, claims[name].source,
                                           f"{claims[name].target} is not a {self.base.__name__} class")
            return None
        cls.type_name = name  # type: ignore[attr-defined]
        self._classes[name] = cls  # type: ignore[assignment]
        return self._classes[name]

    def _load(self, name: str) -> Any:
        if name in self._entries:
            return self._entries[name].load()
        module, _, attribute = self.builtin[name].partition(":")
        return getattr(importlib.import_module(module), attribute)

    def load_all(self) -> dict[str, T]:
        """Every usable type (plugins loaded; broken ones reported by ``problems``)."""
        for name in self.claims():
            self.lookup(name)
        return dict(self._classes)

    def register(self, name: str, cls: T) -> None:
        """Make ``cls`` the type ``name`` from code; a name already claimed by another class is an error."""
        if (known := self.lookup(name)) is not None and known is not cls:
            raise AddonError(f"{self.kind} type {name!r} is already registered by {self.claims()[name].source}")
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise AddonError(f"{getattr(cls, '__name__', cls)!r} must extend {self.base.__name__}")
        self._in_code[name] = Claim(name, "code", f"{cls.__module__}:{cls.__qualname__}")
        cls.type_name = name  # type: ignore[attr-defined]
        self._classes[name] = cls


COMPONENTS: Table[type[Block]] = Table("component", COMPONENT_GROUP, BUILTIN_COMPONENTS, Block)


def register(name: str) -> Callable[[BlockType], BlockType]:
    """Class decorator: make a component buildable from config as ``{"type": name}``."""

    def decorate(cls: BlockType) -> BlockType:
        if not issubclass(cls, (SequenceBlock, StreamableBlock)):
            raise AddonError(f"{cls.__name__} must extend SequenceBlock or StreamableBlock")
        COMPONENTS.register(name, cls)
        return cls

    return decorate


def names(kind: type[Block] = Block) -> list[str]:
    """Usable component names whose class extends ``kind``, sorted."""
    return sorted(name for name, cls in COMPONENTS.load_all().items() if issubclass(cls, kind))


def lookup(name: str) -> type[Block] | None:
    return COMPONENTS.lookup(name)
