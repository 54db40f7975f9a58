"""The encoder's time and memory against utterance length: where the dynamic profile must split.

Each length runs in a fresh process (so one length's memory arena does not hide the next one's): the
piper-joe ``encoders`` network of the dynamic profile, fed real phoneme ids (a phonemized text,
repeated to the length). Time: wall clock and process CPU time (all threads; less sensitive to other
load on the machine), medians. Peak memory: the resident size sampled during the first call at that
length, above the resident size just before it.

Run: ``python -m bench.encoder_length [--lengths 250 500 ...] [--repeats 3] [--out bench/results]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ADDON = "piper-joe"
LENGTHS = (250, 500, 750, 1000, 1500, 2000, 2500, 3000)
TEXT = (
    "The committee reviewed every proposal that the regional offices had submitted during the previous "
    "fiscal year and then selected the three projects that promised the greatest benefit to the "
    "communities they served"
)


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


class PeakSampler:
    """Samples this process's resident size every millisecond while running."""

    def __init__(self) -> None:
        self.peak = resident_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, resident_bytes())
            time.sleep(0.001)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, resident_bytes())


def ids_of_length(length: int) -> list[int]:
    """Real ids (BOS ... EOS) of ``length``: the phonemized text's inner ids repeated."""
    from blocks import load_addon
    from blocks.components.text import Span

    voice = load_addon(ADDON)
    ids = voice.frontend.phonemize(Span(0, len(TEXT), TEXT)).ids
    inner = ids[2:-1]
    body = (inner * (length // len(inner) + 1))[: length - 3]
    return ids[:2] + body + ids[-1:]


def feeds(ids: list[int]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "input": np.asarray([ids], dtype=np.int64),
        "input_lengths": np.asarray([len(ids)], dtype=np.int64),
        "scales": np.asarray([0.667, 1.0, 0.8], dtype=np.float32),
        "dp_noise": rng.standard_normal((1, 2, len(ids))).astype(np.float32),
    }


def measure_one(length: int, repeats: int) -> dict[str, Any]:
    """In this process: warm the encoder on a short input, then time and size ``length`` ids."""
    from blocks.addon import Addon, addon_path

    network = Addon(addon_path(ADDON)).network("encoders")
    ids = ids_of_length(length)
    network.run(feeds(ids[:32] + ids[-1:]))
    before = resident_bytes()
    with PeakSampler() as sampler:
        start = time.perf_counter()
        network.run(feeds(ids))
        first = time.perf_counter() - start
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = network.run(feeds(ids))
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    frames = int(np.asarray(out["durations"]).sum())
    return {
        "ids": length,
        "ms": round(statistics.median(times) * 1000, 1),
        "cpu_ms": round(statistics.median(cpu) * 1000, 1),
        "first_ms": round(first * 1000, 1),
        "peak_mib": round((sampler.peak - before) / 2**20, 1),
        "frames": frames,
        "audio_s": round(frames * 256 / 22050, 1),
    }


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    from bench.output import figure

    with figure(path, figsize=(7, 4)) as left:
        lengths = [r["ids"] for r in rows]
        left.plot(lengths, [r["cpu_ms"] for r in rows], "o-", color="tab:blue", label="CPU time")
        left.plot(lengths, [r["ms"] for r in rows], "o:", color="tab:cyan", label="wall time")
        left.set_xlabel("phoneme ids in one utterance")
        left.set_ylabel("encoder time (ms)", color="tab:blue")
        left.legend(loc="upper left")
        right = left.twinx()
        right.plot(lengths, [r["peak_mib"] for r in rows], "s--", color="tab:red", label="peak memory (MiB)")
        right.set_ylabel("peak memory above idle (MiB)", color="tab:red")
        left.set_title(f"{ADDON} encoders (dynamic profile) against utterance length")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, args.repeats)))
        return

    from bench.machine import machine_info, markdown_table
    from bench.output import save

    rows = []
    for length in args.lengths:
        done = subprocess.run([sys.executable, "-m", "bench.encoder_length", "--one", str(length),
                               "--repeats", str(args.repeats)], cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{length} ids failed:\n{done.stderr}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{length} ids: {rows[-1]['ms']} ms, {rows[-1]['peak_mib']} MiB", file=sys.stderr)
    info = machine_info()
    print(f"machine: {info['summary']}\n")
    print(markdown_table(rows))
    result = {"machine": info, "rows": rows}
    save(args.out, "encoder_length", result, lambda path: plot(rows, path))


if __name__ == "__main__":
    main()
