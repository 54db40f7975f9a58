"""The Serve application builder: ``import_path: deployments.app:build`` with typed ``args``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from ray.serve import Application

from blocks import registry
from blocks.core import SequenceBlock
from deployments.ingress import Ingress
from deployments.stack import load_addon_config, plan_stages
from deployments.stages import EncoderStage, StreamStage

INGRESS = "Ingress"


class AppArgs(BaseModel):
    """Builder arguments (the ``args`` of an application in a serve config)."""

    model_config = ConfigDict(extra="forbid")
    addon: str = "piper-joe"
    """The addon to serve; its name is the ``model`` of requests."""
    variants: dict[str, str] = Field(default_factory=dict)
    """Extra encoder deployments for A/B tests: deployment name -> registered SequenceBlock type."""
    groups: list[list[int]] | None = None
    """Top-level stack indices served together per stream stage (default: one stage per block)."""


def deployment_names(args: AppArgs) -> list[str]:
    """Every deployment the application will have, named from the addon's stack."""
    plan = plan_stages(load_addon_config(args.addon), args.groups)
    return [INGRESS, plan.encoder_name, *args.variants, *(name for name, _ in plan.streams)]


def build(args: dict | AppArgs) -> Application:
    """Encoders (and variants) -> stream stages chained in stack order -> ingress."""
    args = AppArgs.model_validate(args) if not isinstance(args, AppArgs) else args
    addon = load_addon_config(args.addon)
    plan = plan_stages(addon, args.groups)
    for name, block_type in args.variants.items():
        cls = registry.lookup(block_type)
        if cls is None or not issubclass(cls, SequenceBlock):
            raise ValueError(f"variants.{name}: {block_type!r} is not a registered SequenceBlock; "
                             f"valid: {registry.names(SequenceBlock)}")
        if name in (INGRESS, plan.encoder_name) or name in dict(plan.streams):
            raise ValueError(f"variants.{name}: the name is taken by a stage of the stack")
    encoders = {plan.encoder_name: EncoderStage.options(name=plan.encoder_name).bind(args.addon, plan.encoder_path)}
    for name, block_type in args.variants.items():
        encoders[name] = EncoderStage.options(name=name).bind(args.addon, plan.encoder_path, block_type)
    stages = {}
    upstream = None
    for name, paths in plan.streams:
        upstream = StreamStage.options(name=name).bind(args.addon, paths, upstream)
        stages[name] = upstream
    assert upstream is not None
    return Ingress.options(name=INGRESS).bind(args.addon, encoders, upstream, stages, plan.encoder_name)
