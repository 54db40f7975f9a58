"""Fixed-shape profile against dynamic shapes, and cross-stream batching against none.

Part 1, one stream: total compute, first audio, padding waste and SNR of the fixed profile
against dynamic shapes, on a short sentence, a 40-word sentence and a paragraph.
Part 2, concurrent streams (threads, in process): aggregate real-time throughput and first-audio
p50/p99 of the fixed profile with continuous batching against the same profile without it.
Part 3, why batching pays or not on this machine: each frame network's static variant timed per
chunk, run alone against eight chunks stacked in one call, at one and at two intra-op threads.

Prints markdown tables; writes bench/results/fixed_vs_dynamic.json and .png.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.machine import machine_info
from bench.machine import markdown_table as table
from bench.output import figure, save
from blocks import load_addon
from blocks.addon import Addon, addon_path
from blocks.backends.base import Tally
from blocks.backends.compile import compile_fixed, is_current
from blocks.parity import snr_db

INPUTS = {
    "short": "Turn left at the station.",
    "40 words": (
        "The quick brown fox jumps over the lazy dog while the children watch from the window, laughing at "
        "every clumsy leap it makes across the frozen garden, and the old farmer shakes his head as he "
        "carries the heavy buckets toward the barn."
    ),
    "paragraph": (
        "Good morning. The train to the coast leaves at nine, so pack light. Bring a coat, because the wind "
        "by the harbour is cold even in June. We will have lunch at the small cafe near the lighthouse, "
        "where the fish is fresh and the bread is warm. In the afternoon, if the weather holds, we can walk "
        "along the cliffs and watch the boats come home."
    ),
}
STREAM_TEXT = "Stream {n} reads a sentence of moderate length, with a clause or two, to measure throughput."


def one_stream(voice: Any, text: str, seed: int = 0) -> tuple[float, float, np.ndarray, float]:
    """First audio (s), total (s), audio and padding waste of one request."""
    tally = Tally()
    start = time.perf_counter()
    first = 0.0
    chunks = []
    for chunk in voice.stream(text, seed=seed, noise_scale=0.0, noise_w=0.0, tally=tally):
        if not chunks:
            first = time.perf_counter() - start
        chunks.append(chunk.samples)
    return first, time.perf_counter() - start, np.concatenate(chunks), tally.waste


def compare_profiles(dynamic: Any, fixed: Any, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for name, text in INPUTS.items():
        runs = {label: [one_stream(v, text) for _ in range(repeats)] for label, v in (("dyn", dynamic), ("fix", fixed))}
        row = {"input": name, "audio_s": round(len(runs["dyn"][0][2]) / dynamic.sample_rate, 2)}
        for label, results in runs.items():
            row[f"{label}_first_ms"] = round(statistics.median(r[0] for r in results) * 1000, 1)
            row[f"{label}_total_ms"] = round(statistics.median(r[1] for r in results) * 1000, 1)
        row["fixed_over_dynamic_total"] = round(row["fix_total_ms"] / row["dyn_total_ms"], 2)
        row["padding_waste"] = round(runs["fix"][0][3], 3)
        row["snr_db"] = round(snr_db(runs["fix"][0][2], runs["dyn"][0][2]), 1)
        rows.append(row)
    return rows


def concurrent(voice: Any, streams: int) -> dict[str, float]:
    """Run ``streams`` requests at once; aggregate audio seconds per wall second and first-audio stats."""
    firsts: list[float] = []
    samples = [0]
    lock = threading.Lock()

    def speak(n: int) -> None:
        first, _, audio, _ = one_stream(voice, STREAM_TEXT.format(n=n), seed=n)
        with lock:
            firsts.append(first)
            samples[0] += audio.shape[0]

    start = time.perf_counter()
    threads = [threading.Thread(target=speak, args=(n,)) for n in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    ordered = sorted(firsts)
    return {
        "throughput_x_realtime": samples[0] / voice.sample_rate / wall,
        "first_p50_ms": ordered[len(ordered) // 2] * 1000,
        "first_p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
    }


def compare_batching(fixed: Any, batched: Any, stream_counts: list[int], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for streams in stream_counts:
        row: dict[str, Any] = {"streams": streams}
        for label, voice in (("plain", fixed), ("batched", batched)):
            runs = [concurrent(voice, streams) for _ in range(repeats)]
            for key in runs[0]:
                row[f"{label}_{key}"] = round(statistics.median(r[key] for r in runs), 2)
        row["throughput_ratio"] = round(row["batched_throughput_x_realtime"] / row["plain_throughput_x_realtime"], 2)
        rows.append(row)
    return rows


def plot(profiles: list[dict[str, Any]], batching: list[dict[str, Any]], path: Path) -> None:
    with figure(path, 1, 2, figsize=(11, 4)) as (left, right):
        x = np.arange(len(profiles))
        left.bar(x - 0.2, [r["dyn_total_ms"] for r in profiles], 0.4, label="dynamic")
        left.bar(x + 0.2, [r["fix_total_ms"] for r in profiles], 0.4, label="fixed")
        left.set_xticks(x, [r["input"] for r in profiles])
        left.set_ylabel("total compute (ms)")
        left.legend()
        streams = [r["streams"] for r in batching]
        right.plot(streams, [r["plain_throughput_x_realtime"] for r in batching], "o-", label="fixed, no batching")
        right.plot(streams, [r["batched_throughput_x_realtime"] for r in batching], "o-", label="fixed, batching")
        right.set_xlabel("concurrent streams")
        right.set_ylabel("aggregate throughput (x real time)")
        right.legend()


def per_chunk_ms(network: Any, feeds: dict[str, np.ndarray], batch: int, seconds: float) -> float:
    """Milliseconds per chunk of ``network`` called with ``batch`` copies of ``feeds`` stacked."""
    stacked = {k: np.concatenate([v] * batch, axis=0) for k, v in feeds.items()}
    network.run(stacked)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or calls < 3:
        network.run(stacked)
        calls += 1
    return (time.perf_counter() - start) / calls / batch * 1000


def batch_economy(seconds: float) -> list[dict[str, Any]]:
    """Per-chunk cost of each fixed frame-network variant alone and in a batch of eight."""
    rows = []
    rng = np.random.default_rng(0)
    for threads in (1, 2):
        voice = load_addon("piper-joe", overrides={"backend": {"profile": "fixed", "threads": threads}})
        profile = voice.addon.config.fixed_profile
        assert profile is not None
        for name, shapes in profile.networks.items():
            if shapes.dim != "frames":
                continue
            network = voice.addon.network(name)
            for size in shapes.sizes:
                feeds = {spec.name: rng.standard_normal(
                    [size if d == "frames" else d for d in spec.shape]).astype(spec.dtype)
                    for spec in network.config.inputs}
                alone, batched = (per_chunk_ms(network, feeds, b, seconds) for b in (1, 8))
                rows.append({"network": name, "frames": size, "threads": threads, "alone_ms": round(alone, 2),
                             "in_batch_of_8_ms": round(batched, 2), "gain": round(alone / batched, 2)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--streams", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    addon = Addon(addon_path("piper-joe"))
    if not is_current(addon):
        compile_fixed(addon)
    dynamic = load_addon("piper-joe")
    fixed = load_addon("piper-joe", overrides={"backend": {"profile": "fixed"}})
    batched = load_addon("piper-joe", overrides={"backend": {"profile": "fixed", "batch": {"max_size": 8}}})
    for voice in (dynamic, fixed, batched):
        voice.warm_up()
    machine = machine_info()
    print(f"machine: {machine['summary']}")
    profiles = compare_profiles(dynamic, fixed, args.repeats)
    print("\nFixed-shape profile against dynamic shapes (one stream, medians)\n")
    print(table(profiles))
    batching = compare_batching(fixed, batched, args.streams, args.repeats)
    print("\nContinuous batching against none (fixed profile, concurrent streams, medians)\n")
    print(table(batching))
    economy = batch_economy(seconds=1.0)
    print("\nPer-chunk cost of each fixed frame network, alone against in a batch of eight\n")
    print(table(economy))
    result = {"machine": machine, "profiles": profiles, "batching": batching, "batch_economy": economy}
    save(args.out, "fixed_vs_dynamic", result, lambda path: plot(profiles, batching, path))


if __name__ == "__main__":
    main()
