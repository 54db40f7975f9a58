"""Run the service from a serve config on a local Ray (``voxstack serve``).

The Ray is started as a cluster's head is, with Ray's own ``ray start --head --block`` (so its metrics
and dashboard ports are set through Ray's public options), and the config is applied through the
dashboard, as ``voxstack deploy`` applies later changes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deployments.config import load_config, stage_backends, validate_config
from deployments.dashboard import DEFAULT_DASHBOARD_PORT, Dashboard, DashboardError
from deployments.devices import check_devices
from deployments.ray_settings import quiet_serve_settings
from deployments.request_log import RequestLogFollower
from deployments.rollout import DEFAULT_READY_TIMEOUT_S, NotReady
from deployments.rollout import deploy as rollout

DEFAULT_METRICS_PORT = 8080
"""Where Ray exports the service's Prometheus metrics (``/metrics``) on every node."""

HEAD_START_TIMEOUT_S = 120.0
"""How long Ray's head may take to answer on its dashboard (about 5 s on two cores)."""


def say(message: str) -> None:
    print(f"voxstack: {message}", flush=True)


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free now: every probe stays bound until all are chosen, so two cannot meet."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def free_port() -> int:
    return free_ports(1)[0]


def terminate(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM ``process`` and wait up to ``timeout_s`` for it to end (it may still run after)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass


def ray_command() -> str:
    """Ray's CLI beside this Python (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "ray"
    return str(beside) if beside.exists() else (shutil.which("ray") or "ray")


class LocalHead:
    """``ray start --head --block`` as a child: Ray's head with its dashboard and metrics on fixed ports.

    Stopping it sends SIGTERM, on which ``ray start`` stops every process it started. The node does not
    wait to drain (``RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S`` 0 unless set): the whole service is going.
    """

    def __init__(self, metrics_port: int, dashboard_port: int, dashboard_host: str = "127.0.0.1",
                 quiet: bool = True) -> None:
        self.metrics_port = metrics_port
        self.quiet = quiet
        """Whether Serve's loops run at ``ray_settings``'s slower pace (else at Serve's defaults)."""
        self.dashboard = Dashboard(f"http://{'127.0.0.1' if dashboard_host == '0.0.0.0' else dashboard_host}"
                                   f":{dashboard_port}")
        self.log = Path(tempfile.mkdtemp(prefix="voxstack-")) / "ray-start.log"
        gcs_port, agent_port = [port for port in free_ports(4) if port not in (metrics_port, dashboard_port)][:2]
        self.gcs_address = f"127.0.0.1:{gcs_port}"
        """Ray's bootstrap address (what Ray's state API takes)."""
        # The dashboard agent (which serves each node's log files) on a free port too: a second Ray on the
        # machine would otherwise find Ray's default port taken and run without one.
        self.args = [ray_command(), "start", "--head", "--block", f"--port={gcs_port}",
                     "--include-dashboard=true", f"--dashboard-host={dashboard_host}",
                     f"--dashboard-port={dashboard_port}", f"--metrics-export-port={metrics_port}",
                     f"--dashboard-agent-listen-port={agent_port}", "--disable-usage-stats"]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = HEAD_START_TIMEOUT_S) -> None:
        """Start the head and wait until its dashboard answers; raise NotReady with Ray's words if it dies."""
        env = {**os.environ, **(quiet_serve_settings() if self.quiet else {}), "RAY_USAGE_STATS_ENABLED": "0"}
        env.setdefault("RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S", "0")
        with open(self.log, "wb") as out:  # a session of its own: a terminal's Ctrl-C reaches only us, who stop it
            self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        started = time.monotonic()
        while not self.dashboard.answers():
            if self.process.poll() is not None:
                raise NotReady(f"Ray did not start (exit {self.process.returncode}):\n{self.tail()}")
            if time.monotonic() - started > timeout_s:
                raise NotReady(f"Ray's dashboard did not answer at {self.dashboard.url} after {timeout_s:g} s:\n"
                               f"{self.tail()}")
            time.sleep(0.5)

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def wait(self) -> None:
        """Block while the head runs; raise NotReady if it stops on its own."""
        assert self.process is not None
        code = self.process.wait()
        raise NotReady(f"Ray stopped on its own (exit {code}):\n{self.tail()}")

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM the head; past ``timeout_s``, SIGKILL its whole process group (every Ray process it started)."""
        if self.process is None:
            return
        terminate(self.process, timeout_s)
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def run_local(config_path: Path, timeout_s: float = DEFAULT_READY_TIMEOUT_S,
              metrics_port: int = DEFAULT_METRICS_PORT, port: int | None = None,
              dashboard_port: int = DEFAULT_DASHBOARD_PORT) -> None:
    """Start a local Ray, serve the config on its HTTP address, and block until Ctrl-C or SIGTERM.

    ``port`` replaces the config's ``http_options.port``. Raises ``rollout.NotReady`` (after stopping
    Ray) when the service is not ready in time.
    """
    raw, config = load_config(config_path)
    if port is not None:
        raw["http_options"] = {**(raw.get("http_options") or {}), "port": port}
        config = validate_config(raw)
    check_devices(stage_backends(config))  # before Ray starts: a missing device fails now, not in a replica

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    head = LocalHead(metrics_port, dashboard_port)
    signal.signal(signal.SIGTERM, stop)
    try:
        started = time.monotonic()
        head.start()
        say(f"Ray dashboard at {head.dashboard.url} (voxstack deploy --address); "
            f"metrics at http://127.0.0.1:{metrics_port}/metrics")
        rollout(raw, head.dashboard, timeout_s, progress=say)
        http = config.http_options
        say(f"serving {[a.name for a in config.applications]} on http://{http.host}:{http.port} "
            f"(ready in {time.monotonic() - started:.0f} s)")
        requests = RequestLogFollower(head.dashboard, head.gcs_address, say)
        requests.start()
        head.wait()
    except DashboardError as error:
        raise NotReady(str(error)) from None
    except KeyboardInterrupt:
        pass
    finally:
        head.stop()
