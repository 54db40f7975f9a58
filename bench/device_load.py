"""One serve config against another on this machine: first audio and throughput at 1, 8 and 32 streams.

For each config (default: serve_configs/gpu.yaml against serve_configs/local.yaml, both reduced to the
addon under test) it starts the service as ``voxstack serve`` does, checks first that this machine has the
devices the config asks for (``voxstack backends --check``'s test), warms every stage, then measures a lone
short sentence's first audio (median of 5) and, for 1, 8 and 32 streams offered at once, the audio seconds
the admitted streams received per wall second, with their stalls and refusals. The table gives each
config's figures and the ratio of the first config's to the second's.

Prints a markdown table; writes bench/results/device_load.json and a PNG of throughput per stream count.
Run on a machine with the accelerator (``bench/device_check.sh`` runs it):
``python -m bench.device_load [--configs serve_configs/gpu.yaml serve_configs/local.yaml]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

from bench.machine import machine_info
from bench.machine import markdown_table as table
from bench.output import figure, save
from bench.serve_load import SHORT, offered, service_under_test, start_service
from deployments.config import load_config, stage_backends
from deployments.devices import check_devices

STREAMS = (1, 8, 32)


def lone_first_audio(url: str, model: str, repeats: int = 5) -> float:
    """Median first audio (ms) of a short sentence with nothing else running."""
    import httpx

    firsts = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for seed in range(repeats):
            started = time.perf_counter()
            with client.stream("POST", "/v1/stream", json={"model": model, "input": SHORT, "seed": seed,
                                                          "marks": []}) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    if json.loads(line)["type"] == "audio":
                        firsts.append(1000 * (time.perf_counter() - started))
                        break
    return statistics.median(firsts)


def measure(path: Path, model: str) -> dict[str, Any]:
    """One config's row: lone first audio, and per stream count the throughput, stalls and refusals."""
    check_devices(stage_backends(load_config(path)[1]))  # says what is missing before anything starts
    raw, url = service_under_test(path, model)
    head = start_service(raw, url, tuned=True)
    try:
        asyncio.run(offered(url, 3, model, 0.0))  # warm every stage
        row: dict[str, Any] = {"config": path.name, "lone first audio (ms)": round(lone_first_audio(url, model))}
        for streams in STREAMS:
            started = time.perf_counter()
            records = asyncio.run(offered(url, streams, model, 0.0))
            wall = time.perf_counter() - started
            played = [r for r in records if "refused" not in r]
            row[f"{streams}: audio s per s"] = round(sum(r["audio"] for r in played) / wall, 2)
            row[f"{streams}: admitted, stalled"] = f"{len(played)}, {sum(r['stalls'] > 0 for r in played)}"
    finally:
        head.stop()
    return row


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    with figure(path, figsize=(7, 4)) as ax:
        for row in rows:
            ax.plot(STREAMS, [row[f"{n}: audio s per s"] for n in STREAMS], marker="o", label=row["config"])
        ax.set_xlabel("streams offered at once")
        ax.set_ylabel("audio seconds received per second")
        ax.set_xscale("log", base=2)
        ax.set_title("Throughput of two serve configs on one machine")
        ax.legend()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=Path, nargs=2,
                        default=[Path("serve_configs/gpu.yaml"), Path("serve_configs/local.yaml")])
    parser.add_argument("--model", default="piper-joe")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    rows = [measure(path, args.model) for path in args.configs]
    ratio = {"config": f"{rows[0]['config']} / {rows[1]['config']}"}
    for key in rows[0]:
        if key == "config":
            continue
        ratio[key] = "" if "stalled" in key else round(rows[0][key] / rows[1][key], 2) if rows[1][key] else None
    result = {"machine": machine_info(), "rows": [*rows, ratio]}
    print(f"machine: {result['machine']['summary']}\n")
    print(table(result["rows"]))
    save(args.out, "device_load", result, lambda path: plot(rows, path))


if __name__ == "__main__":
    main()
