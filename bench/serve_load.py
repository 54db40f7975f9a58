"""Concurrent streams over HTTP on held-out-style text: stalls, first audio, admission, overhead.

Starts a local Ray with the tuned Serve settings `voxstack serve` uses, deploys a serve config (default
serve_configs/local.yaml, reduced to the addon under test), and measures, with playback starting at
each stream's first bytes (a chunk arriving more than 20 ms after the audio before it ran out is a stall):

- **load mix**: 8 streams, texts alternating between a 324-character sentence without commas, a
  five-sentence paragraph and a short sentence, started staggered over 1 s and all at once, 3 runs each;
- **16 offered at once**: how many are admitted, that every admitted one plays without a stall, and that
  the rest get 429 (or 503) with Retry-After;
- **capacity**: the most concurrent streams with no stall, over the machine's compute bound (audio
  seconds per second with every core busy, measured in process in the same run);
- **start floor**: the least first audio the last of 8 simultaneous starts can have on this machine:
  every start's compute up to its held first audio, in process, spread over every core;
- **overhead**: the whole machine's CPU time for a lone short sentence over HTTP (one kept-alive client
  connection) against in process, where it goes by process, and Ray's idle CPU with Serve's default
  settings and with the tuned ones.

Prints markdown tables; writes bench/results/serve_load.json and a PNG of every stream's audio buffer
over time. Run: ``python -m bench.serve_load [--runs 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from bench.cpu_usage import breakdown, busy_share, compute_of, cpu_samples, idle_cpu_share
from bench.machine import machine_info
from bench.machine import markdown_table as table
from bench.output import figure, save
from blocks import load_addon
from deployments.config import load_config

if TYPE_CHECKING:
    from deployments.run import LocalHead

LONG = ("The committee that met on Tuesday evening in the old library above the harbour decided after a long and "
        "patient discussion that the new bridge would be built of stone rather than steel because the people who "
        "live along the river had asked for something that would last for centuries and look as if it had always "
        "been there.")
PARAGRAPH = ("Dr. Reyes opened the clinic at 8:30 on Monday. The first patient had waited since dawn. She paid "
             "$42.50 for the visit and left with a prescription. By noon the waiting room was full again. Nobody "
             "complained, because everyone knew the doctor would see them all.")
SHORT = "The weather is nice today."
MIX = (LONG, PARAGRAPH, SHORT)
STALL_TOLERANCE_S = 0.02
RAMP = (4, 6, 8, 10, 12)
"""Streams offered at once to find the most that play without a stall."""


def buffer_trace(started: float, arrivals: list[tuple[float, int]], rate: int) -> dict[str, Any]:
    """Playback from the first bytes: stalls (beyond the tolerance), the longest, and the buffer over time."""
    begin, played = arrivals[0][0], 0
    stalls, worst, trace, where = 0, 0.0, [], []
    for index, (at, samples) in enumerate(arrivals):
        runs_out = begin + played / rate
        if at > runs_out + STALL_TOLERANCE_S:
            stalls += 1
            where.append({"chunk": index, "at_s": round(at - started, 3), "late_ms": round(1000 * (at - runs_out))})
            worst = max(worst, at - runs_out)
            begin += at - runs_out  # playback resumes when the late chunk lands
        played += samples
        trace.append((round(at - started, 3), round(begin + played / rate - at, 3)))
    return {"first": arrivals[0][0] - started, "stalls": stalls, "worst_stall_s": round(worst, 3), "stalled_at": where,
            "audio": played / rate, "trace": trace}


async def http_stream(client: httpx.AsyncClient, n: int, model: str, delay: float) -> dict[str, Any]:
    """One stream of the mix; a refusal is recorded with its status and Retry-After."""
    await asyncio.sleep(delay)
    body = {"model": model, "input": MIX[n % len(MIX)], "seed": n, "marks": []}
    started = time.perf_counter()
    arrivals: list[tuple[float, int]] = []
    rate = 22050
    async with client.stream("POST", "/v1/stream", json=body) as response:
        if response.status_code in (429, 503):
            return {"refused": response.status_code, "retry_after": response.headers.get("retry-after")}
        response.raise_for_status()
        async for line in response.aiter_lines():
            record = json.loads(line)
            if record["type"] == "start":
                rate = record["sample_rate"]
            elif record["type"] == "audio":
                arrivals.append((time.perf_counter(), record["samples"]))
            elif record["type"] == "error":
                raise RuntimeError(record["error"]["message"])
    return {"text": n % len(MIX), "first_at": arrivals[0][0], **buffer_trace(started, arrivals, rate)}


async def offered(url: str, streams: int, model: str, stagger_s: float) -> list[dict[str, Any]]:
    """Every stream's record; each also carries the share of the cores busy until the run's last first audio."""
    samples: list[tuple[float, float]] = []
    sampler = asyncio.create_task(cpu_samples(samples))
    try:
        async with httpx.AsyncClient(base_url=url, timeout=600) as client:
            delays = [stagger_s * i / max(1, streams - 1) for i in range(streams)]
            records = list(await asyncio.gather(*(http_stream(client, n, model, d) for n, d in enumerate(delays))))
    finally:
        sampler.cancel()
    firsts = [r["first_at"] for r in records if "first_at" in r]
    busy = busy_share(samples, max(firsts)) if firsts else 0.0
    return [{**r, "busy": busy} for r in records]


def summary(label: str, runs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    played = [s for run in runs for s in run if "refused" not in s]
    refused = [s for run in runs for s in run if "refused" in s]
    firsts = [s["first"] * 1000 for s in played]
    return {"case": label, "runs": len(runs), "streams": len(played), "refused": len(refused),
            "stalled streams": sum(s["stalls"] > 0 for s in played),
            "worst stall (ms)": round(1000 * max((s["worst_stall_s"] for s in played), default=0.0)),
            "first p50 (ms)": round(float(np.percentile(firsts, 50))) if firsts else None,
            "first p99 (ms)": round(float(np.percentile(firsts, 99))) if firsts else None,
            "retry-after": sorted({s["retry_after"] for s in refused if s.get("retry_after")}),
            "refused without Retry-After": sum(not s.get("retry_after") for s in refused),
            "cores busy to the last first audio": round(statistics.mean(run[0]["busy"] for run in runs), 2)}


def compute_bound(voice: Any, seconds: float = 8.0) -> float:
    """Audio seconds per wall second the machine makes in process with every core busy."""
    produced, stop = [0.0], time.monotonic() + seconds
    lock = threading.Lock()

    def worker(n: int) -> None:
        while time.monotonic() < stop:
            audio = voice.synthesize(MIX[n % 2], seed=n, marks=()).seconds
            with lock:
                produced[0] += audio

    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2 * (os.cpu_count() or 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return produced[0] / (time.monotonic() - start)


def start_cost(voice: Any, text: str, pieces: int, clock: Callable[[], float], repeats: int) -> float:
    """The median ``clock`` seconds a lone stream of ``text`` takes to its ``pieces``-th piece, in process (the
    rest of the utterance runs untimed)."""
    samples = []
    for _ in range(repeats):
        before = clock()
        stream = voice.stream(text, seed=0, marks=())
        for _ in range(pieces):
            next(stream, None)
        samples.append(clock() - before)
        for _ in stream:
            pass
    return statistics.median(samples)


def start_floor(voice: Any, streams: int = 8, repeats: int = 5) -> dict[str, float]:
    """The least wait for the last of ``streams`` simultaneous starts, however they are scheduled.

    Each start's compute up to its held first audio (its second chunk: the ingress holds starts so under
    load) is measured in process with one thread per network call, as calls run when they share a
    replica. The mix's first ``streams`` texts are summed and spread over every core; serving's hops and
    the audio of streams already playing come on top.
    """
    cost = {text: start_cost(voice, text, 2, time.process_time, repeats) for text in MIX}
    work = sum(cost[MIX[n % len(MIX)]] for n in range(streams))
    return {f"start work of {streams} at once (CPU ms, one thread per call)": round(1000 * work),
            f"spread over {os.cpu_count() or 1} cores: least first audio of the last (ms)":
                round(1000 * work / (os.cpu_count() or 1))}


def one_thread(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """``overrides`` with every network call on one thread."""
    overrides = dict(overrides or {})
    return {**overrides, "backend": {**overrides.get("backend", {}), "threads": 1}}


def only(raw: dict[str, Any], model: str) -> dict[str, Any]:
    """The serve config reduced to the addon under test (fewer replicas competing for the cores)."""
    changed = copy.deepcopy(raw)
    for app in changed["applications"]:
        args = app.get("args", {})
        if "addons" in args:
            prefixes = tuple(f"{entry['name']}." for entry in args["addons"] if entry["name"] != model)
            args["addons"] = [entry for entry in args["addons"] if entry["name"] == model]
            app["deployments"] = [d for d in app.get("deployments", []) if not d["name"].startswith(prefixes)]
            for deployment in app["deployments"]:
                weights = deployment.get("user_config", {}).get("weights")
                if weights:
                    deployment["user_config"]["weights"] = {k: v for k, v in weights.items()
                                                            if not k.startswith(prefixes)}
                aliases = deployment.get("user_config", {}).get("openai", {}).get("models") or {}
                for alias, target in aliases.items():  # OpenAI's model names: to the addon kept
                    aliases[alias] = target if target == model else None
    return changed


def service_under_test(path: Path, model: str) -> tuple[dict[str, Any], str]:
    """A serve config reduced to ``model`` (validated first), and the URL it serves on."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    raw, config = load_config(path)
    return only(raw, model), f"http://{config.http_options.host}:{config.http_options.port}"


