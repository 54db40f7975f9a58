"""Concurrent streams over HTTP against the same streams in process, in one run.

Starts a local Ray, deploys a serve config (default serve_configs/local.yaml), then for 1, 2, 4 and
8 concurrent streams measures: first audio p50/p99, inter-chunk gap p99, aggregate throughput
(audio seconds per wall second), and underruns against a playback clock (a chunk that arrives after
the audio before it has finished playing, playback starting at the first chunk). The same streams
run in process (threads over one Voice loaded with the serve config's overrides for the addon)
beside them, interleaved run by run. Each stream count runs ``--repeats`` times and at least often
enough for 12 first-audio samples; percentiles pool every stream of every run, underruns are the
total over all runs, throughput the median run. With ``--batching`` the service is deployed a
second time with the fixed-shape profile, with and without continuous batching, to compare them.

Prints markdown tables; writes bench/results/serve_load.json and .png.
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
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.machine import machine_info
from bench.machine import markdown_table as table
from blocks import load_addon
from blocks.addon import merge
from deployments.config import load_config

TEXT = "Stream {n} reads two sentences for the load test. The second one is a little longer, with a clause."


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def playback(arrivals: list[tuple[float, int]], rate: int) -> tuple[int, list[float]]:
    """Underruns and inter-chunk gaps of one stream: ``arrivals`` are (time, samples) per chunk."""
    underruns, gaps = 0, []
    start, played = arrivals[0][0], 0
    for index, (at, samples) in enumerate(arrivals):
        if index:
            gaps.append(at - arrivals[index - 1][0])
            if at > start + played / rate:
                underruns += 1
                start = at - played / rate  # playback resumes when the late chunk lands
        played += samples
    return underruns, gaps


async def http_stream(client: httpx.AsyncClient, n: int, model: str) -> dict[str, Any]:
    body = {"model": model, "input": TEXT.format(n=n), "seed": n}
    started = time.perf_counter()
    arrivals: list[tuple[float, int]] = []
    rate = 22050
    async with client.stream("POST", "/v1/stream", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            record = json.loads(line)
            if record["type"] == "start":
                rate = record["sample_rate"]
            elif record["type"] == "audio":
                arrivals.append((time.perf_counter(), record["samples"]))
            elif record["type"] == "error":
                raise RuntimeError(record["error"]["message"])
    return summarize(started, arrivals, rate)


def summarize(started: float, arrivals: list[tuple[float, int]], rate: int) -> dict[str, Any]:
    underruns, gaps = playback(arrivals, rate)
    return {"first": arrivals[0][0] - started, "end": arrivals[-1][0], "start": started, "gaps": gaps,
            "underruns": underruns, "audio": sum(s for _, s in arrivals) / rate}


def aggregate(runs: list[list[dict[str, Any]]]) -> dict[str, float]:
    """Figures over every stream of every run: pooled percentiles, median throughput, total underruns."""
    streams = [r for run in runs for r in run]
    firsts = [r["first"] * 1000 for r in streams]

    def throughput(run: list[dict[str, Any]]) -> float:
        wall = max(r["end"] for r in run) - min(r["start"] for r in run)
        return sum(r["audio"] for r in run) / wall

    return {
        "first_p50_ms": round(percentile(firsts, 50), 1),
        "first_p99_ms": round(percentile(firsts, 99), 1),
        "gap_p99_ms": round(percentile([g * 1000 for r in streams for g in r["gaps"]], 99), 1),
        "throughput_x_rt": round(statistics.median(throughput(run) for run in runs), 2),
        "underruns": sum(r["underruns"] for r in streams),
    }


async def over_http(url: str, streams: int, model: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        return list(await asyncio.gather(*(http_stream(client, n, model) for n in range(streams))))


def in_process(voice: Any, streams: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []

    def speak(n: int) -> None:
        started = time.perf_counter()
        arrivals = [(time.perf_counter(), c.samples.shape[0]) for c in voice.stream(TEXT.format(n=n), seed=n)]
        results.append(summarize(started, arrivals, voice.sample_rate))

    threads = [threading.Thread(target=speak, args=(n,)) for n in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def only(raw: dict[str, Any], model: str) -> dict[str, Any]:
    """The serve config reduced to the addon under test (fewer replicas competing for the cores)."""
    changed = copy.deepcopy(raw)
    for app in changed["applications"]:
        args = app.get("args", {})
        if "addons" in args:
            kept = [entry for entry in args["addons"] if entry["name"] == model]
            prefixes = tuple(f"{entry['name']}." for entry in args["addons"] if entry["name"] != model)
            args["addons"] = kept
            app["deployments"] = [d for d in app.get("deployments", []) if not d["name"].startswith(prefixes)]
            ingress = next((d for d in app["deployments"] if d["name"] == "Ingress"), None)
            if ingress and "weights" in ingress.get("user_config", {}):
                ingress["user_config"]["weights"] = {
                    k: v for k, v in ingress["user_config"]["weights"].items() if not k.startswith(prefixes)}
    return changed


def addon_entries(raw: dict[str, Any], model: str) -> list[dict[str, Any]]:
    """The app args entries that load ``model``: its item of ``addons``, or a single-addon app's args."""
    found = []
    for app in raw["applications"]:
        args = app.setdefault("args", {})
        if "addons" in args:
            found += [entry for entry in args["addons"] if entry["name"] == model]
        elif args.get("addon", "piper-joe") == model:
            found.append(args)
    return found


