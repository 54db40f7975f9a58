"""Ray's autoscaler driving its fake multi-node provider, in a session of its own.

The provider is the one ``ray.cluster_utils.AutoscalingCluster`` starts for Ray's tests: a CPU-only head, and
worker types ``gpu`` (a logical GPU) and ``inf2`` (two logical ``neuron_cores``), each with ``min_workers: 0``.
It is started with ``ray start --head --autoscaling-config`` on its own ports and temp folder, and stopped by
killing that session's processes only (``AutoscalingCluster.start`` would first run ``ray stop --force``,
which stops every Ray on the machine).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from deployments.run import free_ports, ray_command, terminate

NODE_TYPES = {"ray.head.default": {"resources": {"CPU": 2}, "node_config": {}, "max_workers": 0},
              "gpu": {"resources": {"CPU": 0, "GPU": 1, "object_store_memory": 100 * 1024**2}, "node_config": {},
                      "min_workers": 0, "max_workers": 2},
              "inf2": {"resources": {"CPU": 0, "neuron_cores": 2, "object_store_memory": 100 * 1024**2},
                       "node_config": {}, "min_workers": 0, "max_workers": 2}}


def node_type(resources: dict[str, float]) -> str:
    """A node's type from its resources."""
    if resources.get("neuron_cores"):
        return "inf2"
    if resources.get("GPU"):
        return "gpu"
    return "head"


class FakeAutoscalingCluster:
    """Ray's autoscaler with the fake multi-node provider, started and stopped without touching other Rays."""

    def __init__(self, idle_timeout_minutes: float = 0.1) -> None:
        self.temp = tempfile.mkdtemp(prefix="vxas")
        self.port, self.dashboard_port = free_ports(2)
        self.address = f"127.0.0.1:{self.port}"
        self.config = {
            "cluster_name": "voxstack-fake", "max_workers": 4, "upscaling_speed": 1.0,
            "idle_timeout_minutes": idle_timeout_minutes,
            "provider": {"type": "fake_multinode", "use_node_id_as_ip": True, "disable_node_updaters": True,
                         "disable_launch_config_check": True, "gcs_address": self.address},
            "available_node_types": NODE_TYPES, "head_node_type": "ray.head.default", "auth": {}, "docker": {},
            "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
            "worker_setup_commands": [], "head_start_ray_commands": [], "worker_start_ray_commands": [],
            "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False,
            "rsync_exclude": [], "rsync_filter": []}
        self.env = {**os.environ, "RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1",
                    "RAY_TMPDIR": self.temp, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
                    "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}  # a bench's cluster stops without draining
        self.env.pop("RAY_ADDRESS", None)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120) -> None:
        path = Path(self.temp) / "autoscaling.json"
        path.write_text(json.dumps(self.config))
        ray = ray_command()
        with open(Path(self.temp) / "ray-start.log", "wb") as log:  # the head keeps its own copy of the file
            self.process = subprocess.Popen(
                [ray, "start", "--head", "--block", f"--port={self.port}", "--num-cpus=2",
                 f"--autoscaling-config={path}", f"--temp-dir={self.temp}/ray", "--include-dashboard=true",
                 f"--dashboard-port={self.dashboard_port}", "--node-ip-address=127.0.0.1"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.dashboard_port), timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log_text = (Path(self.temp) / "ray-start.log").read_text()
                    raise RuntimeError(f"the head did not start:\n{log_text}") from None
                time.sleep(0.5)

    def mine(self) -> list[int]:
        """Processes of this cluster: the head's session, and every process with this cluster's temp folder."""
        import psutil

        pids = []
        for proc in psutil.process_iter(["pid"]):
            try:
                if proc.pid != os.getpid() and (
                        (self.process is not None and os.getpgid(proc.pid) == self.process.pid)
                        or proc.environ().get("RAY_TMPDIR") == self.temp):
                    pids.append(proc.pid)
            except (psutil.Error, OSError):
                continue
        return pids

    def stop(self) -> None:
        if self.process is None:
            return
        terminate(self.process, 30)
        for pid in self.mine():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)