def overrides_of(raw: dict[str, Any], model: str) -> dict[str, Any] | None:
    for app in raw["applications"]:
        for entry in app.get("args", {}).get("addons", []):
            if entry["name"] == model:
                return entry.get("overrides")
    return None


def start_service(raw: dict[str, Any], url: str, tuned: bool) -> LocalHead:
    """The service as ``voxstack serve`` runs it (its own Ray head and temp folder), once healthy."""
    from deployments.ray_settings import QUIET_SERVE_SETTINGS
    from deployments.rollout import deploy
    from deployments.run import LocalHead, free_ports

    for name in QUIET_SERVE_SETTINGS:
        os.environ.pop(name, None)
    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="vxbench")  # its own Ray files, not /tmp/ray
    head = LocalHead(*free_ports(2), quiet=tuned)
    head.start()
    try:
        deploy(raw, head.dashboard, timeout_s=300, progress=lambda _: None)
        if httpx.get(url + "/healthz", timeout=10).status_code != 200:
            raise RuntimeError("the service is not healthy")
    except BaseException:
        head.stop()
        raise
    return head


class ReplicaWatch:
    """The most replicas each stage ran while the load lasted (Serve's REST details, every 2 s)."""

    def __init__(self, head: LocalHead) -> None:
        self.dashboard = head.dashboard
        self.most: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(2.0):
            for app in (self.dashboard.serve_details().get("applications") or {}).values():
                for name, deployment in (app.get("deployments") or {}).items():
                    running = sum(r.get("state") == "RUNNING" for r in deployment.get("replicas") or [])
                    self.most[name] = max(self.most.get(name, 0), running)

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return self.most


