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
from deployments.plan import AddonPlan, AppArgs, plan_app


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


def deployment_backends(plan: AddonPlan, name: str) -> dict[str, BackendConfig]:
    """The backend each of the addon's networks gets in deployment ``name``."""
    addon = Addon.open(plan.addon, overrides=plan.overrides_for(name))
    return {network: addon.backend_for(network) for network in addon.config.networks}


def application_backends(application: str, args: AppArgs) -> list[StageBackend]:
    """Every deployment of one application (the ingress runs no network and is left out)."""
    return [StageBackend(application, name, plan.addon, deployment_backends(plan, name))
            for plan in plan_app(args) for name in plan.names]


def check_devices(stages: list[StageBackend]) -> list[StageBackend]:
    """``stages``, once each device one asks for is checked to exist here; a ConfigError names the
    application, the deployment and what is missing."""
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
