"""The request lines of ``voxstack serve``'s output: each ingress replica's ``open``/``end``/``abort`` lines
(``deployments.lifecycle``), followed from Serve's log files through Ray's public state API."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from deployments.dashboard import Dashboard, DashboardError
from deployments.lifecycle import MARKER
from deployments.plan import INGRESS

log = logging.getLogger("voxstack.request_log")

POLL_S = 2.0
"""How often the follower looks for ingress replicas it does not follow yet (a rollout starts new ones)."""


class RequestLogFollower:
    """Prints every lifecycle line the ingress replicas log, until ``stop`` (or Ray's end)."""

    def __init__(self, dashboard: Dashboard, ray_address: str, show: Callable[[str], None]) -> None:
        self.dashboard = dashboard
        self.ray_address = ray_address
        self.show = show
        self.followed: set[str] = set()
        self.printed: dict[str, int] = {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="voxstack-request-log", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Stop looking for new replicas; a follower ends when its log stream ends (Ray stopping)."""
        self.stopped.set()

    def _watch(self) -> None:
        while not self.stopped.wait(POLL_S):
            try:
                replicas = self._ingress_replicas()
            except (DashboardError, ValueError, OSError):  # the dashboard restarting or mid-rollout: ask again
                continue
            for replica in replicas:
                key = str(replica.get("replica_id"))
                if key not in self.followed and replica.get("log_file_path") and replica.get("node_id"):
                    self.followed.add(key)
                    threading.Thread(target=self._follow, args=(key, replica), name=f"voxstack-log-{key}",
                                     daemon=True).start()

    def _ingress_replicas(self) -> list[dict[str, str]]:
        found = []
        for app in (self.dashboard.serve_details().get("applications") or {}).values():
            deployment = (app.get("deployments") or {}).get(INGRESS) or {}
            found += [r for r in deployment.get("replicas") or [] if r.get("state") == "RUNNING"]
        return found

    def _follow(self, key: str, replica: dict[str, str]) -> None:
        """Print the replica's lifecycle lines from the start of its log, following it. When the log stream
        ends or breaks, the watcher reopens it while the replica runs; lines already printed are skipped."""
        from ray.util.state import get_log

        seen = 0
        try:
            for text in get_log(address=self.ray_address, node_id=replica["node_id"],
                                filename=replica["log_file_path"].lstrip("/"), follow=True, tail=-1):
                for line in text.splitlines():
                    if MARKER not in line:
                        continue
                    seen += 1
                    if seen > self.printed.get(key, 0) and not self.stopped.is_set():
                        self.printed[key] = seen
                        self.show(line[line.index(MARKER):])
        except Exception as error:  # the state API went away or restarted: the watcher reopens it
            log.debug("log stream of ingress replica %s broke: %s: %s", key, type(error).__name__, error)
        finally:
            self.followed.discard(key)
