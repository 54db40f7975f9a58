"""``voxstack serve`` run as a user runs it: a subprocess with its own Ray, ports and temp folder.

Every process it starts (Ray's included) is in the subprocess's own session; stopping it sends SIGTERM
(Serve and Ray shut down), then kills whatever of that session is left. Nothing else is touched.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from deployments.run import free_ports

ROOT = Path(__file__).resolve().parents[2]
VOXSTACK = str(Path(sys.executable).parent / "voxstack")


def client_env(temp: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a voxstack command: its own Ray temp folder, no inherited Ray address, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS",)}
    env.update({"RAY_TMPDIR": temp, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1", **(extra or {})})
    return env


class CliService:
    """``voxstack serve --config CONFIG`` on free HTTP and metrics ports."""

    def __init__(self, config: str, *extra: str, env: dict[str, str] | None = None) -> None:
        self.temp = tempfile.mkdtemp(prefix="vxcli")
        self.env = client_env(self.temp, env)
        """The environment of ``voxstack serve`` and of the other voxstack commands run beside it."""
        self.port, self.metrics_port, self.dashboard_port = free_ports(3)
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self.log = Path(self.temp) / "serve.log"
        self.args = [VOXSTACK, "serve", "--config", config, "--port", str(self.port),
                     "--metrics-port", str(self.metrics_port), "--dashboard-port", str(self.dashboard_port), *extra]
        self.process: subprocess.Popen[bytes] | None = None
        self.address = ""
        self.ready_s = 0.0

    def launch(self) -> subprocess.Popen[bytes]:
        """Start ``voxstack serve`` without waiting for it."""
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self.process

    def start(self, timeout_s: float = 400) -> CliService:
        """Start ``voxstack serve`` and wait until it says it serves."""
        started = time.monotonic()
        self.launch()
        assert self.process is not None
        while "voxstack: serving" not in self.output():
            assert self.process.poll() is None, f"voxstack serve exited {self.process.returncode}:\n{self.output()}"
            assert time.monotonic() - started < timeout_s, f"not serving after {timeout_s} s:\n{self.output()}"
            time.sleep(0.5)
        self.ready_s = time.monotonic() - started
        found = re.search(r"Ray dashboard at (\S+) ", self.output())
        assert found, self.output()
        self.address = found.group(1)
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def command(self, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        """Another voxstack command on this machine (e.g. ``deploy --address``), as a user runs it."""
        return subprocess.run([VOXSTACK, *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout_s)

    def replicas(self, app: str = "voxstack") -> dict[str, set[str]]:
        """Each deployment's running replicas (their ids), as Serve reports them through the dashboard."""
        from deployments.dashboard import Dashboard

        deployments = Dashboard(self.address).serve_details()["applications"][app]["deployments"]
        return {name: {r["replica_id"] for r in d.get("replicas") or [] if r.get("state") == "RUNNING"}
                for name, d in deployments.items()}

    def stop(self) -> None:
        from deployments.run import terminate

        if self.process is None:
            return
        terminate(self.process, 60)
        try:  # whatever of its session is left (Ray's agents)
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
        self._kill_left_over_ray()

    def _kill_left_over_ray(self) -> None:
        """Every process of this service's Ray still running (its environment names this service's Ray
        folder): a stop that had to SIGKILL ``voxstack serve`` leaves its Ray head, in a session of its own."""
        import psutil

        for process in psutil.process_iter():
            try:
                if process.environ().get("RAY_TMPDIR") == self.temp:
                    process.kill()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue

    def __enter__(self) -> CliService:
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()


def ndjson_stream(url: str, client: str, text: str, model: str = "piper-joe", timeout_s: float = 120,
                  result: dict[str, Any] | None = None) -> dict[str, Any]:
    """One NDJSON stream: its variant (header and start line), audio samples, and whether it ended cleanly.

    ``result``, when given, is filled as the stream goes (``first_at`` once audio has begun).
    """
    started = time.monotonic()
    result = {} if result is None else result
    result.update({"client": client, "samples": 0, "end": None, "error": None, "first_s": None, "first_at": None,
                   "busy": 0})
    while True:  # as a client should: a 429 (busy) is retried after its Retry-After
        with httpx.stream("POST", f"{url}/v1/stream", headers={"x-voxstack-client": client},
                          json={"model": model, "input": text}, timeout=timeout_s) as response:
            result["status"] = response.status_code
            result["variant"] = response.headers.get("x-voxstack-variant")
            if response.status_code == 429 and time.monotonic() - started < timeout_s:
                result["busy"] += 1
                time.sleep(float(response.headers.get("retry-after", "1")))
                continue
            if response.status_code != 200:
                result["error"] = response.read().decode(errors="replace")
                result["ended_at"] = time.monotonic()
                return result
            _read(response, result, started)
            return result


def _read(response: httpx.Response, result: dict[str, Any], started: float) -> None:
    """Fill ``result`` from an NDJSON body."""
    for line in response.iter_lines():
        if not line:
            continue
        record = httpx.Response(200, content=line).json()
        if record["type"] == "start":
            result["start_variant"] = record["variant"]
        elif record["type"] == "audio":
            if result["first_s"] is None:
                result["first_at"] = time.monotonic()
                result["first_s"] = result["first_at"] - started
            result["samples"] += record["samples"]
        elif record["type"] == "end":
            result["end"] = record
        elif record["type"] == "error":
            result["error"] = record["error"]
    result["ended_at"] = time.monotonic()
