"""Every OpenAI response format over HTTP: first byte and CPU per second of audio, against 16-bit PCM at the
voice's rate (``wav``: the voice's samples behind a 44-byte header, nothing encoded or resampled).

Starts the service as ``voxstack serve`` does (serve_configs/local.yaml reduced to piper-joe), then sends
sequential requests through OpenAI's endpoint (``model: tts-1``, ``voice: alloy``), each round every format
in turn: ``--first-repeats`` rounds of a short sentence for the first byte, ``--repeats`` rounds of each long
text (a 324-character sentence without commas, and a paragraph with numbers) for the CPU. For each format:

- **first byte**: from sending the request to the first body bytes (median and spread), and its excess over
  the baseline's in the same round (median over the rounds: the synthesis of the first chunk, the same in
  both, drops out); in process, the encoder's own share: opening it and encoding the first chunk;
- **ingress CPU per audio second**: the ingress replica's CPU time over its requests (psutil), per second of
  audio; the format's cost is its excess over ``wav``'s, set against the stream stages' CPU for the same
  audio (the synthesis);
- **encoder CPU in process** (the peer measure, free of HTTP and Ray): the same audio encoded in the
  service's chunks, ``process_time`` per audio second, against the in-process synthesis of it.

Prints the table; writes bench/results/formats.json and formats.png. Run: ``python -m bench.formats``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from bench.machine import machine_info
from bench.machine import markdown_table as table
from bench.output import figure, save
from bench.serve_load import LONG, PARAGRAPH, overrides_of, service_under_test, start_service
from blocks import load_addon
from blocks.audio_formats import FORMATS, encoder_for, ffmpeg_single_thread

MODEL = "piper-joe"
TEXTS = {"long sentence": LONG, "paragraph": PARAGRAPH}
SHORT = "The weather is nice today."
BASELINE = "wav"
"""16-bit PCM at the voice's rate: what every format is set against."""
AIM_FIRST_BYTE_MS = 15.0
"""mp3's first byte within this of the baseline's."""
AIM_ENCODING_SHARE = 0.05
"""Encoding under this share of the synthesis CPU."""
INGRESS = "ServeReplica:voxstack:Ingress"
STAGES = f"ServeReplica:voxstack:{MODEL}."


def processes(marker: str, head: int) -> list[psutil.Process]:
    """The processes under the Ray head ``head`` (not another Ray on the machine) whose command line has
    ``marker``."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(process.info["cmdline"] or []) and head in {p.pid for p in process.parents()}:
                found.append(process)
        except psutil.Error:
            continue
    return found


def cpu_s(group: list[psutil.Process]) -> float:
    total = 0.0
    for process in group:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def first_byte(client: httpx.Client, text: str, fmt: str) -> tuple[float, int, dict[str, str]]:
    """Seconds to the first body bytes, the bytes in all, and the response headers."""
    body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": fmt}
    started = time.perf_counter()
    first, size = None, 0
    with client.stream("POST", "/v1/audio/speech", json=body) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            if chunk and first is None:
                first = time.perf_counter() - started
            size += len(chunk)
    assert first is not None
    return first, size, dict(response.headers)


def over_http(url: str, head: int, repeats: int, first_repeats: int, audio_s: dict[str, float]
              ) -> dict[str, dict[str, Any]]:
    """Per format: first-byte times (short sentence), and over the long texts the bytes, the ingress's and the
    stages' CPU seconds and the audio seconds."""
    ingress, stages = processes(INGRESS, head), processes(STAGES, head)
    assert ingress and stages, "no ingress or stage replica found"
    found: dict[str, dict[str, Any]] = {fmt: {"first": [], "bytes": 0, "ingress_s": 0.0, "stages_s": 0.0,
                                              "audio_s": 0.0} for fmt in FORMATS}
    with httpx.Client(base_url=url, timeout=600) as client:
        for text in (SHORT, *TEXTS.values()):  # warm-up: every format once
            for fmt in FORMATS:
                _, _, headers = first_byte(client, text, fmt)
                assert headers.get("x-voxstack-model") == MODEL, "the replicas do not run this checkout's code"
        for _ in range(first_repeats):
            for fmt in FORMATS:
                found[fmt]["first"].append(first_byte(client, SHORT, fmt)[0])
        for _ in range(repeats):
            for name, text in TEXTS.items():
                for fmt in FORMATS:
                    before = cpu_s(ingress), cpu_s(stages)
                    _, size, _ = first_byte(client, text, fmt)
                    after = cpu_s(ingress), cpu_s(stages)
                    entry = found[fmt]
                    entry["bytes"] += size
                    entry["ingress_s"] += after[0] - before[0]
                    entry["stages_s"] += after[1] - before[1]
                    entry["audio_s"] += audio_s[name]
    return found


def chunks(samples: np.ndarray, first: int = 16 * 256, largest: int = 256 * 256) -> list[np.ndarray]:
    """The audio cut as piper-joe's stages cut it (16 frames of 256 samples, doubling)."""
    out, start, size = [], 0, first
    while start < samples.shape[0]:
        out.append(samples[start:start + size])
        start, size = start + size, min(size * 2, largest)
    return out


