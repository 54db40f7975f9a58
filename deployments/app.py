"""The Serve application builder: ``import_path: deployments.app:build`` with typed ``args``.

One ingress serves every addon listed in ``args.addons``; a request's ``model`` picks the addon.
Each addon gets its own stages, named ``<addon>.<stage>`` (the stage names come from its stack).
The single-addon form (``args.addon``) keeps the bare stage names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from ray.serve import Application

from blocks import registry
from blocks.core import SequenceBlock
from deployments.ingress import Ingress
from deployments.models import AddonHandles
from deployments.stack import PathPart, load_addon_config, plan_stages
from deployments.stages import EncoderStage, StreamStage

INGRESS = "Ingress"
SEPARATOR = "."
"""Between an addon's name and its stage names (``piper-joe.Vocoder``)."""


class AddonArgs(BaseModel):
    """One served addon: its name (the ``model`` of requests), A/B variants and stage groups."""

    model_config = ConfigDict(extra="forbid")
    name: str
    variants: dict[str, str] = Field(default_factory=dict)
    """Extra encoder deployments for A/B tests: variant name -> registered SequenceBlock type."""
    groups: list[list[int]] | None = None
    """Top-level stack indices served together per stream stage (default: one stage per block)."""
    overrides: dict[str, Any] | None = None
    """Merged into the addon's config in every deployment, e.g. ``{"backend": {"profile": "fixed"}}``."""


class AppArgs(BaseModel):
    """Builder arguments (the ``args`` of an application in a serve config).

    Either ``addons`` (every addon, stage names prefixed with the addon's) or the single-addon
    form ``addon`` / ``variants`` / ``groups`` (bare stage names; ``piper-joe`` when nothing is given).
    """

    model_config = ConfigDict(extra="forbid")
    addons: list[AddonArgs] = Field(default_factory=list)
    addon: str | None = None
    variants: dict[str, str] = Field(default_factory=dict)
    groups: list[list[int]] | None = None
    overrides: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> AppArgs:
        single = self.addon is not None or self.variants or self.groups is not None or self.overrides is not None
        if self.addons and single:
            raise ValueError("give addons, or addon (with variants, groups and overrides), not both")
        names = [a.name for a in self.addons]
        if len(set(names)) != len(names):
            raise ValueError(f"addons: each addon may be listed once, got {names}")
        return self

    def served(self) -> list[tuple[AddonArgs, str]]:
        """Each addon with the prefix of its deployment names."""
        if self.addons:
            return [(a, a.name + SEPARATOR) for a in self.addons]
        single = AddonArgs(name=self.addon or "piper-joe", variants=self.variants, groups=self.groups,
                           overrides=self.overrides)
        return [(single, "")]


@dataclass(frozen=True)
class AddonPlan:
    """One addon's deployments, named and placed in its stack."""

    addon: str
    overrides: dict[str, Any] | None
    encoder: str
    """The stack's own encoder deployment (the default variant)."""
    encoder_path: tuple[PathPart, ...]
    variants: dict[str, str]
    """Variant deployment name -> registered SequenceBlock type."""
    streams: list[tuple[str, tuple[tuple[PathPart, ...], ...]]]

    @property
    def encoders(self) -> list[str]:
        return [self.encoder, *self.variants]

    @property
    def names(self) -> list[str]:
        return [*self.encoders, *(name for name, _ in self.streams)]


def plan_app(args: AppArgs) -> list[AddonPlan]:
    """Every addon's deployments; raises ValueError for bad variants or clashing names."""
    plans: list[AddonPlan] = []
    taken = {INGRESS}
    for entry, prefix in args.served():
        stages = plan_stages(load_addon_config(entry.name, overrides=entry.overrides), entry.groups)
        for name, block_type in entry.variants.items():
            cls = registry.lookup(block_type)
            if cls is None or not issubclass(cls, SequenceBlock):
                raise ValueError(f"variants.{name}: {block_type!r} is not a registered SequenceBlock; "
                                 f"valid: {registry.names(SequenceBlock)}")
        plan = AddonPlan(entry.name, entry.overrides, prefix + stages.encoder_name, stages.encoder_path,
                         {prefix + name: block_type for name, block_type in entry.variants.items()},
                         [(prefix + name, paths) for name, paths in stages.streams])
        for name in plan.names:
            if name in taken:
                raise ValueError(f"{entry.name}: deployment name {name!r} is taken by another stage")
            taken.add(name)
        plans.append(plan)
    return plans


def deployment_names(args: AppArgs) -> list[str]:
    """Every deployment the application will have, named from the addons' stacks."""
    return [INGRESS, *(name for plan in plan_app(args) for name in plan.names)]


def build(args: dict | AppArgs) -> Application:
    """Per addon: encoders (and variants) -> stream stages chained in stack order; one ingress."""
    args = AppArgs.model_validate(args) if not isinstance(args, AppArgs) else args
    addons: dict[str, AddonHandles] = {}
    for plan in plan_app(args):
        encoders = {plan.encoder: EncoderStage.options(name=plan.encoder).bind(
            plan.addon, plan.encoder_path, None, plan.overrides)}
        for name, block_type in plan.variants.items():
            encoders[name] = EncoderStage.options(name=name).bind(
                plan.addon, plan.encoder_path, block_type, plan.overrides)
        stages = {}
        upstream = None
        for name, paths in plan.streams:
            upstream = StreamStage.options(name=name).bind(plan.addon, paths, upstream, plan.overrides)
            stages[name] = upstream
        assert upstream is not None
        addons[plan.addon] = {"encoders": encoders, "tail": upstream, "stages": stages, "default": plan.encoder,
                              "overrides": plan.overrides}
    return Ingress.options(name=INGRESS).bind(addons)
