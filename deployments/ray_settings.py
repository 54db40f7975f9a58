"""Serve settings that cut Ray's idle CPU on a small machine, applied by ``voxstack serve``.

Serve's controller runs its control loop every 0.1 s and each replica exports cached metrics every
0.1 s; on two cores that is a measurable share while nothing is asked of the service
(``bench/serve_load.py`` reports it). Slower loops change how fast the controller reacts (a replica
started or stopped, a config applied), not how requests flow: routing and streaming do not wait on them.
"""

from __future__ import annotations

import os

QUIET_SERVE_SETTINGS = {
    "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.5",
    "RAY_SERVE_METRICS_EXPORT_INTERVAL_MS": "1000",
}


def quiet_serve_settings() -> dict[str, str]:
    """The settings, each left as the environment gives it where set (the user's choice wins)."""
    return {name: os.environ.get(name, value) for name, value in QUIET_SERVE_SETTINGS.items()}

