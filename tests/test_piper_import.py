"""``voxstack addons import piper`` on random-weight piper voices of several presets, against piper-tts's own
runtime on the same ``.onnx``.

The voices are made at test time (``tests/piper_voices.py``) and imported with the real command line into a
temporary addons folder. For every voice and every speaker, with the noise off:

- voxstack's frontend gives each sentence the ids piper-tts gives it (``phonemize`` + ``phonemes_to_ids``);
- the imported addon, streaming in chunks through its split networks, gives each sentence piper-tts's audio:
  the same length and at least 60 dB SNR;
- the addon as imported (with its fades) gives the same length as piper-tts, sentences joined.

A graph the importer cannot cut is refused with a clear error, and nothing is written. The results table is
printed (``pytest -s``) and, where ``$VOXSTACK_IMPORT_TABLE`` names a file, written there as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from blocks.voice import Voice, load_addon
from tests.conftest import NOISE_OFF, snr_db

ROOT = Path(__file__).resolve().parents[1]
IMPORT = [sys.executable, "-m", "blocks.cli", "addons", "import", "piper"]
PASS_DB = 60.0


@dataclass(frozen=True)
class Case:
    """One voice of the matrix: piper preset, espeak-ng voice, speakers (None: one), and what it reads."""

    preset: str
    espeak_voice: str
    speakers: tuple[str, ...] | None
    text: str
    """Two sentences, the second long-ish."""
    seed: int

    @property
    def label(self) -> str:
        from tests.piper_voices import PRESETS

        count = len(self.speakers) if self.speakers else 1
        return (f"{self.preset}, {PRESETS[self.preset].sample_rate / 1000:g} kHz, {self.espeak_voice}, "
                f"{count} speaker{'s' if count > 1 else ''}")


CASES = {
    "x_low-de-3": Case("x_low", "de", ("ana", "ben", "chloe"), "Der Wind weht über das Feld. Heute Morgen sind "
                       "wir mit dem Zug an die Küste gefahren, weil das Wetter endlich besser war.", seed=1),
    "low-fr-1": Case("low", "fr", None, "Bonjour, comment allez-vous ? Nous avons pris le train de bonne heure "
                     "pour voir la mer, car le ciel était enfin dégagé.", seed=2),
    "high-en-us-1": Case("high", "en-us", None, "The quick brown fox jumps over the lazy dog. After a week of "
                         "rain, the sun finally came out, and everyone walked down to the river.", seed=3),
}


@dataclass(frozen=True)
class Made:
    """A made voice, imported: its files, its addon's name, and how long each step took."""

    case: Case
    onnx: Path
    config: Path
    name: str
    export_s: float
    import_s: float


