"""The Serve application builder: ``import_path: deployments.app:build`` with typed ``args``.

One ingress serves every addon listed in ``args.addons``; a request's ``model`` picks the addon. Each
addon gets its own stages, named as ``deployments.plan`` names them from its stack.
"""

from __future__ import annotations

from ray.serve import Application
from ray.serve.handle import DeploymentHandle

from deployments.ingress import Ingress
from deployments.plan import INGRESS, AppArgs, plan_app
from deployments.served_addons import AddonHandles
from deployments.stages import EncoderStage, StreamStage


def build(args: dict | AppArgs) -> Application:
    """Per addon: encoders (and variants) -> stream stages chained in stack order; one ingress."""
    args = AppArgs.model_validate(args) if not isinstance(args, AppArgs) else args
    addons: dict[str, AddonHandles] = {}
    for plan in plan_app(args):
        encoders = {plan.encoder: EncoderStage.options(name=plan.encoder).bind(plan.addon, None,
                                                                               plan.overrides_for(plan.encoder))}
        for name, block_type in plan.variants.items():
            encoders[name] = EncoderStage.options(name=name).bind(plan.addon, block_type, plan.overrides_for(name))
        stages: dict[str, DeploymentHandle] = {}
        upstream = None
        for stream in plan.streams:
            upstream = StreamStage.options(name=stream.name).bind(plan.addon, stream.parts, upstream,
                                                                  plan.overrides_for(stream.name))
            stages[stream.name] = upstream
        assert upstream is not None  # a layout has at least one stream part
        addons[plan.addon] = AddonHandles(encoders, upstream, stages, plan.encoder, plan.overrides)
    return Ingress.options(name=INGRESS).bind(addons)
