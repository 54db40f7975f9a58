"""Run the service from a serve config on a local Ray (``voxstack serve``)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from deployments.config import load_config, validate_config


def deploy(raw: dict[str, Any], blocking: bool = True) -> None:
    """Validate ``raw`` strictly, then deploy its applications on the connected Ray (as ``serve run``)."""
    from ray.serve._private import api as serve_api
    from ray.serve.schema import ServeDeploySchema

    config = validate_config(raw)
    client = serve_api.serve_start(http_options=config.http_options.model_dump(exclude_none=True))
    client.deploy_apps(ServeDeploySchema.model_validate(raw), _blocking=blocking)


def run_local(config_path: Path) -> None:
    """Start a local Ray, serve the config on its HTTP address, and block until Ctrl-C."""
    raw, config = load_config(config_path)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray import serve

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # a container stop shuts Serve and Ray down too
    ray.init(include_dashboard=False)
    try:
        deploy(raw)
        http = config.http_options
        print(f"voxstack: serving {[a.name for a in config.applications]} on http://{http.host}:{http.port}")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        ray.shutdown()
