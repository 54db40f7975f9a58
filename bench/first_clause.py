"""The opt-in latency option ``frontend.first_utterance_chars``: its first-audio gain and its cost to the audio.

For each text, piper-joe streams it with the faithful default (the whole first sentence is one
utterance) and with the option on (the first sentence's leading clauses, at most N characters, are
spoken alone). Gain: first-audio time, median of the repeats. Cost, noise off: the change in length
and the SNR of the option's audio against the default's over their common length.

Run: ``python -m bench.first_clause [--chars 100] [--repeats 5] [--out bench/results]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.first_audio import INPUTS
from bench.machine import machine_info, markdown_table
from bench.output import write_json
from blocks import load_addon
from blocks.parity import snr_db
from blocks.voice import Voice

ROOT = Path(__file__).resolve().parent.parent
TEXTS = {
    "sentence-40": INPUTS["sentence-40"],
    "two clauses": "Although the forecast had promised a calm and sunny afternoon for the whole coast, the "
                   "sailors stayed in the harbor because the wind was already rising over the grey water.",
}


def first_audio_s(voice: Voice, text: str) -> float:
    start = time.perf_counter()
    stream = voice.stream(text, noise_scale=0.0, noise_w=0.0)
    next(stream)
    elapsed = time.perf_counter() - start
    stream.close()
    return elapsed


def audio(voice: Voice, text: str) -> np.ndarray:
    return np.concatenate([c.samples for c in voice.stream(text, noise_scale=0.0, noise_w=0.0)])


def snr_common(test: np.ndarray, reference: np.ndarray) -> float:
    n = min(len(test), len(reference))
    return snr_db(test[:n], reference[:n])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    faithful = load_addon("piper-joe")
    early = load_addon("piper-joe", overrides={"frontend": {"first_utterance_chars": args.chars}})
    rows: list[dict[str, Any]] = []
    for label, text in TEXTS.items():
        for voice in (faithful, early):
            first_audio_s(voice, text)  # warm
        times = {name: [] for name in ("default", "option")}
        for _ in range(args.repeats):  # interleaved, so load changes hit both alike
            times["default"].append(first_audio_s(faithful, text))
            times["option"].append(first_audio_s(early, text))
        whole, split = audio(faithful, text), audio(early, text)
        first_piece = early.frontend.split(text)[0].text
        rows.append({
            "text": label,
            "chars": len(text),
            "first utterance with the option": f"{len(first_piece)} chars",
            "first audio, default (ms)": round(statistics.median(times["default"]) * 1000),
            "first audio, option (ms)": round(statistics.median(times["option"]) * 1000),
            "length change (ms)": round((len(split) - len(whole)) / faithful.sample_rate * 1000),
            "SNR vs default (dB)": round(snr_common(split, whole), 1),
        })
        print(f"{label}: {rows[-1]}", file=sys.stderr)
    info = machine_info()
    print(f"machine: {info['summary']}\n")
    print(markdown_table(rows))
    write_json(args.out, "first_clause", {"machine": info, "chars": args.chars, "rows": rows})


if __name__ == "__main__":
    main()
