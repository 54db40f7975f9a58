"""Text streamed in at a language model's pace: from the fragment that completes each sentence to that
sentence's first audio, over ``/v1/stream/ws``, over the Wyoming bridge, and from wyoming-piper.

A paragraph is cut into tokens as a language model emits them (words with their leading space, split
into pieces of at most four characters, punctuation apart) and sent at ``--rate`` tokens per second. A
sentence's completing fragment is the one holding its final punctuation; its first audio is the first
audio frame after its sentence mark (WebSocket) or after its ``audio-start`` (Wyoming: both servers
give each sentence of a stream its own ``audio-start``). wyoming-piper runs piper-joe's monolithic
network (``reference.onnx``) and gets the same Wyoming events in the same run, alternating with the
bridge (``voxstack wyoming`` in its own process). Everything shares the machine: compare within the run.

Home Assistant sends nothing until its reply reaches 60 characters, then that text as one chunk: the
second table times the first sentence's first audio from such a chunk (the paragraph's tokens up to 60
characters, the rest at the same pace), over the bridge and from wyoming-piper.

The first sentence's bridge / wyoming-piper ratio comes with a bootstrap interval over the runs: both
servers move from run to run, and the interval says how firmly the runs place the ratio.

Prints markdown tables; writes bench/results/text_stream.json and text_stream.png.
Run: ``python -m bench.text_stream [--runs 20] [--rate 30]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from websockets.asyncio.client import connect
from wyoming.audio import AudioChunk, AudioStart
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe
from wyoming.tts import SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeVoice

from bench.machine import ROOT, machine_info
from bench.machine import markdown_table as table
from bench.output import figure, save
from bench.serve_load import only
from blocks.addon import addon_path
from deployments.run import free_ports

if TYPE_CHECKING:
    from deployments.run import LocalHead

PARAGRAPH = ("Sure, I can help with that. Dr. Reyes opened the clinic at 8:30 on Monday, and the first "
             "patient had waited since dawn. She paid $42.50 for the visit. By noon the waiting room was full "
             "again! Nobody complained, because everyone knew the doctor would see them all.")
TARGET_RATIO = 0.5
"""The first sentence's first audio over the bridge, as a share of wyoming-piper's, that the bench aims at."""
HOME_ASSISTANT_CHARS = 60
"""Home Assistant starts streaming a reply once it holds this many characters."""
_TOKEN = re.compile(r"\s*[\w'$:.,]*\w|\s*[^\w\s]|\s+")


def tokens(text: str) -> list[str]:
    """``text`` as a language model emits it: words with their leading space, in pieces of at most four
    characters after the first, punctuation on its own."""
    out: list[str] = []
    for match in _TOKEN.finditer(text):
        piece = match.group()
        out += [piece[:5], *(piece[i:i + 4] for i in range(5, len(piece), 4))]
    assert "".join(out) == text
    return out


def first_chunk(fragments: list[str], chars: int = HOME_ASSISTANT_CHARS) -> list[str]:
    """``fragments`` as Home Assistant streams them: the first ones joined until they reach ``chars``."""
    at, joined = 0, ""
    while len(joined) < chars:
        joined += fragments[at]
        at += 1
    return [joined, *fragments[at:]]


def completing(fragments: list[str]) -> list[int]:
    """Index of the fragment that holds each sentence's final punctuation."""
    from blocks.components.text import sentences

    text = "".join(fragments)
    ends = [span.end for span in sentences(text)]
    bounds, at = [], 0
    for fragment in fragments:
        at += len(fragment)
        bounds.append(at)
    return [next(i for i, b in enumerate(bounds) if b >= end) for end in ends]


async def paced(fragments: list[str], rate: float, send: Any, sent_at: list[float]) -> None:
    start = time.perf_counter()
    for n, fragment in enumerate(fragments):
        await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        sent_at.append(time.perf_counter())
        await send(fragment)


async def over_websocket(url: str, fragments: list[str], rate: float) -> list[float]:
    """Seconds from each sentence's completing fragment to its first audio frame."""
    sent_at: list[float] = []
    firsts: list[float] = []
    async with connect(url.replace("http", "ws", 1) + "/v1/stream/ws", proxy=None, compression=None,
                       max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "model": "piper-joe", "marks": ["sentence"]}))

        async def send(fragment: str) -> None:
            await ws.send(json.dumps({"type": "text", "text": fragment}))

        async def send_all() -> None:
            await paced(fragments, rate, send, sent_at)
            await ws.send(json.dumps({"type": "end"}))

        sender = asyncio.create_task(send_all())
        waiting = False
        async for message in ws:
            if isinstance(message, bytes):
                if waiting:
                    firsts.append(time.perf_counter())
                    waiting = False
                continue
            record = json.loads(message)
            assert record["type"] != "error", record
            if record["type"] == "marks" and any(m["type"] == "sentence" for m in record["marks"]):
                waiting = True
        await sender
    return delays(fragments, sent_at, firsts)


