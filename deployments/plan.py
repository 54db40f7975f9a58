"""Which deployments an application has, named from its addons' stacks (no Ray here: configs are
checked against this before anything starts).

Per addon, the engine's layout (``blocks.engine.Layout``) gives the parts: the encoder part becomes an
*encoder deployment* (plus one per A/B variant), and the stream parts become *stream deployments*, one
per part unless ``groups`` serves several together (each hop costs a serialisation and a round trip).
``colocate_encoder`` serves the encoder part in the first stream deployment instead (named
``<encoder>-<stream blocks>``): one process then orders encodings and chunks by deadline together.
Deployments are named from the blocks' types, prefixed with the addon's name when several addons are
served (``piper-joe.Vocoder``), so a serve config can target them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from blocks.addon import Addon, merge, read_config
from blocks.engine import Layout, variant_node
from blocks.errors import AddonError, ConfigError
from blocks.spec import Node

INGRESS = "Ingress"
SEPARATOR = "."
"""Between an addon's name and its stage names (``piper-joe.Vocoder``)."""
DEFAULT_ADDON = "piper-joe"


class AddonArgs(BaseModel):
    """One served addon: its name (the ``model`` of requests), A/B variants and stage groups."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    name: str
    """The addon's name: what requests give as ``model``."""
    variants: dict[str, str] = Field(default_factory=dict)
    """Extra encoder deployments for A/B tests: variant name -> registered SequenceBlock type."""
    groups: list[list[int]] | None = None
    """Top-level stack indices served together per stream stage (default: one stage per block)."""
    colocate_encoder: bool = False
    """Serve the encoder part in the first stream stage's replicas, for machines whose cores all stages
    share: one process orders encodings and chunks by deadline together (A/B variants keep their own)."""
    overrides: dict[str, Any] | None = None
    """Merged into the addon's config in every deployment, e.g. ``{"backend": {"profile": "fixed"}}``."""
    stages: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Merged over ``overrides`` in one deployment each, by stage name without the addon's prefix: e.g.
    ``{"Vocoder": {"backend": {"device": "cuda"}}}`` runs only that stage's networks on CUDA."""


