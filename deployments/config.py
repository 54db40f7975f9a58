"""Strict validation of serve configs: any unknown key is an error naming its path.

Serve's own schema accepts typos in deployment options silently; these models forbid them, then check
the application's ``args`` against the builder, deployment names against the stack, and each
``user_config`` against the deployment it targets. Nothing here needs Ray or FastAPI: a config is
checked before anything starts (Serve's own schema runs too, when a config is applied).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from blocks.catalog import ENV as ADDONS_ENV
from blocks.catalog import searching
from blocks.errors import ConfigError, describe_validation
from deployments.devices import StageBackend, application_backends, deployment_backends
from deployments.plan import INGRESS, AppArgs, deployment_names, plan_app
from deployments.settings import IngressConfig, StageConfig

BUILDER = "deployments.app:build"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActorOptions(_Strict):
    num_cpus: float | None = Field(default=None, ge=0)
    num_gpus: float | None = Field(default=None, ge=0)
    memory: float | None = Field(default=None, ge=0)
    resources: dict[str, float] | None = None
    accelerator_type: str | None = None
    runtime_env: dict[str, Any] | None = None


class Policy(_Strict):
    """A custom Serve autoscaling policy, e.g. ``deployments.autoscaling:StreamLoadPolicy``."""

    policy_function: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    policy_kwargs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _loads(self) -> Policy:
        """The policy imports, and a class policy takes its kwargs (Serve would find out only in its controller)."""
        module, _, name = self.policy_function.partition(":")
        try:
            target = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"cannot import {self.policy_function!r}: {error}") from None
        if inspect.isclass(target):
            try:
                target(**self.policy_kwargs)
            except (TypeError, ValueError) as error:
                raise ValueError(f"policy_kwargs for {self.policy_function!r}: {error}") from None
        return self


class Autoscaling(_Strict):
    min_replicas: int = Field(default=1, ge=0)
    initial_replicas: int | None = Field(default=None, ge=0)
    max_replicas: int = Field(default=1, ge=1)
    target_ongoing_requests: float | None = Field(default=None, gt=0)
    metrics_interval_s: float | None = Field(default=None, gt=0)
    look_back_period_s: float | None = Field(default=None, gt=0)
    smoothing_factor: float | None = Field(default=None, gt=0)
    upscale_smoothing_factor: float | None = Field(default=None, gt=0)
    downscale_smoothing_factor: float | None = Field(default=None, gt=0)
    upscaling_factor: float | None = Field(default=None, gt=0)
    downscaling_factor: float | None = Field(default=None, gt=0)
    upscale_delay_s: float | None = Field(default=None, ge=0)
    downscale_delay_s: float | None = Field(default=None, ge=0)
    policy: Policy | None = None


class Deployment(_Strict):
    name: str
    num_replicas: int | Literal["auto"] | None = None
    max_ongoing_requests: int | None = Field(default=None, ge=1)
    max_queued_requests: int | None = Field(default=None, ge=-1)
    user_config: dict[str, Any] | None = None
    autoscaling_config: Autoscaling | None = None
    ray_actor_options: ActorOptions | None = None
    graceful_shutdown_wait_loop_s: float | None = Field(default=None, ge=0)
    graceful_shutdown_timeout_s: float | None = Field(default=None, ge=0)
    health_check_period_s: float | None = Field(default=None, gt=0)
    health_check_timeout_s: float | None = Field(default=None, gt=0)
    max_replicas_per_node: int | None = Field(default=None, ge=1)


class Application(_Strict):
    name: str = "voxstack"
    route_prefix: str = "/"
    import_path: Literal["deployments.app:build"]
    args: AppArgs = Field(default_factory=AppArgs)
    runtime_env: dict[str, Any] | None = None
    deployments: list[Deployment] = Field(default_factory=list)


class HttpOptions(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    request_timeout_s: float | None = Field(default=None, gt=0)
    keep_alive_timeout_s: float | None = Field(default=None, gt=0)
    root_path: str | None = None


class ServeConfig(_Strict):
    proxy_location: Literal["Disabled", "HeadOnly", "EveryNode"] | None = None
    http_options: HttpOptions = Field(default_factory=HttpOptions)
    logging_config: dict[str, Any] | None = None
    applications: list[Application] = Field(min_length=1)


def _check_user_config(where: str, deployment: Deployment, args: AppArgs) -> None:
    if deployment.user_config is None:
        return
    model = IngressConfig if deployment.name == INGRESS else StageConfig
    plans = plan_app(args)
    encoders = {name for plan in plans for name in plan.encoders}
    if deployment.name in {name for plan in plans for name in plan.encoder_stages}:
        raise ConfigError(f"{where}.user_config: encoder deployments take no user_config")
    try:
        parsed = model.model_validate(deployment.user_config)
    except ValidationError as error:
        raise ConfigError(describe_validation(error, root=f"{where}.user_config")) from None
    if isinstance(parsed, IngressConfig):
        if unknown := set(parsed.weights) - encoders:
            raise ConfigError(f"{where}.user_config.weights: unknown variants {sorted(unknown)}; "
                              f"encoders are {sorted(encoders)}")
        served = [plan.addon for plan in plans]
        if unknown := sorted({t for t in parsed.openai.models.values() if t is not None and t not in served}):
            raise ConfigError(f"{where}.user_config.openai.models: {unknown} not served; the addons are {served}")
        for plan in plans:
            mine = [w for name, w in parsed.weights.items() if name in plan.encoders]
            if mine and (min(mine) < 0 or sum(mine) <= 0):
                raise ConfigError(f"{where}.user_config.weights: {plan.addon}'s weights must be non-negative "
                                  f"with a positive sum, got {mine}")


def validate_config(raw: Any) -> ServeConfig:
    """Validate a serve config (already parsed YAML); raises ConfigError naming the path."""
    try:
        config = ServeConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(describe_validation(error)) from None
    for a, app in enumerate(config.applications):
        with addons_of(app):
            _check_application(a, app)
    return config


def addons_of(app: Application) -> contextlib.AbstractContextManager[None]:
    """Look addons up where the application's replicas will: its ``runtime_env`` may set ``$VOXSTACK_ADDONS``."""
    return searching(((app.runtime_env or {}).get("env_vars") or {}).get(ADDONS_ENV))