def plot(traces: list[dict[str, Any]], path: Path) -> None:
    with figure(path, figsize=(8, 4.5)) as ax:
        for stream in traces:
            times, buffered = zip(*stream["trace"], strict=True)
            ax.plot(times, buffered, lw=1)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xlabel("seconds since the stream was requested")
        ax.set_ylabel("audio buffered at the client (s)")
        ax.set_title("8 concurrent streams, all at once: every stream's buffer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("serve_configs/local.yaml"))
    parser.add_argument("--model", default="piper-joe")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    raw, url = service_under_test(args.config, args.model)
    result: dict[str, Any] = {"machine": machine_info(), "config": str(args.config), "texts": list(MIX)}
    idle: dict[str, float] = {}

    head = start_service(raw, url, tuned=False)
    try:
        idle["Serve defaults"] = idle_cpu_share()
    finally:
        head.stop()
    head = start_service(raw, url, tuned=True)
    try:
        idle["tuned (voxstack serve)"] = idle_share = idle_cpu_share()
        asyncio.run(offered(url, 3, args.model, 0.0))  # warm every stage
        voice = load_addon(args.model, overrides=overrides_of(raw, args.model))
        voice.warm_up()

        with httpx.Client(base_url=url, timeout=60) as client:
            http_cpu = compute_of(lambda: _one(client, args.model), idle_share, repeats=30)
            roles = breakdown(lambda: _one(client, args.model))
        local_cpu = compute_of(lambda: voice.synthesize(SHORT, seed=2, marks=()), idle_share, repeats=30)
        bound = compute_bound(voice)
        floor = start_floor(load_addon(args.model, overrides=one_thread(overrides_of(raw, args.model))))

        watch = ReplicaWatch(head)
        cases: dict[str, list[list[dict[str, Any]]]] = {"8 staggered over 1 s": [], "8 at once": []}
        for _ in range(args.runs):
            cases["8 staggered over 1 s"].append(asyncio.run(offered(url, 8, args.model, 1.0)))
            cases["8 at once"].append(asyncio.run(offered(url, 8, args.model, 0.0)))
        burst = [asyncio.run(offered(url, 16, args.model, 0.0))]
        rows = [summary(label, runs) for label, runs in cases.items()] + [summary("16 offered at once", burst)]
        ramp = {n: summary(f"{n} at once", [asyncio.run(offered(url, n, args.model, 0.0))]) for n in RAMP}
        most = max((n for n, row in ramp.items() if row["refused"] == 0 and row["stalled streams"] == 0), default=0)
        replicas = watch.stop()
    finally:
        head.stop()

    overhead = {"lone short sentence, machine CPU ms over HTTP": round(1000 * http_cpu),
                "in process": round(1000 * local_cpu), "ratio": round(http_cpu / local_cpu, 2)}
    capacity = {"compute bound (audio s per s, every core busy)": round(bound, 2),
                f"most concurrent streams without a stall (of {RAMP})": most,
                "ratio": round(most / bound, 2)}
    result.update(cases={k: [[{x: y for x, y in s.items() if x != "trace"} for s in run] for run in v]
                         for k, v in cases.items()},
                  rows=rows, ramp=list(ramp.values()), overhead=overhead, capacity=capacity,
                  idle_cpu_share={k: round(v, 3) for k, v in idle.items()}, most_replicas=replicas,
                  http_cpu_ms_by_role=roles, start_floor=floor)
    print(f"machine: {result['machine']['summary']}\n")
    print(table(rows))
    print("\n" + table(list(ramp.values())))
    print("\n" + table([overhead]))
    print("\n" + table([{"lone short sentence over HTTP, by process": k, "CPU ms": v} for k, v in roles.items()]))
    print("\n" + table([floor]))
    print("\n" + table([capacity]))
    print("\n" + table([{"stage": k, "most replicas under load": v} for k, v in replicas.items()]))
    print("\n" + table([{"Ray idle CPU (share of the cores)": k, "share": round(v, 3)} for k, v in idle.items()]))
    save(args.out, "serve_load", result, lambda path: plot([s for s in cases["8 at once"][-1] if "trace" in s], path))


def _one(client: httpx.Client, model: str) -> None:
    response = client.post("/v1/stream", json={"model": model, "input": SHORT, "seed": 2, "marks": []})
    response.raise_for_status()


if __name__ == "__main__":
    main()
