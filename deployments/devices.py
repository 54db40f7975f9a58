"""Where a serve config puts each stage's networks, and whether this machine can put them there.

Each deployment loads its addon with the application's ``overrides`` and, over them, its own entry of
``stages``; the backend that gives each network is what the replica will use. ``check_devices`` asks the
backends themselves (onnxruntime's providers, torch's CUDA, the Neuron SDK) before a local service starts,
so a config that asks for CUDA where there is none fails at once, saying what to install.
"""

from __future__ import annotations

from dataclasses import dataclass

from blocks.addon import Addon
from blocks.config import BackendConfig
from blocks.errors import ConfigError, DeviceUnavailable
from deployments.config import ServeConfig, addons_of
from deployments.plan import plan_app


@dataclass(frozen=True)
class StageBackend:
    """One deployment and the backend its addon's networks get in it (a stage loads those its blocks run)."""

    application: str
    deployment: str
    addon: str
    networks: dict[str, BackendConfig]

    def describe(self) -> str:
        """``kind/device[/profile]`` of its networks, the same ones grouped (``-``: a stage without networks)."""
        seen: dict[str, list[str]] = {}
        for name, backend in self.networks.items():
            where = f"{backend.kind}/{backend.device}" + ("/fixed" if backend.profile == "fixed" else "")
            seen.setdefault(where, []).append(name)
        return ", ".join(f"{where} ({', '.join(names)})" for where, names in seen.items()) or "-"


def stage_backends(config: ServeConfig) -> list[StageBackend]:
    """Every deployment of every application with its addon's networks' backends as that deployment loads
    them (the ingress runs no network and is left out)."""
    found = []
    for app in config.applications:
        with addons_of(app):
            for plan in plan_app(app.args):
                for name in plan.names:
                    addon = Addon.open(plan.addon, overrides=plan.overrides_for(name))
                    networks = {network: addon.backend_for(network) for network in addon.config.networks}
                    found.append(StageBackend(app.name, name, plan.addon, networks))
    return found


def check_devices(config: ServeConfig) -> list[StageBackend]:
    """The stages' backends, once each device one asks for is checked to exist here; a ConfigError names the
    application, the deployment and what is missing."""
    stages = stage_backends(config)
    for stage in stages:
        for network, backend in stage.networks.items():
            try:
                _check(backend)
            except DeviceUnavailable as error:
                raise ConfigError(f"application {stage.application!r}, deployment {stage.deployment!r}, network "
                                  f"{network!r}: {error}") from None
    return stages


def _check(backend: BackendConfig) -> None:
    if backend.kind == "neuron":
        from blocks.backends.neuron import require_neuron

        require_neuron()
    elif backend.device == "cuda" and backend.kind == "onnxruntime":
        from blocks.backends.onnx import providers_for

        providers_for("cuda")
    elif backend.device == "cuda" and backend.kind == "torch":
        from blocks.backends.torch import torch_device

        torch_device("cuda")