def first_chunk_s(rate: int, first: np.ndarray, repeats: int = 20) -> dict[str, float]:
    """Median seconds to open each format's encoder and encode the first chunk (what its first byte waits
    for beyond the baseline's)."""
    ffmpeg_single_thread()
    times: dict[str, float] = {}
    for fmt in FORMATS:
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            with encoder_for(fmt, rate) as encoder:
                encoder.encode(first)
                runs.append(time.perf_counter() - started)
        times[fmt] = statistics.median(runs)
    return times


def in_process(audio: dict[str, np.ndarray], rate: int, repeats: int) -> dict[str, float]:
    """Least encoder CPU seconds per audio second over ``repeats`` runs, for each format."""
    ffmpeg_single_thread()
    seconds = sum(a.shape[0] for a in audio.values()) / rate
    cost = {}
    for fmt in FORMATS:
        runs = []
        for _ in range(repeats):
            started = time.process_time()
            for samples in audio.values():
                with encoder_for(fmt, rate) as encoder:
                    for piece in chunks(samples):
                        encoder.encode(piece)
                    encoder.finish()
            runs.append(time.process_time() - started)
        cost[fmt] = min(runs) / seconds
    return cost


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    names = [row["format"].split()[0] for row in rows]
    with figure(path, 1, 2, figsize=(10, 4)) as (left, right):
        left.bar(names, [row["first byte p50 (ms)"] for row in rows])
        left.set_ylabel("first byte, short sentence, median (ms)")
        right.bar(names, [row["encoder CPU in process (% of synthesis)"] for row in rows])
        right.axhline(100 * AIM_ENCODING_SHARE, color="k", lw=0.8, ls="--")
        right.set_ylabel("encoder CPU, % of synthesis CPU")
        left.figure.suptitle("OpenAI formats over HTTP (piper-joe, 22050 Hz)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("serve_configs/local.yaml"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--first-repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    raw, url = service_under_test(args.config, MODEL)
    voice = load_addon(MODEL, overrides=overrides_of(raw, MODEL))
    rate = voice.sample_rate
    audio = {name: voice.synthesize(text).audio for name, text in TEXTS.items()}  # also warms up
    synthesis = {}
    for name, text in TEXTS.items():
        begin = time.process_time()
        voice.synthesize(text)
        synthesis[name] = time.process_time() - begin
    audio_s = {name: samples.shape[0] / rate for name, samples in audio.items()}
    synthesis_per_s = sum(synthesis.values()) / sum(audio_s.values())
    encoding = in_process(audio, rate, repeats=3)
    opening = first_chunk_s(rate, chunks(audio["long sentence"])[0])

    head = start_service(raw, url, tuned=True)
    try:
        assert head.process is not None
        served = over_http(url, head.process.pid, args.repeats, args.first_repeats, audio_s)
    finally:
        head.stop()

    base = served[BASELINE]
    base_ingress = base["ingress_s"] / base["audio_s"]

    def over_baseline(fmt: str) -> float:
        """Median over the rounds of the format's first byte less the baseline's in the same round (s)."""
        return statistics.median(a - b for a, b in zip(served[fmt]["first"], base["first"], strict=True))

    rows = []
    for fmt, entry in served.items():
        first = [1000 * s for s in entry["first"]]
        ingress = entry["ingress_s"] / entry["audio_s"]
        stages = entry["stages_s"] / entry["audio_s"]
        rows.append({
            "format": fmt + (" (baseline)" if fmt == BASELINE else ""),
            "first byte p50 (ms)": round(statistics.median(first), 1),
            "first byte min-max (ms)": f"{min(first):.0f}-{max(first):.0f}",
            "over baseline, paired p50 (ms)": round(1000 * over_baseline(fmt), 1),
            "encoder open + first chunk in process (ms)": round(1000 * opening[fmt], 2),
            "kb/s": round(8 * entry["bytes"] / entry["audio_s"] / 1000),
            "ingress CPU ms per audio s": round(1000 * ingress, 2),
            "over baseline (% of stages' CPU)": round(100 * (ingress - base_ingress) / stages, 2),
            "encoder CPU in process (ms per audio s)": round(1000 * encoding[fmt], 2),
            "encoder CPU in process (% of synthesis)": round(100 * encoding[fmt] / synthesis_per_s, 2),
        })
    mp3_gap = over_baseline("mp3")
    worst = max(encoding.values()) / synthesis_per_s
    aims = {"mp3 first byte over baseline (ms)": round(1000 * mp3_gap, 1),
            f"within {AIM_FIRST_BYTE_MS:.0f} ms": bool(1000 * mp3_gap <= AIM_FIRST_BYTE_MS),
            "mp3 encoder open + first chunk in process (ms)": round(1000 * opening["mp3"], 2),
            "costliest encoder, share of synthesis CPU (in process)": f"{100 * worst:.2f}%",
            f"under {100 * AIM_ENCODING_SHARE:.0f}%": bool(worst < AIM_ENCODING_SHARE),
            "synthesis CPU ms per audio s (in process)": round(1000 * synthesis_per_s, 1)}
    result = {"machine": machine_info(), "config": str(args.config), "repeats": args.repeats,
              "first_repeats": args.first_repeats, "texts": {**TEXTS, "short": SHORT}, "audio_s": audio_s,
              "rows": rows, "aims": aims,
              "first_byte_s": {fmt: entry["first"] for fmt, entry in served.items()}}
    print(f"machine: {result['machine']['summary']}\n")
    print(table(rows))
    print("\n" + table([aims]))
    save(args.out, "formats", result, lambda path: plot(rows, path))


if __name__ == "__main__":
    main()
