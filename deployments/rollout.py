"""Apply a serve config to a running Ray and wait until every stage serves (``voxstack serve`` / ``deploy``).

Serve applies a config as ``serve deploy`` does: a change of ``user_config`` (A/B weights, limits),
autoscaling or replica counts reconfigures the live replicas in place; a change of code, arguments,
``ray_actor_options`` or ``runtime_env`` starts new replicas and drains the old ones. Readiness is read
through Serve's public ``serve.status()`` and, per application, the ingress's ``healthz``.
"""

from __future__ import annotations

import copy
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deployments.app import INGRESS, deployment_names
from deployments.config import Application, Deployment, ServeConfig, validate_config
from deployments.ingress import IngressConfig

DEFAULT_READY_TIMEOUT_S = 600.0
"""Long enough for every shipped CPU config to warm up on a two-core machine (ab.yaml takes about a minute)."""


APPLICATION = "(application)"
"""The stage name of an application Serve has not built yet."""


class NotReady(TimeoutError):
    """The service did not become ready in time, or a stage failed; the message names the stages."""


@dataclass(frozen=True)
class StageState:
    """One deployment's progress towards its starting replica count."""

    app: str
    name: str
    running: int
    target: int
    status: str
    message: str

    @property
    def ready(self) -> bool:
        return self.running >= self.target and self.status in ("HEALTHY", "UPSCALING", "DOWNSCALING")


def target_replicas(deployment: Deployment | None) -> int:
    """Replicas a deployment starts with: ``num_replicas``, else its autoscaling's initial or minimum."""
    if deployment is None:
        return 1
    if isinstance(deployment.num_replicas, int):
        return deployment.num_replicas
    scaling = deployment.autoscaling_config
    if scaling is not None:
        return scaling.initial_replicas if scaling.initial_replicas is not None else scaling.min_replicas
    return 1


DRAIN_MARGIN_S = 5.0
"""Added to the longest a stream may last: Serve checks a draining replica's ongoing requests every 2 s."""


def drain_timeout_s(application: Application) -> float:
    """How long a replica being replaced may keep serving the streams it has: no stream outlives its request's
    deadline (the ingress ``deadline_s``), and a stage's call lasts at most one stream."""
    ingress = next((d for d in application.deployments if d.name == INGRESS), None)
    config = IngressConfig.model_validate((ingress.user_config if ingress else None) or {})
    return config.deadline_s + DRAIN_MARGIN_S


def with_drain(raw: dict[str, Any], config: ServeConfig) -> dict[str, Any]:
    """A copy of ``raw`` where every stage lacking ``graceful_shutdown_timeout_s`` drains for ``drain_timeout_s``.

    When a rollout restarts a stage, its old replicas take no new calls and finish those in flight; a call
    still running when the time is up fails, and its stream ends with an error, never cut silently.
    """
    out = copy.deepcopy(raw)
    for entry, application in zip(out["applications"], config.applications, strict=True):
        timeout = drain_timeout_s(application)
        listed = {d.get("name") for d in entry.setdefault("deployments", [])}
        entry["deployments"] += [{"name": name} for name in deployment_names(application.args) if name not in listed]
        for deployment in entry["deployments"]:
            deployment.setdefault("graceful_shutdown_timeout_s", timeout)
    return out


def submit(raw: dict[str, Any]) -> ServeConfig:
    """Validate ``raw`` strictly and hand it to Serve on the connected Ray; returns without waiting.

    Serve's proxies start with the config's ``http_options`` through the public ``serve.start``. Serve
    has no public call that applies a config without the dashboard (``serve deploy`` goes through the
    dashboard's REST API), so the config goes to the controller through the client that ``serve.start``
    made, as ``serve run CONFIG`` does, without its fixed 60 s wait: readiness is waited for here.
    """
    from ray import serve
    from ray.serve.context import _get_global_client
    from ray.serve.schema import ServeDeploySchema

    config = validate_config(raw)
    raw = with_drain(raw, config)
    serve.start(proxy_location=config.proxy_location, http_options=config.http_options.model_dump(exclude_none=True),
                logging_config=config.logging_config)
    _get_global_client().deploy_apps(ServeDeploySchema.model_validate(raw), _blocking=False)
    return config


def _requested(deployment: Deployment | None) -> dict[str, float]:
    """The resources one replica asks for (Serve's default is one CPU)."""
    options = deployment.ray_actor_options if deployment else None
    if options is None:
        return {"CPU": 1.0}
    wants = {"CPU": 1.0 if options.num_cpus is None else options.num_cpus}
    if options.num_gpus:
        wants["GPU"] = options.num_gpus
    wants.update(options.resources or {})
    return {k: v for k, v in wants.items() if v > 0}


def why_waiting(deployment: Deployment | None) -> str | None:
    """Why a replica of ``deployment`` cannot be placed now, from the nodes' resources (None: it can)."""
    import ray

    wants = _requested(deployment)
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    for key in wants:
        if not any(key in node for node in nodes):
            return f"waiting for resource {key} that no node has (each replica asks {wants})"
    free = ray.available_resources()
    short = {k: v for k, v in wants.items() if free.get(k, 0.0) + 1e-9 < v}
    if short:
        return f"waiting for {', '.join(f'{k} {v:g} (free {free.get(k, 0.0):g})' for k, v in short.items())}"
    return None


