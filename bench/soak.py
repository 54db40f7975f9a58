"""Soak: N concurrent streams for M minutes against a loopback service, with disconnects and bad requests mixed in.

Reports completed streams, outcomes by kind, first-audio p50/p99 per time window and the RSS of every Serve
replica (``ray.util.state.list_actors`` + psutil) after a warm-up and at the end; fails if a replica grows by
more than ``--max-growth-mb``. Prints a table and writes ``soak.json`` and ``soak.png``.

Run: ``python bench/soak.py --streams 4 --minutes 5`` (starts Ray and ``serve_configs/local.yaml`` on a free
loopback port, stops by itself), or ``--url http://127.0.0.1:8000`` for a service already running locally.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = ("the quick brown fox jumps over a lazy dog while seven tired sailors sing about distant harbors "
         "under a pale and quiet moon near the old stone bridge").split()
BAD_REQUESTS: list[tuple[str, Any]] = [
    ("/v1/stream", {"model": "no-such-model", "input": "Hi."}),
    ("/v1/stream", {"model": "piper-joe", "input": "   "}),
    ("/v1/stream", {"model": "piper-joe", "input": "Hi.", "noise_scale": 9}),
    ("/v1/audio/speech", {"model": "piper-joe", "input": "Hi.", "voice": "nobody"}),
    ("/v1/audio/speech", b"{not json"),
    ("/v1/stream", {"model": "piper-joe", "input": "x" * 20001}),
]
ERRORS = ("stream_error", "aborted", "no_end", "timeout", "http_5xx", "unexpected_status", "bad_accepted")
"""Failures; the other kinds are intended (completed, disconnected, rejected) or back-pressure (busy, a 429)."""


@dataclass
class Event:
    """One request: when it started (s since the soak began), how it ended, its first audio (s)."""

    at: float
    kind: str
    first_audio: float | None = None


def random_text(rng: random.Random) -> str:
    return " ".join(" ".join(rng.sample(WORDS, rng.randint(4, 14))).capitalize() + rng.choice(".!?")
                    for _ in range(rng.randint(1, 3)))


async def one_stream(client: httpx.AsyncClient, rng: random.Random, disconnect: bool) -> tuple[str, float | None]:
    body = {"model": "piper-joe", "input": random_text(rng), "seed": rng.randrange(1000)}
    started = time.perf_counter()
    first = None
    last: dict[str, Any] = {}
    async with client.stream("POST", "/v1/stream", json=body) as r:
        if r.status_code != 200:
            await r.aread()
            return ("busy" if r.status_code == 429 else "http_5xx" if r.status_code >= 500 else
                    "unexpected_status"), None
        async for line in r.aiter_lines():
            last = json.loads(line)
            if last["type"] == "audio" and first is None:
                first = time.perf_counter() - started
                if disconnect:
                    return "disconnected", first
    return {"end": "completed", "error": "stream_error"}.get(last.get("type", ""), "no_end"), first


async def one_bad(client: httpx.AsyncClient, rng: random.Random) -> str:
    path, body = rng.choice(BAD_REQUESTS)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = await client.post(path, content=content, headers={"content-type": "application/json"})
    if r.status_code == 429:
        return "busy"
    if 400 <= r.status_code < 500:
        try:
            return "rejected" if "error" in r.json() else "unexpected_status"
        except ValueError:
            return "unexpected_status"
    return "http_5xx" if r.status_code >= 500 else "bad_accepted"


async def worker(url: str, headers: dict[str, str], until: float, t0: float, rng: random.Random,
                 events: list[Event]) -> None:
    opening = [0.05, 0.2]  # each worker's first two: a bad request, then a stream it leaves at its first audio
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=httpx.Timeout(30, connect=5)) as client:
        while time.perf_counter() < until:
            at = time.perf_counter() - t0
            roll = opening.pop(0) if opening else rng.random()
            first = None
            try:
                if roll < 0.1:
                    kind = await one_bad(client, rng)
                else:
                    kind, first = await one_stream(client, rng, disconnect=roll < 0.25)
            except httpx.TimeoutException:
                kind = "timeout"
            except (httpx.RemoteProtocolError, httpx.ReadError):
                kind = "aborted"
            events.append(Event(at, kind, first))
            if kind == "busy":
                await asyncio.sleep(0.5)


def replica_memory() -> dict[str, int]:
    """RSS bytes of every live Serve replica on this machine, by actor name."""
    import psutil
    import ray
    from ray.util.state import list_actors

    found = {}
    address = ray.get_runtime_context().gcs_address  # this session's cluster, even if others run here
    for actor in list_actors(address=address, filters=[("state", "=", "ALIVE")], limit=1000):
        if actor.class_name.startswith("ServeReplica:") and actor.pid:
            try:
                found[actor.name] = psutil.Process(actor.pid).memory_info().rss
            except psutil.NoSuchProcess:
                pass
    return found


async def soak(url: str, streams: int, seconds: float, seed: int = 0, windows: int | None = None,
               warmup_s: float | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the soak against ``url`` (loopback only); returns the results (see ``summarize``)."""
    host = urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the soak only runs against a loopback service, not {host!r}")
    warmup_s = min(seconds * 0.2, 30.0) if warmup_s is None else warmup_s
    t0 = time.perf_counter()
    until = t0 + seconds
    events: list[Event] = []
    before = await asyncio.to_thread(replica_memory)  # replicas born after this are not held to the bound
    tasks = [asyncio.create_task(worker(url, headers or {}, until, t0, random.Random(seed * 1000 + i), events))
             for i in range(streams)]
    await asyncio.sleep(warmup_s)
    memory = [(time.perf_counter() - t0, await asyncio.to_thread(replica_memory))]
    while not all(t.done() for t in tasks):
        await asyncio.wait(tasks, timeout=max(seconds / 10, 2))
        memory.append((time.perf_counter() - t0, await asyncio.to_thread(replica_memory)))
    _ = [task.result() for task in tasks]  # a worker's crash fails the soak
    windows = windows or max(1, round(seconds / 60))
    return summarize(events, memory, streams, seconds, windows, set(before))


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "n": 0}
    return {"p50": float(np.percentile(values, 50)), "p99": float(np.percentile(values, 99)), "n": len(values)}


