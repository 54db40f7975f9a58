"""Chunked equals whole: each addon's streamed audio against its whole-utterance audio, sentence by sentence.

Each utterance is encoded once; its stream parts then run in the addon's chunk schedule and as one chunk
(same seed, noise on). The stacks' contexts cover the networks' receptive fields, so the two should agree
far above 60 dB with the same length. Writes a table, ``chunked_vs_whole.json`` and a PNG of every
sentence's SNR per addon.

Run: ``python -m bench.chunked_vs_whole [--addons piper-joe hibari legacy-ar] [--out bench/results]``.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from bench.machine import machine_info, markdown_table
from bench.output import figure, save
from blocks.parity import FLOOR_DB, chunked_and_whole, snr_db
from blocks.voice import Voice

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = ROOT / "tests" / "data" / "parity_sentences.txt"
__all__ = ["FLOOR_DB", "chunked_and_whole", "sentences", "snr_db"]


def sentences() -> list[str]:
    """216 varied English lines: long, short, punctuated, numbers, quotes, questions."""
    return [line.strip() for line in SENTENCES.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


def measure(addon: str, texts: list[str]) -> list[dict[str, Any]]:
    """Per sentence: the SNR of the chunked audio against the whole (None where the lengths differ)."""
    voice = Voice.load(addon, warm_up=False)
    found = []
    for text in texts:
        chunked, whole = chunked_and_whole(voice, text)
        same = chunked.shape == whole.shape
        found.append({"text": text, "same_length": same, "snr_db": snr_db(chunked, whole) if same else None})
    voice.close()
    return found


def summary(addon: str, found: list[dict[str, Any]]) -> dict[str, Any]:
    snrs = [f["snr_db"] for f in found if f["snr_db"] is not None]
    worst = min(found, key=lambda f: -1.0 if f["snr_db"] is None else f["snr_db"])
    return {"addon": addon, "sentences": len(found), "same length": sum(f["same_length"] for f in found),
            f"at least {FLOOR_DB:g} dB": sum(s >= FLOOR_DB for s in snrs),
            "worst SNR (dB)": None if worst["snr_db"] is None else round(worst["snr_db"], 1),
            "median SNR (dB)": round(statistics.median(snrs), 1) if snrs else None, "worst sentence": worst["text"]}


def plot(results: dict[str, list[dict[str, Any]]], path: Path) -> None:
    with figure(path, figsize=(8, 4)) as axis:
        for addon, found in results.items():
            axis.plot(sorted(f["snr_db"] for f in found if f["snr_db"] is not None), label=addon)
        axis.axhline(FLOOR_DB, color="red", linestyle="--", label=f"{FLOOR_DB:g} dB")
        axis.set_xlabel("sentence (sorted by SNR)")
        axis.set_ylabel("chunked vs whole SNR (dB)")
        axis.legend()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addons", nargs="+", default=["piper-joe", "hibari", "legacy-ar"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    texts = sentences()
    results = {addon: measure(addon, texts) for addon in args.addons}
    rows = [summary(addon, found) for addon, found in results.items()]
    info = machine_info()
    print(f"machine: {info['summary']}\n")
    print(markdown_table(rows))
    save(args.out, "chunked_vs_whole", {"machine": info, "rows": rows, "sentences": results},
         lambda path: plot(results, path))


if __name__ == "__main__":
    main()