async def over_wyoming(port: int, voice: str, fragments: list[str], rate: float) -> list[float]:
    """The same over Wyoming: each sentence's first ``audio-chunk`` after its ``audio-start``."""
    sent_at: list[float] = []
    firsts: list[float] = []
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name=voice)).event())

        async def send(fragment: str) -> None:
            await client.write_event(SynthesizeChunk(fragment).event())

        async def stop_after(sender: asyncio.Task[None]) -> None:
            await sender
            await client.write_event(SynthesizeStop().event())

        stopper = asyncio.create_task(stop_after(asyncio.create_task(paced(fragments, rate, send, sent_at))))
        waiting = False
        while True:
            event = await asyncio.wait_for(client.read_event(), 120)
            assert event is not None and event.type != "error", event
            if AudioStart.is_type(event.type):
                waiting = True
            elif AudioChunk.is_type(event.type) and waiting:
                firsts.append(time.perf_counter())
                waiting = False
            elif event.type == "synthesize-stopped":
                break
        await stopper
    return delays(fragments, sent_at, firsts)


def delays(fragments: list[str], sent_at: list[float], firsts: list[float]) -> list[float]:
    ends = completing(fragments)
    assert len(firsts) == len(ends), (len(firsts), len(ends))
    return [first - sent_at[end] for first, end in zip(firsts, ends, strict=True)]