def summarize(events: list[Event], memory: list[tuple[float, dict[str, int]]], streams: int, seconds: float,
              windows: int, settled: set[str]) -> dict[str, Any]:
    """Outcome counts, first audio per window, and RSS per replica (``settled``: alive before the load began)."""
    kinds: dict[str, int] = {}
    for event in events:
        kinds[event.kind] = kinds.get(event.kind, 0) + 1
    width = seconds / windows
    table = []
    for w in range(windows):
        firsts = [e.first_audio for e in events if e.first_audio is not None and w * width <= e.at < (w + 1) * width]
        table.append({"from_s": round(w * width, 1), "to_s": round((w + 1) * width, 1), **_percentiles(firsts)})
    first_seen: dict[str, int] = {}
    _ = [first_seen.setdefault(name, rss) for _, sample in memory for name, rss in sample.items()]
    end = memory[-1][1]
    replicas = {name: {"start_mb": rss / 2**20, "end_mb": end[name] / 2**20 if name in end else None,
                       "checked": name in settled and name in memory[0][1]}
                for name, rss in sorted(first_seen.items())}
    return {"streams": streams, "seconds": seconds, "completed": kinds.get("completed", 0), "outcomes": kinds,
            "errors": {k: v for k, v in kinds.items() if k in ERRORS},
            "first_audio": _percentiles([e.first_audio for e in events if e.first_audio is not None]),
            "windows": table, "replicas": replicas,
            "memory_series": [{"t": t, "mb": {k: v / 2**20 for k, v in m.items()}} for t, m in memory],
            "events": [asdict(e) for e in events]}


def growth_violations(result: dict[str, Any], max_growth_mb: float) -> list[str]:
    """Replicas up before the load and alive to the end whose RSS grew by more than ``max_growth_mb``.

    Replicas started during the soak (autoscaling, restarts) are reported but not checked: their first
    sample may fall in their warm-up.
    """
    return [f"{name}: {r['start_mb']:.0f} -> {r['end_mb']:.0f} MiB" for name, r in result["replicas"].items()
            if r["checked"] and r["end_mb"] is not None and r["end_mb"] - r["start_mb"] > max_growth_mb]


