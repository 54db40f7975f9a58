"""The addons behind one ingress: each with its frontend, encoder variants, router and stage chain."""

from __future__ import annotations

from typing import Any, TypedDict

from ray.serve.handle import DeploymentHandle

from blocks.addon import Addon
from blocks.controls import honoured
from blocks.frontends import build_frontend
from deployments.api import ApiError
from deployments.routing import WeightedRouter
from deployments.stack import load_addon_config


class AddonHandles(TypedDict):
    """What the builder hands the ingress for one addon."""

    encoders: dict[str, DeploymentHandle]
    """Encoder deployment name -> handle (the stack's own first, then A/B variants)."""
    tail: DeploymentHandle
    """The last stream stage: its chunks are the addon's audio."""
    stages: dict[str, DeploymentHandle]
    default: str
    """The encoder deployment that gets all traffic when no weights name this addon's encoders."""
    overrides: dict[str, Any] | None
    """Config overrides the addon's deployments load it with."""


class ServedModel:
    """One addon as the ingress sees it (the ``model`` of a request)."""

    def __init__(self, name: str, handles: AddonHandles) -> None:
        self.addon: Addon = load_addon_config(name, overrides=handles.get("overrides"))
        self.frontend: Any = build_frontend(self.addon)
        self.encoders = handles["encoders"]
        self.tail = handles["tail"]
        self.stages = {**handles["encoders"], **handles["stages"]}
        self.default_variant = handles["default"]
        self.router = WeightedRouter({self.default_variant: 1.0})

    @property
    def name(self) -> str:
        return str(self.addon.config.name)

    @property
    def sample_rate(self) -> int:
        return int(self.addon.config.sample_rate)

    def route(self, weights: dict[str, float]) -> None:
        """Split this addon's traffic by the weights of its encoders (all to the default if none)."""
        mine = {name: weight for name, weight in weights.items() if name in self.encoders}
        self.router = WeightedRouter(mine or {self.default_variant: 1.0})

    def default(self, option: str) -> float:
        return float(getattr(self.addon.config.defaults, option))

    def describe(self) -> dict[str, Any]:
        """The addon's ``/v1/models`` entry."""
        config = self.addon.config
        return {"id": config.name, "object": "model", "owned_by": "voxstack", "version": config.version,
                "voices": config.voices, "sample_rate": config.sample_rate, "variants": sorted(self.encoders),
                "language": config.frontend.voice, "description": config.description,
                "controls": sorted(honoured(self.addon.stack_nodes))}


class Models:
    """Every served addon by name; unknown names are a 404 listing the available ones."""

    def __init__(self, addons: dict[str, AddonHandles]) -> None:
        self.by_name = {name: ServedModel(name, handles) for name, handles in addons.items()}
        self.encoders = {e for model in self.by_name.values() for e in model.encoders}
        self.stages = {n: h for model in self.by_name.values() for n, h in model.stages.items()}

    def get(self, name: str | None) -> ServedModel:
        """The addon called ``name`` (the first one when None)."""
        if name is None:
            return next(iter(self.by_name.values()))
        if (model := self.by_name.get(name)) is None:
            raise ApiError(404, f"model {name!r} does not exist; available: {sorted(self.by_name)}", "model",
                           "model_not_found")
        return model

    def route(self, weights: dict[str, float]) -> None:
        """Apply the ingress weights (encoder deployment -> weight) to every addon."""
        if unknown := set(weights) - self.encoders:
            raise ValueError(f"weights: unknown variants {sorted(unknown)}; deployed: {sorted(self.encoders)}")
        for model in self.by_name.values():
            model.route(weights)
