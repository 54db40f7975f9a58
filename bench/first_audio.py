"""First-audio latency and total compute: voxstack's piper-joe against piper-tts and the monolithic model.

With the faithful defaults each sentence is one utterance, so first audio cannot beat the *floor*: the
encoder over the whole first utterance plus the first chunk through the rest of the stack, measured
here in the same run. The opt-in early start (``frontend.first_utterance_chars``) speaks a long first
sentence's first clause on its own; its gain is shown beside the default, measured separately.

Run: ``python -m bench.first_audio [--repeats 5] [--out bench/results]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import load_average, machine_info  # noqa: E402
from bench.output import figure, save  # noqa: E402
from blocks import load_addon  # noqa: E402
from blocks.options import SynthesisOptions  # noqa: E402
from blocks.voice import Voice  # noqa: E402

ADDON = "piper-joe"
NETWORKS = ROOT / "addons" / ADDON / "networks"
SCALES = {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8}
SETTLE_S = 0.2
"""Pause before each timed run: onnxruntime's worker threads keep spinning for a while after a call, and
would slow whichever system runs next."""
EARLY_START = {"frontend": {"first_utterance_chars": 100}}
"""The opt-in latency option: a long first sentence's first clause past 100 characters is spoken alone."""

WORDS = (
    "the old lighthouse keeper walked slowly along the rocky shore every evening to watch the fishing "
    "boats return with their catch while gulls circled overhead and the wind carried the smell of salt "
    "and pine from the hills behind the little harbor town where he had lived for most of his long and "
    "quiet life among friends who still remembered the great storm that had once flooded every street "
    "and washed away the wooden pier near the market square"
).split()

INPUTS = {
    "short": "The weather is nice today.",
    "sentence-40": (
        "When the morning train finally arrived at the crowded station, the tired travelers gathered "
        "their heavy bags and walked out into the bright sunlight, hoping to find a quiet place where "
        "they could rest before continuing their long journey north."
    ),
    "long-320": (
        "The committee that met on Tuesday evening in the old library above the harbour decided after a "
        "long and patient discussion that the new bridge would be built of stone rather than steel because "
        "the people who live along the river wanted something that would last for centuries and look as if "
        "it had always been there."
    ),
    "paragraph": (
        "The museum opens at nine every morning. Visitors can explore three floors of paintings and "
        "sculptures from around the world. Guided tours leave from the main hall every hour. The cafe on "
        "the top floor offers a wonderful view of the river. Please remember to buy your tickets online "
        "before you arrive."
    ),
}
PLOT_LENGTHS = (5, 10, 20, 40, 80)


def sentence(words: int) -> str:
    """A single sentence of ``words`` words drawn from one fixed text."""
    text = " ".join(WORDS[:words])
    return text[0].upper() + text[1:] + "."


def word_count(text: str) -> int:
    return len(text.split())


@dataclass
class Timing:
    """Seconds to the first chunk and to the end of a stream, and the audio length produced."""

    first: float
    total: float
    cpu: float
    """Process CPU seconds (all threads) to the end."""
    audio_s: float


def time_stream(chunks: Callable[[], Iterator[tuple[np.ndarray, int]]]) -> Timing:
    """Drain ``chunks()`` (samples, rate) and time its first item and its end."""
    start, cpu = time.perf_counter(), time.process_time()
    first = 0.0
    samples = 0
    rate = 1
    for index, (audio, chunk_rate) in enumerate(chunks()):
        if index == 0:
            first = time.perf_counter() - start
        samples += int(audio.shape[-1])
        rate = chunk_rate
    return Timing(first, time.perf_counter() - start, time.process_time() - cpu, samples / rate)


