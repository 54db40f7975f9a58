"""Run the service from a serve config on a local Ray (``voxstack serve``)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from deployments.config import ServeConfig, load_config, validate_config
from deployments.ray_settings import apply_quiet_serve_settings
from deployments.rollout import DEFAULT_READY_TIMEOUT_S
from deployments.rollout import deploy as rollout

DEFAULT_METRICS_PORT = 8080
"""Where Ray exports the service's Prometheus metrics (``/metrics``) on every node."""


def deploy(raw: dict[str, Any], blocking: bool = True) -> ServeConfig:
    """Validate ``raw`` strictly and apply it on the connected Ray; when blocking, wait until it serves."""
    return rollout(raw, DEFAULT_READY_TIMEOUT_S if blocking else None, progress=lambda _: None)


def say(message: str) -> None:
    print(f"voxstack: {message}", flush=True)


def run_local(config_path: Path, timeout_s: float = DEFAULT_READY_TIMEOUT_S,
              metrics_port: int = DEFAULT_METRICS_PORT, port: int | None = None) -> None:
    """Start a local Ray, serve the config on its HTTP address, and block until Ctrl-C or SIGTERM.

    ``port`` replaces the config's ``http_options.port``. Raises ``rollout.NotReady`` (after stopping
    Serve and Ray) when the service is not ready in time.
    """
    raw, config = load_config(config_path)
    if port is not None:
        raw["http_options"] = {**(raw.get("http_options") or {}), "port": port}
        config = validate_config(raw)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    apply_quiet_serve_settings()  # the local Ray inherits them: less of the cores spent idle
    import ray
    from ray import serve

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    context = ray.init(include_dashboard=False, log_to_driver=False, _metrics_export_port=metrics_port)
    signal.signal(signal.SIGTERM, stop)  # after ray.init, which sets its own: a stop shuts Serve and Ray down
    try:
        say(f"Ray at {context.address_info['gcs_address']} (voxstack deploy --address ...); "
            f"metrics at http://127.0.0.1:{metrics_port}/metrics")
        started = time.monotonic()
        http = config.http_options
        host = "127.0.0.1" if http.host in ("0.0.0.0", "::") else http.host
        rollout(raw, timeout_s, progress=say, http_url=f"http://{host}:{http.port}")
        say(f"serving {[a.name for a in config.applications]} on http://{http.host}:{http.port} "
            f"(ready in {time.monotonic() - started:.0f} s)")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        ray.shutdown()