class AppArgs(BaseModel):
    """Builder arguments (the ``args`` of an application in a serve config).

    Either ``addons`` (every addon, stage names prefixed with the addon's) or the single-addon
    form ``addon`` / ``variants`` / ``groups`` (bare stage names; ``piper-joe`` when nothing is given).
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    addons: list[AddonArgs] = Field(default_factory=list)
    """Every served addon (deployment names prefixed with the addon's name)."""
    addon: str | None = None
    """The single served addon (bare deployment names)."""
    variants: dict[str, str] = Field(default_factory=dict)
    """The single addon's A/B variants."""
    groups: list[list[int]] | None = None
    """The single addon's stage groups."""
    colocate_encoder: bool = False
    """The single addon's encoder part in its first stream stage."""
    overrides: dict[str, Any] | None = None
    """The single addon's config overrides."""
    stages: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """The single addon's per-stage config overrides."""

    @model_validator(mode="after")
    def _one_form(self) -> AppArgs:
        single = (self.addon is not None or self.variants or self.groups is not None or self.overrides is not None
                  or self.stages or self.colocate_encoder)
        if self.addons and single:
            raise ValueError("give addons, or addon (with variants, groups, colocate_encoder, overrides and stages), "
                             "not both")
        names = [a.name for a in self.addons]
        if len(set(names)) != len(names):
            raise ValueError(f"addons: each addon may be listed once, got {names}")
        return self

    def served(self) -> list[tuple[AddonArgs, str]]:
        """Each addon with the prefix of its deployment names."""
        if self.addons:
            return [(a, a.name + SEPARATOR) for a in self.addons]
        single = AddonArgs(name=self.addon or DEFAULT_ADDON, variants=self.variants, groups=self.groups,
                           colocate_encoder=self.colocate_encoder, overrides=self.overrides, stages=self.stages)
        return [(single, "")]


@dataclass(frozen=True)
class StreamPlan:
    """One stream deployment: its name and the stream parts (indices into the layout) it runs."""

    name: str
    parts: tuple[int, ...]


@dataclass(frozen=True)
class AddonPlan:
    """One addon's deployments, named and placed in its stack."""

    addon: str
    overrides: dict[str, Any] | None
    encoder: str
    """The deployment running the stack's own encoder part (the default variant): an encoder deployment, or
    the first stream deployment when it holds the encoder part too (``colocated``)."""
    variants: dict[str, str]
    """Variant deployment name -> registered SequenceBlock type."""
    streams: tuple[StreamPlan, ...]
    stage_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Deployment name -> config merged over ``overrides`` in that deployment only."""
    colocated: bool = False
    """The first stream deployment runs the encoder part too."""

    def overrides_for(self, name: str) -> dict[str, Any] | None:
        """The config overrides deployment ``name`` loads the addon with."""
        mine = self.stage_overrides.get(name)
        if mine is None:
            return self.overrides
        return merge(self.overrides or {}, mine)

    @property
    def encoders(self) -> list[str]:
        return [self.encoder, *self.variants]

    @property
    def encoder_stages(self) -> list[str]:
        """The deployments that run an encoder part only."""
        return [name for name in self.encoders if not (self.colocated and name == self.encoder)]

    @property
    def names(self) -> list[str]:
        return [*self.encoder_stages, *(stream.name for stream in self.streams)]


def label(node: Node) -> str:
    """A stack entry's name: its type, or its children's types for a plain chain."""
    stack = node.children.get("stack")
    if isinstance(stack, list):
        return "-".join(label(child) for child in stack)
    return node.cls.type_name or node.cls.__name__


def plan_addon(addon: Addon, variants: dict[str, str], groups: list[list[int]] | None, prefix: str,
               stages: dict[str, dict[str, Any]] | None = None, colocate_encoder: bool = False) -> AddonPlan:
    """The deployments of one addon; ``groups`` lists the stream parts served together per deployment,
    ``stages`` gives single deployments (named without ``prefix``) config overrides of their own, and
    ``colocate_encoder`` puts the encoder part in the first stream deployment."""
    layout = Layout.of(addon.stack_nodes, addon.config)
    if layout.encoder is None:
        raise AddonError(f"addon {addon.name!r}: the first stack entry must be a StreamablePipeline (a sequence "
                         f"block, then a streamable block) to be served in stages; got {label(layout.streams[0].node)}")
    count = len(layout.streams)
    groups = groups or [[i] for i in range(count)]
    if [i for group in groups for i in group] != list(range(count)):
        raise AddonError(f"groups must cover the stack's {count} top-level blocks in order, got {groups}")
    streams: list[StreamPlan] = []
    taken: set[str] = set()
    encoder = label(layout.encoder.node)
    for index, group in enumerate(groups):
        blocks = [label(layout.streams[i].node) for i in group]
        if colocate_encoder and index == 0:
            blocks.insert(0, encoder)
        name = base = "-".join(blocks)
        count_taken = 1
        while name in taken:
            count_taken += 1
            name = f"{base}{count_taken}"
        taken.add(name)
        streams.append(StreamPlan(prefix + name, tuple(group)))
    for block_type in variants.values():
        variant_node(addon, block_type)  # the variant is checked as the addon's own stack is
    plan = AddonPlan(addon.name, addon.overrides, streams[0].name if colocate_encoder else prefix + encoder,
                     {prefix + name: block_type for name, block_type in variants.items()}, tuple(streams),
                     colocated=colocate_encoder)
    bare = [name.removeprefix(prefix) for name in plan.names]
    if unknown := sorted(set(stages or {}) - set(bare)):
        raise AddonError(f"stages: unknown stages {unknown}; the stack has {bare}")
    for name, changes in (stages or {}).items():
        try:
            read_config(addon.folder, merge(addon.overrides or {}, changes))
        except AddonError as error:
            raise AddonError(f"stages.{name}: {error}") from None
    return replace(plan, stage_overrides={prefix + name: changes for name, changes in (stages or {}).items()})


def plan_app(args: AppArgs) -> list[AddonPlan]:
    """Every addon's deployments; a ConfigError names a bad addon, variant or group, or a clash of names."""
    plans: list[AddonPlan] = []
    taken = {INGRESS}
    for entry, prefix in args.served():
        try:
            addon = Addon.open(entry.name, overrides=entry.overrides)
            plan = plan_addon(addon, entry.variants, entry.groups, prefix, entry.stages, entry.colocate_encoder)
        except AddonError as error:
            raise ConfigError(f"addon {entry.name!r}: {error}") from None
        for name in plan.names:
            if name in taken:
                raise ConfigError(f"{entry.name}: deployment name {name!r} is taken by another stage")
            taken.add(name)
        plans.append(plan)
    return plans


def deployment_names(args: AppArgs) -> list[str]:
    """Every deployment the application will have, named from the addons' stacks."""
    return [INGRESS, *(name for plan in plan_app(args) for name in plan.names)]
