"""Where a machine's CPU goes: the whole machine's busy time, its share while idle, and one call's cost by
process role (client, Serve proxy, ingress, encoder and stream-stage replicas, controller, Ray's own)."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

import psutil


async def cpu_samples(into: list[tuple[float, float]], every_s: float = 0.02) -> None:
    """(time, machine CPU seconds) every ``every_s`` until cancelled."""
    while True:
        into.append((time.perf_counter(), machine_cpu_s()))
        await asyncio.sleep(every_s)


def busy_share(samples: list[tuple[float, float]], until: float) -> float:
    """Share of the cores busy from the first sample to ``until``."""
    begin = samples[0]
    end = min(samples, key=lambda sample: abs(sample[0] - until))
    return (end[1] - begin[1]) / max(1e-9, (end[0] - begin[0]) * (os.cpu_count() or 1))


def machine_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (every process, every core)."""
    times = psutil.cpu_times()
    return float(times.user + times.system + getattr(times, "nice", 0.0) + getattr(times, "irq", 0.0)
                 + getattr(times, "softirq", 0.0))


def idle_cpu_share(seconds: float = 10.0) -> float:
    """Share of the machine's cores busy while nothing is asked of the service."""
    before, start = machine_cpu_s(), time.monotonic()
    time.sleep(seconds)
    return (machine_cpu_s() - before) / ((time.monotonic() - start) * (os.cpu_count() or 1))


def compute_of(call: Any, idle_share: float, repeats: int = 10) -> float:
    """Median machine CPU seconds one call costs, less what the machine spends idle meanwhile."""
    costs = []
    for _ in range(repeats):
        before, start = machine_cpu_s(), time.monotonic()
        call()
        wall = time.monotonic() - start
        costs.append(machine_cpu_s() - before - idle_share * wall * (os.cpu_count() or 1))
    return statistics.median(costs)


ROLES = (("ProxyActor", "Serve proxy"), ("ServeReplica:voxstack:Ingress", "ingress replica"),
         ("Encoders", "encoder replica"), ("ServeReplica", "stream stage replica"),
         ("ServeController", "Serve controller"), ("ray", "Ray's own (GCS, raylet, dashboard, agents)"))
"""Substrings of a process's command line, in the order they are tried, and the role they name."""


def cpu_by_role(pid: int) -> dict[str, float]:
    """CPU seconds each role's processes have used so far; ``pid`` (this process) is the client."""
    used: dict[str, float] = {}
    for process in psutil.process_iter(["cmdline"]):
        try:
            times = process.cpu_times()
            line = " ".join(process.info["cmdline"] or [])
        except psutil.Error:
            continue
        role = "client (this process)" if process.pid == pid else next(
            (name for key, name in ROLES if key in line), None)
        if role is not None:
            used[role] = used.get(role, 0.0) + times.user + times.system
    return used


def breakdown(call: Any, repeats: int = 20) -> dict[str, float]:
    """CPU milliseconds per call by role, less what each role spends in an idle spell as long."""
    pid = os.getpid()
    start, before = time.monotonic(), cpu_by_role(pid)
    for _ in range(repeats):
        call()
    wall, after = time.monotonic() - start, cpu_by_role(pid)
    time.sleep(wall)
    idle = cpu_by_role(pid)
    return {role: round(1000 * ((after[role] - before.get(role, 0.0)) - (idle[role] - after[role])) / repeats, 1)
            for role in after if role in idle}
