"""Admission run after run: does any admitted stream stall, and how near the floor is first audio?

Each run starts a fresh service as ``voxstack serve`` does (serve config reduced to the addon under test),
warms it with three streams, then offers, with playback from each stream's first byte (``serve_load``'s
buffer trace): 8 streams staggered over 1 s, 8 at once, 16 at once and 32 at once. Per case it counts the
admitted streams that stalled, the refusals and their Retry-After, and first audio p50/p99 against the floor:
the sum of each of the 8 streams' lone first audio, in process, measured just before the case. Its peer is
the same 8 streams started at once in one process (threads, the start held for the second piece as the
ingress holds it under load), also measured just before: what the 8 starts cost before any serving.
The first run's 32-at-once admission decisions are kept as the decision log.
After the last run, the capacity ramp (n at once, most with no stall and no refusal) on the same service,
against the compute bound.

Prints markdown tables; writes bench/results/admission_runs.json and a PNG of p99 over floor per run.
Run: ``python -m bench.admission_runs [--runs 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.machine import machine_info
from bench.machine import markdown_table as table
from bench.output import figure, save
from bench.serve_load import (
    MIX,
    compute_bound,
    offered,
    overrides_of,
    service_under_test,
    start_cost,
    start_service,
    summary,
)
from blocks import load_addon

CASES = (("8 staggered over 1 s", 8, 1.0), ("8 at once", 8, 0.0), ("16 at once", 16, 0.0), ("32 at once", 32, 0.0))
RAMP = (8, 10, 12, 14, 16, 18, 20)
"""Streams offered at once to find the most that play without a stall and without a refusal."""
STARTS = 8
"""Streams whose first audio the floor and the in-process peer measure (the mix's first 8 texts)."""


def stalled(label: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where each stalled stream of a case stalled: which text, its first audio, each late chunk."""
    return [{"case": label, "text": r["text"], "first_s": round(r["first"], 3), "stalls": r["stalled_at"]}
            for r in records if r.get("stalls")]


def lone_floor(voice: Any, repeats: int = 3) -> float:
    """The floor of first audio for the 8 starts: the sum of each one's lone first audio in process (ms)."""
    lone = {text: start_cost(voice, text, 1, time.perf_counter, repeats) for text in MIX}
    return 1000 * sum(lone[MIX[n % len(MIX)]] for n in range(STARTS))


def in_process_starts(voice: Any) -> float:
    """The peer: the 8 streams started at once in one process, each first audio held for its second piece
    as the ingress holds it under load; the last one's first audio (ms)."""
    firsts: list[float] = []
    gate = threading.Barrier(STARTS)

    def one(n: int) -> None:
        gate.wait()
        began = time.perf_counter()
        pieces = voice.stream(MIX[n % len(MIX)], seed=n, marks=())
        next(pieces)
        next(pieces, None)
        firsts.append(time.perf_counter() - began)
        for _ in pieces:
            pass

    threads = [threading.Thread(target=one, args=(n,)) for n in range(STARTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 1000 * max(firsts)


def one_run(raw: dict[str, Any], url: str, model: str, voice: Any, ramp: bool) -> dict[str, Any]:
    """One fresh service: the four cases (and the ramp when asked); the floor and the in-process peer
    measured just before each case."""
    head = start_service(raw, url, tuned=True)
    try:
        asyncio.run(offered(url, 3, model, 0.0))  # warm every stage
        rows, decisions, stalls = [], [], []
        for label, streams, stagger in CASES:
            floor, peer = lone_floor(voice), in_process_starts(voice)
            records = asyncio.run(offered(url, streams, model, stagger))
            rows.append({**summary(label, [records]), "floor (ms)": round(floor),
                         "in process p99 (ms)": round(peer)})
            stalls += stalled(label, records)
            if streams == 32:
                decisions = httpx.get(url + "/v1/admission", timeout=10).json()["decisions"][-32:]
        state = httpx.get(url + "/v1/admission", timeout=10).json()
        steps = []
        for n in RAMP if ramp else ():
            records = asyncio.run(offered(url, n, model, 0.0))
            steps.append(summary(f"{n} at once", [records]))
            stalls += stalled(f"{n} at once (ramp)", records)
    finally:
        head.stop()
    for row in rows:
        p99 = row["first p99 (ms)"]
        row["p99 / floor"] = round(p99 / row["floor (ms)"], 2) if p99 else None
        row["in process / floor"] = round(row["in process p99 (ms)"] / row["floor (ms)"], 2)
        row["served / in process"] = round(p99 / row["in process p99 (ms)"], 2) if p99 else None
    state.pop("decisions", None)
    return {"rows": rows, "stalls": stalls, "decisions": decisions, "state": state, "ramp": steps}


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    with figure(path, figsize=(8, 4.5)) as ax:
        for index, (label, _, _) in enumerate(CASES):
            ratios = [run["rows"][index]["p99 / floor"] for run in runs]
            ax.plot(range(1, len(runs) + 1), ratios, marker="o", label=label)
            if label == "8 at once":
                peer = [run["rows"][index]["in process / floor"] for run in runs]
                ax.plot(range(1, len(runs) + 1), peer, marker="x", ls=":", label="8 at once, in process (peer)")
        ax.axhline(1.25, color="k", lw=0.8, ls="--")
        ax.set_xlabel("run (fresh service)")
        ax.set_ylabel("first audio p99 / floor")
        ax.set_title("First audio against the start floor, run after run")
        ax.legend()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("serve_configs/local.yaml"))
    parser.add_argument("--model", default="piper-joe")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    raw, url = service_under_test(args.config, args.model)
    voice = load_addon(args.model, overrides=overrides_of(raw, args.model))
    voice.warm_up()
    runs = []
    for index in range(args.runs):
        runs.append(one_run(raw, url, args.model, voice, ramp=index == args.runs - 1))
        print(f"run {index + 1}:\n" + table(runs[-1]["rows"]) + "\n", flush=True)
    bound = compute_bound(voice)
    ramp = runs[-1]["ramp"]
    most = max((int(row["case"].split()[0]) for row in ramp if row["refused"] == 0 and row["stalled streams"] == 0),
               default=0)
    capacity = {"compute bound (audio s per s, every core busy)": round(bound, 2),
                f"most streams at once without a stall or a refusal (of {RAMP})": most,
                "ratio": round(most / bound, 2)}
    every = [{"run": n + 1, **row} for n, run in enumerate(runs) for row in run["rows"]]
    stalled = sum(row["stalled streams"] for row in every)
    result = {"machine": machine_info(), "config": str(args.config), "cases": every, "ramp": ramp,
              "capacity": capacity, "admitted streams that stalled": stalled,
              "stalled streams": [{"run": n + 1, **s} for n, run in enumerate(runs) for s in run["stalls"]],
              "decision log (run 1, 32 at once)": runs[0]["decisions"], "model after run 1": runs[0]["state"]}
    print(f"machine: {result['machine']['summary']}\n")
    print(table(every))
    print("\n" + table(ramp))
    print("\n" + table([capacity]))
    print(f"\nadmitted streams that stalled, all runs and cases: {stalled}")
    save(args.out, "admission_runs", result, lambda path: plot(runs, path))


if __name__ == "__main__":
    main()
