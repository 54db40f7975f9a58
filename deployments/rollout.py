"""Apply a serve config to a running Ray and wait until every stage serves (``voxstack serve`` / ``deploy``).

The config goes through Ray's dashboard REST API, as ``serve deploy`` sends it. A change of ``user_config``
(A/B weights, limits), autoscaling or replica counts reconfigures the live replicas in place; a change of
code, arguments, ``ray_actor_options`` or ``runtime_env`` starts new replicas and drains the old ones. Readiness is read
from the same API and, per application, from the ingress's ``healthz`` through Serve's proxy.
"""

from __future__ import annotations

import copy
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from ray.serve.schema import ServeDeploySchema

from blocks.errors import ConfigError, describe_validation
from deployments.config import Application, ServeConfig, application_deployments, validate_config
from deployments.dashboard import Dashboard
from deployments.plan import INGRESS
from deployments.settings import IngressConfig

DEFAULT_READY_TIMEOUT_S = 600.0
"""Long enough for every shipped CPU config to warm up on a two-core machine (ab.yaml takes about a minute)."""


APPLICATION = "(application)"
"""The stage name of an application Serve has not built yet."""


class NotReady(TimeoutError):
    """The service did not become ready in time, or a stage failed; the message names the stages."""


@dataclass(frozen=True)
class StageState:
    """One deployment's progress towards the replica count Serve targets for it."""

    app: str
    name: str
    running: int
    target: int
    status: str
    message: str

    @property
    def ready(self) -> bool:
        return self.running >= self.target and self.status in ("HEALTHY", "UPSCALING", "DOWNSCALING")


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
        entry["deployments"] += [{"name": name} for name in application_deployments(application) if name not in listed]
        for deployment in entry["deployments"]:
            deployment.setdefault("graceful_shutdown_timeout_s", timeout)
    return out


def submit(raw: dict[str, Any], dashboard: Dashboard) -> ServeConfig:
    """Validate ``raw`` strictly and hand it to Serve through the dashboard; returns without waiting.

    Serve starts its proxies with the config's ``http_options`` the first time; readiness is waited
    for here, not with Serve's own fixed wait.
    """
    config = validate_config(raw)
    try:  # Serve's own schema, for its cross-field rules
        ServeDeploySchema.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(describe_validation(error)) from None
    dashboard.apply(with_drain(raw, config))
    return config


def why_waiting(required: dict[str, float], nodes: list[dict[str, float]]) -> str | None:
    """Why a replica asking ``required`` cannot be placed, when no live node has one of its resources."""
    for key, amount in required.items():
        if amount > 0 and not any(key in node for node in nodes):
            return f"waiting for resource {key} that no node has (each replica asks {required})"
    return None


class Readiness:
    """Serve's view of a config's applications, read from the dashboard and summarised stage by stage."""

    def __init__(self, config: ServeConfig, dashboard: Dashboard, since: float = 0.0) -> None:
        self.config = config
        self.dashboard = dashboard
        self.since = since
        """Applications last deployed before this Unix time are still on an older config."""
        self.deploying: list[str] = []
        """Applications Serve does not report RUNNING at the last look."""
        self.details: dict[str, Any] = {}
        self.required: dict[tuple[str, str], dict[str, float]] = {}

    def stages(self) -> list[StageState]:
        self.details = self.dashboard.serve_details()
        apps = self.details.get("applications") or {}
        states: list[StageState] = []
        self.deploying = []
        for app in self.config.applications:
            overview = apps.get(app.name)
            if overview is None or overview.get("status") != "RUNNING":
                self.deploying.append(app.name)
            if overview is None:
                states.append(StageState(app.name, APPLICATION, 0, 1, "NOT_STARTED", "not deployed yet"))
                continue
            if overview.get("status") == "DEPLOY_FAILED":
                raise NotReady(f"application {app.name} failed to deploy: {overview.get('message')}")
            deployments = overview.get("deployments") or {}
            if (overview.get("last_deployed_time_s") or 0.0) + 1.0 < self.since or not deployments:
                states.append(StageState(app.name, APPLICATION, 0, 1, str(overview.get("status")),
                                         overview.get("message") or "building the application"))
                continue
            for name, deployment in deployments.items():
                running = sum(r.get("state") == "RUNNING" for r in deployment.get("replicas") or [])
                self.required[(app.name, name)] = deployment.get("required_resources") or {}
                states.append(StageState(app.name, name, running, int(deployment.get("target_num_replicas") or 0),
                                         str(deployment.get("status")), deployment.get("message") or ""))
        return states

    def http_url(self) -> str:
        """The proxies' address as seen from here: the dashboard's host, the port Serve's proxies bind."""
        http = self.details.get("http_options") or {}
        return f"http://{self.dashboard.host}:{http.get('port', 8000)}"

    def healthy(self) -> list[str]:
        """Applications whose ingress does not yet answer ``healthz`` with 200 through Serve's proxy."""
        proxies = (self.details.get("proxies") or {}).values()
        if not proxies or any(p.get("status") != "HEALTHY" for p in proxies):
            return [app.name for app in self.config.applications]
        return [app.name for app in self.config.applications if not self._http_ok(app.route_prefix)]

    def _http_ok(self, route_prefix: str) -> bool:
        """Whether the ingress answers ``healthz`` with 200; NotReady at once when it answers 500: a short
        request through the stages failed, and waiting will not mend it."""
        url = f"{self.http_url()}{route_prefix.rstrip('/')}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return bool(response.status == 200)
        except urllib.error.HTTPError as error:
            if error.code == 500:
                raise NotReady(f"a request through the stages failed: {error.read().decode(errors='replace')}") \
                    from None
            return False
        except OSError:  # refused, 404 before the route exists, 503 while starting
            return False

    def explain(self, states: list[StageState]) -> str:
        try:
            nodes = self.dashboard.node_resources()
        except Exception:  # the explanation is a courtesy: Serve's own message is there without it
            nodes = None
        lines = []
        for s in states:
            if s.ready:
                continue
            required = self.required.get((s.app, s.name), {})
            reason = why_waiting(required, nodes) if nodes is not None and s.name != APPLICATION else None
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


def wait_ready(config: ServeConfig, dashboard: Dashboard, timeout_s: float = DEFAULT_READY_TIMEOUT_S,
               progress: Callable[[str], None] = print, since: float = 0.0, poll_s: float = 1.0) -> float:
    """Wait until every stage has its starting replicas and every ingress answers ``healthz``.

    Prints progress when it changes; returns the seconds waited. Raises NotReady after ``timeout_s``
    naming each stage that is not ready and why (e.g. a resource no node has), or at once when an
    application fails to deploy.
    """
    readiness = Readiness(config, dashboard, since)
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


def deploy(raw: dict[str, Any], dashboard: Dashboard | str, timeout_s: float | None = DEFAULT_READY_TIMEOUT_S,
           progress: Callable[[str], None] = print) -> ServeConfig:
    """Apply a config through a Ray dashboard (or its address); wait for readiness unless ``timeout_s`` is None."""
    dashboard = Dashboard(dashboard) if isinstance(dashboard, str) else dashboard
    since = time.time()
    config = submit(raw, dashboard)
    if timeout_s is not None:
        wait_ready(config, dashboard, timeout_s, progress, since)
    return config