def run_import(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*IMPORT, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def addons(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("addons")


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory, addons: Path) -> dict[str, Made]:
    """Every voice of the matrix made, exported and imported with ``voxstack addons import piper``."""
    from tests.piper_voices import make_voice

    folder = tmp_path_factory.mktemp("piper-voices")
    found = {}
    for key, case in CASES.items():
        started = time.perf_counter()
        onnx_path, config_path = make_voice(folder, case.preset, case.espeak_voice,
                                            list(case.speakers) if case.speakers else None, case.seed)
        exported = time.perf_counter()
        done = run_import(onnx_path, "--to", addons)
        assert done.returncode == 0, done.stdout + done.stderr
        name = onnx_path.name.removesuffix(".onnx")
        assert f"imported {name} into" in done.stdout, done.stdout
        found[key] = Made(case, onnx_path, config_path, name, exported - started, time.perf_counter() - exported)
    return found


@pytest.fixture(scope="module")
def table() -> Iterator[list[dict[str, Any]]]:
    """Rows of results (configuration x speaker), printed and written out once the module's tests ran."""
    rows: list[dict[str, Any]] = []
    yield rows
    print("\n" + render(rows))
    if target := os.environ.get("VOXSTACK_IMPORT_TABLE"):
        Path(target).write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")


def render(rows: list[dict[str, Any]]) -> str:
    header = ("configuration", "speaker", "ids equal", "lengths equal", "samples (ours = piper)", "worst SNR dB",
              "export s", "import s")
    lines = [header]
    for row in rows:
        snr = "-" if row["snr_db"] is None else f"{row['snr_db']:.1f}"
        lines.append((row["configuration"], row["speaker"], str(row["ids_equal"]), str(row["lengths_equal"]),
                      " + ".join(map(str, row["samples_ours"])) + " = " + " + ".join(map(str, row["samples_piper"])),
                      snr, f"{row['export_s']:.1f}", f"{row['import_s']:.1f}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def networks_only(folder: Path) -> list[dict[str, Any]]:
    """The addon's stack without its fades: the split networks alone, chunked as the addon streams."""
    stack = json.loads((folder / "addon.json").read_text(encoding="utf-8"))["stack"]
    return [block for block in stack if block["type"] != "Fade"]


def our_ids(voice: Voice, text: str) -> list[list[int]]:
    frontend = voice.frontend
    return [list(frontend.phonemize(span).ids) for span in frontend.split(frontend.check(text))]


def our_sentences(voice: Voice, text: str, speaker: str) -> list[np.ndarray]:
    """``voice.stream``'s audio of ``text``, one array per sentence."""
    chunks = list(voice.stream(text, voice=speaker, **NOISE_OFF))
    return [np.concatenate([c.samples for c in chunks if c.utterance == n]) for n in range(chunks[-1].utterances)]


@pytest.mark.parametrize("key", CASES)
def test_the_imported_voice_streams_what_piper_tts_says(key: str, imported: dict[str, Made], addons: Path,
                                                        table: list[dict[str, Any]]) -> None:
    from piper import PiperVoice, SynthesisConfig

    made = imported[key]
    case = made.case
    voice = load_addon(made.name, root=addons, warm_up=False)
    assert voice.voices == list(case.speakers or ["default"])
    networks = load_addon(made.name, root=addons, overrides={"stack": networks_only(addons / made.name)},
                          warm_up=False)
    piper = PiperVoice.load(made.onnx, config_path=made.config)
    speaker_ids = json.loads(made.config.read_text(encoding="utf-8"))["speaker_id_map"]
    ids_equal = [piper.phonemes_to_ids(p) for p in piper.phonemize(case.text)] == our_ids(voice, case.text)
    rows = []
    for speaker in voice.voices:
        options = SynthesisConfig(speaker_id=speaker_ids.get(speaker), noise_scale=0.0, noise_w_scale=0.0,
                                  length_scale=1.0, normalize_audio=False)
        theirs = [chunk.audio_float_array for chunk in piper.synthesize(case.text, options)]
        ours = our_sentences(networks, case.text, speaker)
        lengths_equal = [a.size for a in ours] == [b.size for b in theirs]
        worst = min(snr_db(a, b) for a, b in zip(ours, theirs, strict=True)) if lengths_equal else None
        rows.append({"configuration": case.label, "speaker": speaker, "sentences": len(theirs),
                     "ids_equal": ids_equal, "lengths_equal": lengths_equal,
                     "samples_ours": [a.size for a in ours], "samples_piper": [b.size for b in theirs],
                     "snr_db": None if worst is None else round(worst, 1),
                     "export_s": round(made.export_s, 1), "import_s": round(made.import_s, 1)})
    table.extend(rows)
    assert ids_equal, case.text
    for row in rows:
        assert row["sentences"] == 2 and row["lengths_equal"], row
        assert row["snr_db"] >= PASS_DB, row
    whole = voice.synthesize(case.text, voice=voice.voices[0], **NOISE_OFF).audio
    assert whole.size == sum(rows[0]["samples_piper"])


def test_a_graph_it_cannot_cut_is_refused_and_nothing_is_written(imported: dict[str, Made], addons: Path) -> None:
    made = imported["low-fr-1"]
    before = sorted(path.name for path in addons.iterdir())
    done = run_import(addons / made.name / "networks" / "encoders.onnx", "--config", made.config,
                      "--name", "not-a-voice", "--to", addons)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: piper graph:" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert sorted(path.name for path in addons.iterdir()) == before