def application_deployments(app: Application) -> list[str]:
    """The deployment names of ``app``'s stack (its addons found where its replicas find them)."""
    with addons_of(app):
        return deployment_names(app.args)


def _check_application(a: int, app: Application) -> None:
    try:
        names = deployment_names(app.args)
    except ConfigError as error:
        raise ConfigError(f"$.applications[{a}].args: {error}") from None
    for d, deployment in enumerate(app.deployments):
        where = f"$.applications[{a}].deployments[{d}]"
        if deployment.name not in names:
            raise ConfigError(f"{where}.name: unknown deployment {deployment.name!r}; the stack has {names}")
        if deployment.autoscaling_config and isinstance(deployment.num_replicas, int):
            raise ConfigError(f"{where}: give num_replicas or autoscaling_config, not both")
        _check_user_config(where, deployment, app.args)
    _check_devices_reserved(a, app)
    _check_stage_room(a, app)


def _check_stage_room(a: int, app: Application) -> None:
    """Each stage replica holds a call of every stream the ingress may admit at once (two where it encodes too:
    a stream's chunks and its next utterance's encoding): a stream past its ``max_ongoing_requests`` would
    queue at the stage between two utterances, and stall."""
    ingress = next((d for d in app.deployments if d.name == INGRESS), None)
    admitted = IngressConfig.model_validate((ingress and ingress.user_config) or {}).max_streams
    colocated = {plan.encoder for plan in plan_app(app.args) if plan.colocated}
    for d, deployment in enumerate(app.deployments):
        held = deployment.max_ongoing_requests
        calls = 2 if deployment.name in colocated else 1
        needed = admitted * calls
        if deployment.name != INGRESS and held is not None and held < needed:
            raise ConfigError(f"$.applications[{a}].deployments[{d}].max_ongoing_requests: {deployment.name!r} "
                              f"holds {held} calls per replica, but the ingress admits up to max_streams ({admitted}) "
                              f"streams at once, each with {calls} call(s) here: the calls past {held} "
                              f"would wait between utterances and stall; give it at least {needed}")


def _check_devices_reserved(a: int, app: Application) -> None:
    """A stage whose own backend (``args.stages``) runs on CUDA or NeuronCores must reserve them, so Ray
    places it where they are."""
    options = {d.name: d.ray_actor_options or ActorOptions() for d in app.deployments}
    for plan in plan_app(app.args):
        for name in plan.stage_overrides:
            backends = deployment_backends(plan, name).values()
            held = options.get(name, ActorOptions())
            where = f"$.applications[{a}].args.stages.{name.removeprefix(plan.addon + '.')}"
            if any(b.device == "cuda" for b in backends) and not held.num_gpus:
                raise ConfigError(f"{where}: runs networks on cuda, but deployment {name!r} reserves no GPU "
                                  "(ray_actor_options.num_gpus)")
            if any(b.kind == "neuron" for b in backends) and not (held.resources or {}).get("neuron_cores"):
                raise ConfigError(f"{where}: runs networks on NeuronCores, but deployment {name!r} reserves none "
                                  "(ray_actor_options.resources.neuron_cores)")


def stage_backends(config: ServeConfig) -> list[StageBackend]:
    """Every deployment of every application with its networks' backends, its addons found where its replicas
    find them (``voxstack backends``; checked by ``deployments.devices.check_devices``)."""
    found = []
    for app in config.applications:
        with addons_of(app):
            found += application_backends(app.name, app.args)
    return found


def load_config(path: Path) -> tuple[dict[str, Any], ServeConfig]:
    """Read and validate a serve config file: the raw dict (for Serve) and the parsed model."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read the serve config ({error})") from None
    try:
        return raw, validate_config(raw)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