def table(result: dict[str, Any]) -> str:
    ms = lambda v: "-" if v is None else f"{v * 1000:.0f}"  # noqa: E731
    fa = result["first_audio"]
    lines = [f"soak: {result['streams']} streams, {result['seconds']:.0f} s, {result['completed']} completed, "
             f"first audio p50 {ms(fa['p50'])} ms, p99 {ms(fa['p99'])} ms",
             "outcomes: " + ", ".join(f"{k}={v}" for k, v in sorted(result["outcomes"].items())),
             f"{'window (s)':>14} {'n':>5} {'p50 ms':>8} {'p99 ms':>8}"]
    lines += [f"{w['from_s']:>6.0f}-{w['to_s']:<7.0f} {w['n']:>5} {ms(w['p50']):>8} {ms(w['p99']):>8}"
              for w in result["windows"]]
    lines.append(f"{'replica':<52} {'start MiB':>10} {'end MiB':>10}")
    for name, r in result["replicas"].items():
        end = "-" if r["end_mb"] is None else f"{r['end_mb']:.0f}"
        note = "" if r["checked"] else "  (started during the soak)"
        lines.append(f"{name.removeprefix('SERVE_REPLICA::'):<52} {r['start_mb']:>10.0f} {end:>10}{note}")
    return "\n".join(lines)


def write(result: dict[str, Any], out: Path) -> tuple[Path, Path]:
    from bench.output import figure, write_json

    json_path = write_json(out, "soak", result)
    with figure(out / "soak.png", 1, 2, figsize=(12, 4.5)) as (ax1, ax2):
        mids = [(w["from_s"] + w["to_s"]) / 2 for w in result["windows"]]
        for key in ("p50", "p99"):
            ax1.plot(mids, [None if w[key] is None else w[key] * 1000 for w in result["windows"]], "o-", label=key)
        ax1.set(xlabel="time (s)", ylabel="first audio (ms)", title="First audio per window")
        ax1.legend()
        names = sorted({n for m in result["memory_series"] for n in m["mb"]})
        for name in names:
            points = [(m["t"], m["mb"][name]) for m in result["memory_series"] if name in m["mb"]]
            ax2.plot(*zip(*points, strict=True), label=name.removeprefix("SERVE_REPLICA::")[:40])
        ax2.set(xlabel="time (s)", ylabel="RSS (MiB)", title="Replica memory")
        ax2.legend(fontsize=6)
    return json_path, out / "soak.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--url", default=None, help="a running loopback service (default: start one)")
    parser.add_argument("--config", type=Path, default=ROOT / "serve_configs" / "local.yaml")
    parser.add_argument("--max-growth-mb", type=float, default=100.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    import ray
    from ray import serve

    from deployments.security import load_api_key

    key = load_api_key()
    headers = {"authorization": f"Bearer {key}"} if key else {}
    if args.url:
        ray.init(address="auto", log_to_driver=False)
        url = args.url
    else:
        url = start_local(args.config)
    try:
        result = asyncio.run(soak(url, args.streams, args.minutes * 60, headers=headers))
    finally:
        if not args.url:
            serve.shutdown()
        ray.shutdown()
    print(table(result))
    print("wrote", *write(result, args.out))
    problems = growth_violations(result, args.max_growth_mb) + [f"{k}: {v}" for k, v in result["errors"].items()]
    print("FAIL: " + "; ".join(problems) if problems else "OK")
    return 1 if problems else 0


def start_local(config: Path) -> str:
    """Ray plus the serve config on a free loopback port; returns the URL once healthy."""
    import socket

    import ray

    from deployments.config import load_config
    from deployments.rollout import deploy

    raw, _ = load_config(config)
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        port, dashboard = int(a.getsockname()[1]), int(b.getsockname()[1])
    raw["http_options"] = {**raw.get("http_options", {}), "host": "127.0.0.1", "port": port}
    context = ray.init(include_dashboard=True, dashboard_port=dashboard, log_to_driver=False)  # the state API too
    deploy(raw, context.dashboard_url, progress=lambda _: None)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while httpx.get(f"{url}/healthz", timeout=10).status_code != 200:
        if time.time() > deadline:
            raise RuntimeError("the service never became healthy")
        time.sleep(1)
    return url


if __name__ == "__main__":
    sys.exit(main())