def with_overrides(raw: dict[str, Any], model: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The serve config with ``overrides`` merged into those the addon under test is loaded with."""
    changed = copy.deepcopy(raw)
    for entry in addon_entries(changed, model):
        entry["overrides"] = merge(entry.get("overrides") or {}, overrides)
    return changed


def deploy_and_wait(raw: dict[str, Any], url: str) -> None:
    from deployments.run import deploy

    deploy(raw)
    deadline = time.time() + 180
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=10).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.time() > deadline:
            raise RuntimeError("the service never became healthy")
        time.sleep(1)


def runs_for(streams: int, repeats: int) -> int:
    """Runs at ``streams`` concurrent streams: at least ``repeats``, and enough for 12 first-audio samples."""
    return max(repeats, -(-12 // streams))


def run_set(url: str, model: str, counts: list[int], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for streams in counts:
        runs = [asyncio.run(over_http(url, streams, model)) for _ in range(runs_for(streams, repeats))]
        rows.append({"streams": streams, **aggregate(runs)})
    return rows


def served_overrides(raw: dict[str, Any], model: str) -> dict[str, Any] | None:
    """The config overrides the serve config loads ``model`` with (the in-process voice uses the same)."""
    entries = addon_entries(copy.deepcopy(raw), model)
    return entries[0].get("overrides") if entries else None


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    streams = [r["streams"] for r in rows]
    ax.plot(streams, [r["http_first_p50_ms"] for r in rows], "o-", label="HTTP first audio p50")
    ax.plot(streams, [r["http_first_p99_ms"] for r in rows], "o--", label="HTTP first audio p99")
    ax.plot(streams, [r["local_first_p50_ms"] for r in rows], "s-", label="in-process first audio p50")
    ax.set_xlabel("concurrent streams")
    ax.set_ylabel("ms")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("serve_configs/local.yaml"))
    parser.add_argument("--model", default="piper-joe")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batching", action="store_true", help="also compare fixed shapes with/without batching")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    raw, config = load_config(args.config)
    raw = only(raw, args.model)
    url = f"http://{config.http_options.host}:{config.http_options.port}"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray import serve

    ray.init(include_dashboard=False, _temp_dir=tempfile.mkdtemp(prefix="vxbench"))
    result: dict[str, Any] = {"machine": machine_info(), "config": str(args.config)}
    try:
        deploy_and_wait(raw, url)
        asyncio.run(over_http(url, 2, args.model))  # warm every stage
        voice = load_addon(args.model, overrides=served_overrides(raw, args.model))
        voice.warm_up()
        rows = []
        for streams in args.streams:
            http, local = [], []
            for _ in range(runs_for(streams, args.repeats)):  # interleaved: slow spells of the machine hit both
                http.append(asyncio.run(over_http(url, streams, args.model)))
                local.append(in_process(voice, streams))
            row: dict[str, Any] = {"streams": streams, "runs": len(http)}
            for prefix, runs in (("http", http), ("local", local)):
                row.update({f"{prefix}_{k}": v for k, v in aggregate(runs).items()})
            rows.append(row)
        result["streams"] = rows
        print(f"machine: {result['machine']['summary']}\n")
        print(table(rows))
        if args.batching:
            compared = {}
            # shorter utterances keep every sentence inside the largest encoder bucket
            fixed = {"frontend": {"max_utterance_chars": 200}}
            for label, backend in (("fixed", {"profile": "fixed"}),
                                   ("fixed+batching", {"profile": "fixed", "batch": {"max_size": 8}})):
                deploy_and_wait(with_overrides(raw, args.model, {**fixed, "backend": backend}), url)
                asyncio.run(over_http(url, 2, args.model))
                compared[label] = run_set(url, args.model, [c for c in args.streams if c >= 4], args.repeats)
            batching = [{"streams": a["streams"], "plain_throughput_x_rt": a["throughput_x_rt"],
                         "batched_throughput_x_rt": b["throughput_x_rt"],
                         "ratio": round(b["throughput_x_rt"] / a["throughput_x_rt"], 2),
                         "plain_first_p99_ms": a["first_p99_ms"], "batched_first_p99_ms": b["first_p99_ms"]}
                        for a, b in zip(compared["fixed"], compared["fixed+batching"], strict=True)]
            result["batching"] = batching
            print("\nContinuous batching over HTTP (fixed-shape profile)\n")
            print(table(batching))
    finally:
        serve.shutdown()
        ray.shutdown()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve_load.json").write_text(json.dumps(result, indent=1))
    plot(result["streams"], args.out / "serve_load.png")
    print(f"\nwrote {args.out / 'serve_load.json'} and {args.out / 'serve_load.png'}")


if __name__ == "__main__":
    main()