class Readiness:
    """Serve's view of a config's applications, summarised stage by stage."""

    def __init__(self, config: ServeConfig, since: float = 0.0, http_url: str | None = None) -> None:
        self.config = config
        self.http_url = http_url
        """The proxies' address, when known: ``healthz`` is then also asked over HTTP, route by route."""
        self.since = since
        """Applications last deployed before this Unix time are still on an older config."""
        self.options = {(app.name, d.name): d for app in config.applications for d in app.deployments}
        self.deploying: list[str] = []
        """Applications Serve does not report RUNNING at the last look."""

    def stages(self) -> list[StageState]:
        from ray import serve

        status = serve.status()
        states: list[StageState] = []
        self.deploying = []
        for app in self.config.applications:
            overview = status.applications.get(app.name)
            if overview is None or overview.status != "RUNNING":
                self.deploying.append(app.name)
            if overview is None:
                states.append(StageState(app.name, APPLICATION, 0, 1, "NOT_STARTED", "not deployed yet"))
                continue
            if overview.status == "DEPLOY_FAILED":
                raise NotReady(f"application {app.name} failed to deploy: {overview.message}")
            if overview.last_deployed_time_s + 1.0 < self.since or not overview.deployments:
                states.append(StageState(app.name, APPLICATION, 0, 1, str(overview.status),
                                         overview.message or "building the application"))
                continue
            for name, deployment in overview.deployments.items():
                running = int(deployment.replica_states.get("RUNNING", 0))
                target = target_replicas(self.options.get((app.name, name)))
                states.append(StageState(app.name, name, running, target, str(deployment.status.value),
                                         deployment.message))
        return states

    def healthy(self) -> list[str]:
        """Applications whose ingress does not yet answer ``healthz`` with 200, asked through Serve.

        Asked through a handle, not HTTP: the running proxies keep the address they started with,
        whatever ``http_options`` a later config gives.
        """
        from ray import serve

        if any(str(getattr(p, "value", p)) != "HEALTHY" for p in serve.status().proxies.values()):
            return [app.name for app in self.config.applications]
        waiting = []
        for app in self.config.applications:
            try:
                answer = serve.get_app_handle(app.name).healthz.remote().result(timeout_s=10)
                if getattr(answer, "status_code", None) != 200 or not self._http_ok(app.route_prefix):
                    waiting.append(app.name)
            except Exception:  # not routable yet, or a stage still starting
                waiting.append(app.name)
        return waiting

    def _http_ok(self, route_prefix: str) -> bool:
        if self.http_url is None:
            return True
        url = f"{self.http_url}{route_prefix.rstrip('/')}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return bool(response.status == 200)
        except OSError:  # refused, 404 before the route exists, 503 while starting
            return False

    def explain(self, states: list[StageState]) -> str:
        lines = []
        for s in states:
            if s.ready:
                continue
            reason = why_waiting(self.options.get((s.app, s.name))) if s.name != APPLICATION else None
            detail = reason or s.message or s.status
            lines.append(f"  {s.app}/{s.name}: {s.running} of {s.target} replicas running ({s.status}); {detail}")
        return "\n".join(lines)


def summary(states: list[StageState]) -> str:
    stages = [s for s in states if s.name != APPLICATION]
    building = sorted({s.app for s in states if s.name == APPLICATION})
    replicas = sum(min(s.running, s.target) for s in stages)
    line = (f"{replicas} of {sum(s.target for s in stages)} replicas ready, "
            f"{sum(s.ready for s in stages)} of {len(stages)} stages ready")
    return line + (f", building applications {building}" if building else "")


def wait_ready(config: ServeConfig, timeout_s: float = DEFAULT_READY_TIMEOUT_S,
               progress: Callable[[str], None] = print, since: float = 0.0, poll_s: float = 1.0,
               http_url: str | None = None) -> float:
    """Wait until every stage has its starting replicas and every ingress answers ``healthz``.

    Prints progress when it changes; returns the seconds waited. Raises NotReady after ``timeout_s``
    naming each stage that is not ready and why (e.g. a resource no node has), or at once when an
    application fails to deploy.
    """
    readiness = Readiness(config, since, http_url)
    started = time.monotonic()
    if since:
        time.sleep(poll_s)  # let Serve's control loop take up a config it was just given
    last = ""
    while True:
        states = readiness.stages()
        line = summary(states)
        staged = all(s.ready for s in states) and not readiness.deploying
        waiting = readiness.healthy() if staged else []
        if staged and not waiting:
            progress(f"{line} ({time.monotonic() - started:.0f} s)")
            return time.monotonic() - started
        if waiting:
            line += f", waiting for the proxies and healthz of {waiting}"
        elif all(s.ready for s in states):
            line += f", applications {readiness.deploying} still deploying"
        if line != last:
            progress(f"{line} ({time.monotonic() - started:.0f} s)")
            last = line
        if time.monotonic() - started > timeout_s:
            detail = readiness.explain(states) or f"  healthz does not answer 200 for {waiting}"
            raise NotReady(f"not ready after {timeout_s:g} s ({line}):\n{detail}")
        time.sleep(poll_s)


def deploy(raw: dict[str, Any], timeout_s: float | None = DEFAULT_READY_TIMEOUT_S,
           progress: Callable[[str], None] = print, http_url: str | None = None) -> ServeConfig:
    """Apply a config on the connected Ray; wait for readiness unless ``timeout_s`` is None."""
    since = time.time()
    config = submit(raw)
    if timeout_s is not None:
        wait_ready(config, timeout_s, progress, since, http_url=http_url)
    return config
