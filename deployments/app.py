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
    """Per addon: encoders (and variants) -> stream stages chained in stack order (the first holding the
    encoder part when ``colocate_encoder``); one ingress."""
    args = AppArgs.model_validate(args) if not isinstance(args, AppArgs) else args
    addons: dict[str, AddonHandles] = {}
    for plan in plan_app(args):
        stages: dict[str, DeploymentHandle] = {}
        upstream = None
        for index, stream in enumerate(plan.streams):
            upstream = StreamStage.options(name=stream.name).bind(plan.addon, stream.parts, upstream,
                                                                  plan.overrides_for(stream.name),
                                                                  encoder=plan.colocated and index == 0)
            stages[stream.name] = upstream
        assert upstream is not None  # a layout has at least one stream part
        encoders = {name: EncoderStage.options(name=name).bind(plan.addon, plan.variants.get(name),
                                                               plan.overrides_for(name))
                    for name in plan.encoder_stages}
        if plan.colocated:
            encoders = {plan.encoder: stages[plan.encoder], **encoders}
        addons[plan.addon] = AddonHandles(encoders, upstream, stages, plan.encoder, plan.overrides)
    return Ingress.options(name=INGRESS).bind(addons)
