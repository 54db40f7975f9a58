"""The addons behind one ingress: each with its frontend, encoder variants, router and stage chain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ray.serve.handle import DeploymentHandle

from blocks.addon import Addon
from blocks.controls import honoured
from blocks.errors import InputError
from blocks.frontends import Frontend, build_frontend
from deployments.errors import UnknownModel
from deployments.routing import WeightedRouter


@dataclass(frozen=True)
class AddonHandles:
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


class ServedAddon:
    """One addon as the ingress sees it (the ``model`` of a request)."""

    def __init__(self, name: str, handles: AddonHandles) -> None:
        self.addon = Addon.open(name, overrides=handles.overrides)
        self.frontend: Frontend = build_frontend(self.addon.frontend_context(), self.addon.config.frontend)
        self.encoders = handles.encoders
        self.tail = handles.tail
        self.stages = {**handles.encoders, **handles.stages}
        self.default_variant = handles.default
        self.router = WeightedRouter({self.default_variant: 1.0})

    @property
    def name(self) -> str:
        return self.addon.name

    @property
    def sample_rate(self) -> int:
        return self.addon.config.sample_rate

    def route(self, weights: dict[str, float]) -> None:
        """Split this addon's traffic by the weights of its encoders (all to the default if none)."""
        mine = {name: weight for name, weight in weights.items() if name in self.encoders}
        self.router = WeightedRouter(mine or {self.default_variant: 1.0})

    def voices(self) -> list[dict[str, Any]]:
        """The addon's voices as ``GET /v1/audio/voices`` lists them (the first is the default; ``instructions``:
        whether the voice follows OpenAI's ``instructions``, which none here does)."""
        config = self.addon.config
        return [{"name": v.name, "model": config.name, "language": config.language(v), "speaker": v.speaker,
                 "description": v.description, "default": index == 0, "instructions": False}
                for index, v in enumerate(config.voices)]

    def describe(self) -> dict[str, Any]:
        """The addon's ``/v1/models`` entry."""
        config = self.addon.config
        return {"id": config.name, "object": "model", "owned_by": "voxstack", "version": config.version,
                "voices": self.voices(), "sample_rate": config.sample_rate, "variants": sorted(self.encoders),
                "language": config.frontend.voice, "description": config.description,
                "controls": sorted(honoured(self.addon.stack_nodes))}


class ServedAddons:
    """Every served addon by name; an unknown name is refused naming the available ones."""

    def __init__(self, addons: dict[str, AddonHandles]) -> None:
        self.by_name = {name: ServedAddon(name, handles) for name, handles in addons.items()}
        self.encoders = {e for model in self.by_name.values() for e in model.encoders}
        self.stages = {n: h for model in self.by_name.values() for n, h in model.stages.items()}

    def get(self, name: str | None) -> ServedAddon:
        """The addon called ``name`` (the first one when None)."""
        if name is None:
            return next(iter(self.by_name.values()))
        if (model := self.by_name.get(name)) is None:
            raise UnknownModel(f"model {name!r} does not exist; available: {sorted(self.by_name)}")
        return model

    def route(self, weights: dict[str, float]) -> None:
        """Apply the ingress weights (encoder deployment -> weight) to every addon."""
        if unknown := set(weights) - self.encoders:
            raise InputError(f"weights: unknown variants {sorted(unknown)}; deployed: {sorted(self.encoders)}")
        for model in self.by_name.values():
            model.route(weights)