class Runners:
    """The three systems under test, loaded once."""

    def __init__(self) -> None:
        from piper import PiperVoice, SynthesisConfig

        self.voice: Voice = load_addon(ADDON)
        self.early: Voice = load_addon(ADDON, overrides=EARLY_START)
        self.first_jobs: dict[str, Any] = {}
        self.piper = PiperVoice.load(NETWORKS / "reference.onnx", config_path=NETWORKS / "voice.json")
        self.piper_config = SynthesisConfig(
            length_scale=SCALES["length_scale"], noise_scale=SCALES["noise_scale"],
            noise_w_scale=SCALES["noise_w"], normalize_audio=False,
        )
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.reference = ort.InferenceSession(
            str(NETWORKS / "reference.onnx"), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.scales = np.asarray(
            [SCALES["noise_scale"], SCALES["length_scale"], SCALES["noise_w"]], dtype=np.float32
        )

    def voxstack(self, text: str) -> Iterator[tuple[np.ndarray, int]]:
        for chunk in self.voice.stream(text, seed=0, **SCALES):
            yield chunk.samples, chunk.sample_rate

    def voxstack_early(self, text: str) -> Iterator[tuple[np.ndarray, int]]:
        for chunk in self.early.stream(text, seed=0, **SCALES):
            yield chunk.samples, chunk.sample_rate

    def floor(self, text: str) -> Iterator[tuple[np.ndarray, int]]:
        """The exact floor: the encoder over the whole first utterance, then the first chunk of the rest.

        Yields that chunk only (timed as the first audio); the phonemization before it is not counted.
        """
        voice = self.voice
        if text not in self.first_jobs:  # phonemized once, outside the timed part
            self.first_jobs[text] = next(voice.session(text, SynthesisOptions(seed=0, **SCALES)).jobs())
            yield np.zeros(0, np.float32), voice.sample_rate
            return
        job = self.first_jobs[text]
        request = job.request()
        encoded = voice.engine.encode(job.tensors(), request)
        yield next(voice.engine.stream(encoded.tensors, request)).data, voice.sample_rate

    def piper_tts(self, text: str) -> Iterator[tuple[np.ndarray, int]]:
        for chunk in self.piper.synthesize(text, syn_config=self.piper_config):
            yield chunk.audio_float_array, chunk.sample_rate

    def monolithic(self, text: str) -> Iterator[tuple[np.ndarray, int]]:
        """Our frontend's ids through ``reference.onnx``, one whole utterance per call."""
        for ids in self.utterance_ids(text):
            audio = self.reference_audio(ids)
            yield audio, self.voice.sample_rate

    def utterance_ids(self, text: str) -> Iterable[list[int]]:
        return (u.ids for u in self.voice.frontend.utterances(text))

    def reference_audio(self, ids: list[int]) -> np.ndarray:
        feeds = {
            "input": np.asarray([ids], dtype=np.int64),
            "input_lengths": np.asarray([len(ids)], dtype=np.int64),
            "scales": self.scales,
        }
        return np.asarray(self.reference.run(None, feeds)[0]).reshape(-1)

    def warm_up(self) -> None:
        for text in INPUTS.values():
            time_stream(lambda text=text: self.floor(text))  # phonemizes each first utterance once
        for text in (INPUTS["short"], INPUTS["sentence-40"]):
            for run in (self.voxstack, self.voxstack_early, self.floor, self.piper_tts, self.monolithic):
                time_stream(lambda run=run, text=text: run(text))


Stream = Callable[[str], Iterator[tuple[np.ndarray, int]]]


def measure(systems: dict[str, Stream], text: str, repeats: int) -> dict[str, dict[str, Any]]:
    """Median first-chunk, total and CPU milliseconds of each system on ``text``.

    The systems take turns within each repeat, each going first in turn, so load from outside the process
    and the spinning threads of the run before hit them alike.
    """
    runs: dict[str, list[Timing]] = {name: [] for name in systems}
    order = list(systems)
    for repeat in range(repeats):
        for name in order[repeat % len(order):] + order[: repeat % len(order)]:  # each goes first in turn
            time.sleep(SETTLE_S)
            runs[name].append(time_stream(lambda stream=systems[name]: stream(text)))
    result: dict[str, dict[str, Any]] = {}
    for name, timings in runs.items():
        result[name] = {
            "first_ms": 1000 * statistics.median(t.first for t in timings),
            "total_ms": 1000 * statistics.median(t.total for t in timings),
            "cpu_ms": 1000 * statistics.median(t.cpu for t in timings),
            "audio_s": timings[0].audio_s,
            "runs_first_ms": [round(1000 * t.first, 1) for t in timings],
            "runs_total_ms": [round(1000 * t.total, 1) for t in timings],
        }
    return result


def profile_first_audio(runners: Runners, text: str, repeats: int) -> dict[str, float]:
    """Median milliseconds spent, before the first chunk, in the frontend and in each network.

    Wraps the voice's ``phonemize`` and network ``run`` calls with timers for the duration of the
    profile; ``other_ms`` is the rest (noise, upsampling, windowing, Python).
    """
    voice = runners.voice
    spent: dict[str, float] = {}

    def timed(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - start

        return wrapper

    networks = voice.addon.loaded_networks()
    patched: list[tuple[Any, str]] = [(voice.frontend, "phonemize")] + [(n, "run") for n in networks]
    voice.frontend.phonemize = timed("frontend", voice.frontend.phonemize)
    for network in networks:
        network.run = timed(network.name, network.run)  # type: ignore[method-assign]
    rows: list[dict[str, float]] = []
    try:
        for _ in range(repeats):
            spent.clear()
            start = time.perf_counter()
            next(iter(voice.stream(text, seed=0, **SCALES)))
            first = time.perf_counter() - start
            row = {f"{name}_ms": 1000 * value for name, value in spent.items()}
            row["first_ms"] = 1000 * first
            row["other_ms"] = 1000 * (first - sum(spent.values()))
            rows.append(row)
    finally:
        for owner, attribute in patched:
            owner.__dict__.pop(attribute, None)
    return {key: statistics.median(row.get(key, 0.0) for row in rows) for key in rows[0]}


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        "| input | chars | audio s | floor (ms) | voxstack first (ms) | first / floor | piper first (ms) | "
        "first / piper | early start first (ms) | early / default | voxstack total (ms) | "
        "total / monolithic | CPU time / monolithic |"
    )
    lines = [header, "|" + "---|" * 13]
    for r in rows:
        v, p, m, f, e = r["voxstack"], r["piper"], r["monolithic"], r["floor"], r["early"]
        lines.append(
            f"| {r['input']} | {len(r['text'])} | {v['audio_s']:.2f} | {f['first_ms']:.0f} | {v['first_ms']:.0f} | "
            f"{v['first_ms'] / f['first_ms']:.2f} | {p['first_ms']:.0f} | {v['first_ms'] / p['first_ms']:.2f} | "
            f"{e['first_ms']:.0f} | {e['first_ms'] / v['first_ms']:.2f} | {v['total_ms']:.0f} | "
            f"{v['total_ms'] / m['total_ms']:.2f} | {v['cpu_ms'] / m['cpu_ms']:.2f} |"
        )
    return "\n".join(lines)


def plot(points: list[dict[str, Any]], path: Path) -> None:
    words = np.arange(len(points))
    width = 0.38
    with figure(path, figsize=(7, 4)) as ax:
        ax.bar(words - width / 2, [p["voxstack"]["first_ms"] for p in points], width, label="voxstack")
        ax.bar(words + width / 2, [p["piper"]["first_ms"] for p in points], width, label="piper-tts")
        ax.set_xticks(words, [str(p["words"]) for p in points])
        ax.set_xlabel("words in one sentence")
        ax.set_ylabel("first audio (ms, median)")
        ax.set_title("Time to first audio")
        ax.legend()


def targets(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The project's targets, each with the measured value and whether it is met."""
    by = {r["input"]: r for r in rows}

    def ratio(name: str, a: str, b: str, key: str) -> float:
        return by[name][a][key] / by[name][b][key]

    checks = {
        "first audio <= piper (short sentence)": (ratio("short", "voxstack", "piper", "first_ms"), 1.0),
    }
    for r in rows:
        checks[f"first audio <= 1.15 x floor ({r['input']})"] = (ratio(r["input"], "voxstack", "floor", "first_ms"),
                                                                   1.15)
    for r in rows:
        checks[f"total <= 1.2 x monolithic ({r['input']})"] = (
            ratio(r["input"], "voxstack", "monolithic", "total_ms"), 1.2
        )
    return {name: {"ratio": v, "limit": limit, "met": v <= limit} for name, (v, limit) in checks.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement (median reported)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results folder")
    args = parser.parse_args(argv)
    if not (NETWORKS / "reference.onnx").is_file():
        print(f"missing {NETWORKS / 'reference.onnx'}: run python addons/{ADDON}/build.py", file=sys.stderr)
        return 1

    info = machine_info()
    print(f"machine: {info['cpu']}, {info['cores']} cores, onnxruntime {info['onnxruntime']}, "
          f"python {info['python']}; load average {info['load_average']}; "
          f"revision {info['revision']}; repeats {args.repeats}, medians")
    runners = Runners()
    runners.warm_up()

    systems = {"voxstack": runners.voxstack, "floor": runners.floor, "early": runners.voxstack_early,
               "piper": runners.piper_tts, "monolithic": runners.monolithic}
    rows: list[dict[str, Any]] = []
    for name, text in INPUTS.items():
        row: dict[str, Any] = {"input": name, "words": word_count(text), "text": text}
        row.update(measure(systems, text, args.repeats))
        row["utterances"] = sum(1 for _ in runners.utterance_ids(text))
        row["profile"] = profile_first_audio(runners, text, args.repeats)
        rows.append(row)
    print()
    print(table(rows))

    print("\nfirst audio, where the time goes (median ms):")
    for r in rows:
        parts = ", ".join(f"{k[:-3]} {v:.0f}" for k, v in r["profile"].items() if k != "first_ms")
        print(f"  {r['input']}: {r['profile']['first_ms']:.0f} = {parts}")

    points = []
    for words in PLOT_LENGTHS:
        text = sentence(words)
        point: dict[str, Any] = {"words": words, "text": text}
        point.update(measure({"voxstack": runners.voxstack, "piper": runners.piper_tts}, text, args.repeats))
        point["utterances"] = sum(1 for _ in runners.utterance_ids(text))
        points.append(point)
    print("\nfirst audio against length (median ms):")
    for p in points:
        print(f"  {p['words']:>3} words ({p['utterances']} utterance(s)): "
              f"voxstack {p['voxstack']['first_ms']:.0f}, piper {p['piper']['first_ms']:.0f}")

    checks = targets(rows)
    print("\ntargets:")
    for name, check in checks.items():
        verdict = "met   " if check["met"] else "MISSED"
        print(f"  {verdict} {name}: {check['ratio']:.2f} (limit {check['limit']})")

    info["load_average_after"] = load_average()
    print(f"load average after: {info['load_average_after']}")
    result = {
        "machine": info,
        "repeats": args.repeats,
        "scales": SCALES,
        "schedule": runners.voice.addon.config.schedule.model_dump(),
        "early_start": EARLY_START,
        "inputs": rows,
        "lengths": points,
        "targets": checks,
    }
    save(args.out, "first_audio", result, lambda path: plot(points, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