def start_piper(port: int, folder: Path) -> subprocess.Popen[bytes]:
    """wyoming-piper with piper-joe's monolithic network, as its own voice ``joe``."""
    networks = addon_path("piper-joe") / "networks"
    (folder / "joe.onnx").symlink_to(networks / "reference.onnx")
    (folder / "joe.onnx.json").symlink_to(networks / "voice.json")
    return subprocess.Popen([sys.executable, "-m", "wyoming_piper", "--uri", f"tcp://127.0.0.1:{port}",
                             "--voice", "joe", "--data-dir", str(folder), "--download-dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_wyoming(port: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            async with AsyncTcpClient("127.0.0.1", port) as client:
                await client.write_event(Describe().event())
                if await asyncio.wait_for(client.read_event(), 30) is not None:
                    return
        except OSError:
            if time.time() > deadline:
                raise
            await asyncio.sleep(1)


def start_service(raw: dict[str, Any]) -> LocalHead:
    """The service as ``voxstack serve`` runs it (its own Ray head and temp folder), once healthy."""
    from deployments.rollout import deploy
    from deployments.run import LocalHead

    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="vxbench")  # its own Ray files, not /tmp/ray
    head = LocalHead(*free_ports(2))
    head.start()
    try:
        deploy(raw, head.dashboard, timeout_s=300, progress=lambda _: None)
    except BaseException:
        head.stop()
        raise
    return head


def start_bridge(port: int, url: str) -> subprocess.Popen[bytes]:
    """``voxstack wyoming`` in its own process, as it is deployed."""
    return subprocess.Popen([sys.executable, "-m", "deployments.cli", "wyoming", "--uri", f"tcp://127.0.0.1:{port}",
                             "--service", url], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def measure(url: str, bridge: int, piper: int, runs: int, rate: float) -> dict[str, list[list[float]]]:
    fragments = tokens(PARAGRAPH)
    chunked = first_chunk(fragments)
    results: dict[str, list[list[float]]] = {"websocket": [], "wyoming bridge": [], "wyoming-piper": [],
                                             "first chunk: wyoming bridge": [], "first chunk: wyoming-piper": []}
    for run in range(runs + 1):  # the first run warms every path up and is not counted
        order = [("websocket", over_websocket(url, fragments, rate)),
                 ("wyoming bridge", over_wyoming(bridge, "piper-joe", fragments, rate)),
                 ("wyoming-piper", over_wyoming(piper, "joe", fragments, rate)),
                 ("first chunk: wyoming bridge", over_wyoming(bridge, "piper-joe", chunked, rate)),
                 ("first chunk: wyoming-piper", over_wyoming(piper, "joe", chunked, rate))]
        for name, measurement in order if run % 2 else order[::-1]:
            result = await measurement
            if run:
                results[name].append(result)
    return results


def summarise(results: dict[str, list[list[float]]]) -> list[dict[str, Any]]:
    sentences = len(next(iter(results.values()))[0])
    rows = []
    for k in range(sentences):
        row: dict[str, Any] = {"sentence": k + 1}
        medians = {}
        for name, runs in paced_results(results).items():
            medians[name] = statistics.median(run[k] for run in runs) * 1000
            row[f"{name} (ms)"] = round(medians[name])
        row["bridge / wyoming-piper"] = round(medians["wyoming bridge"] / medians["wyoming-piper"], 2)
        rows.append(row)
    return rows


def first_sentence_spread(results: dict[str, list[list[float]]], share: float = 0.9,
                          draws: int = 10_000) -> dict[str, float]:
    """How firmly the runs place the first sentence's bridge / wyoming-piper ratio of medians (the table's
    first row): its ``share`` bootstrap interval (runs resampled whole, so each keeps its pair), and the
    share of runs whose own ratio is at most ``TARGET_RATIO``."""
    bridge, piper = (np.array([run[0] for run in results[name]]) for name in ("wyoming bridge", "wyoming-piper"))
    picks = np.random.default_rng(0).integers(0, len(bridge), size=(draws, len(bridge)))
    ratios = np.median(bridge[picks], axis=1) / np.median(piper[picks], axis=1)
    low, high = np.quantile(ratios, [(1 - share) / 2, (1 + share) / 2])
    return {"share": share, "low": round(float(low), 3), "high": round(float(high), 3),
            "runs_at_most_target": round(float(np.mean(bridge / piper <= TARGET_RATIO)), 2)}


def paced_results(results: dict[str, list[list[float]]]) -> dict[str, list[list[float]]]:
    """The runs whose every token came at the language model's pace."""
    return {name: runs for name, runs in results.items() if not name.startswith("first chunk")}


def summarise_first_chunk(results: dict[str, list[list[float]]]) -> list[dict[str, Any]]:
    """The first sentence's first audio after Home Assistant's first chunk."""
    bridge, piper = (statistics.median(run[0] for run in results[f"first chunk: {name}"]) * 1000
                     for name in ("wyoming bridge", "wyoming-piper"))
    return [{"first chunk (chars)": len(first_chunk(tokens(PARAGRAPH))[0]), "wyoming bridge (ms)": round(bridge),
             "wyoming-piper (ms)": round(piper), "bridge / wyoming-piper": round(bridge / piper, 2)}]


def plot(results: dict[str, list[list[float]]], path: Path) -> None:
    with figure(path, figsize=(8, 4.5)) as ax:
        for offset, (name, runs) in enumerate(paced_results(results).items()):
            for run in runs:
                ax.scatter([k + 1 + (offset - 1) * 0.15 for k in range(len(run))], [d * 1000 for d in run], s=12,
                           label=name if run is runs[0] else None, color=f"C{offset}")
        ax.set_xlabel("sentence")
        ax.set_ylabel("completing fragment to first audio (ms)")
        ax.set_yscale("log")
        ax.legend()
        ax.set_title("Text streamed in at a language model's pace")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rate", type=float, default=30.0, help="tokens per second")
    parser.add_argument("--config", type=Path, default=ROOT / "serve_configs" / "local.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    raw = only(yaml.safe_load(args.config.read_text()), "piper-joe")
    port, piper_port, bridge_port = free_ports(3)
    raw.setdefault("http_options", {})["port"] = port
    url = f"http://127.0.0.1:{port}"
    folder = Path(tempfile.mkdtemp(prefix="vxpiper"))
    piper = start_piper(piper_port, folder)
    try:
        head = start_service(raw)
    except BaseException:
        piper.terminate()
        raise
    bridge = start_bridge(bridge_port, url)
    try:
        asyncio.run(wait_wyoming(piper_port))
        asyncio.run(wait_wyoming(bridge_port))
        results = asyncio.run(measure(url, bridge_port, piper_port, args.runs, args.rate))
    finally:
        for process in (piper, bridge):
            process.terminate()
            process.wait(10)
        head.stop()
    rows, chunk_rows, spread = summarise(results), summarise_first_chunk(results), first_sentence_spread(results)
    machine = machine_info()
    print(f"\n{machine['summary']}; {args.runs} runs at {args.rate:g} tokens/s, medians\n")
    print(table(rows))
    print(f"\nFirst sentence, bridge / wyoming-piper: {rows[0]['bridge / wyoming-piper']} ({spread['share']:.0%} "
          f"bootstrap interval over runs: {spread['low']} to {spread['high']}); at most {TARGET_RATIO} in "
          f"{spread['runs_at_most_target']:.0%} of runs")
    print(f"\nHome Assistant's first chunk, then {args.rate:g} tokens/s: the first sentence's first audio\n")
    print(table(chunk_rows))
    save(args.out, "text_stream",
         {"machine": machine, "rate": args.rate, "runs": args.runs, "paragraph": PARAGRAPH, "seconds": results,
          "table": rows, "first_sentence_spread": spread, "first_chunk_table": chunk_rows},
         lambda path: plot(results, path))


if __name__ == "__main__":
    main()
