"""``voxstack addons import piper VOICE.onnx``: any voice piper-tts exported, as an addon that streams.

1. The voice's config (``VOICE.onnx.json``) gives the sample rate, espeak-ng voice, phoneme ids,
   inference defaults, speakers and language.
2. The graph is cut where its structure says (``piper_graph``: no generated node name is read) into
   encoders, flow and vocoder (``piper_split``); the flow's and the vocoder's contexts are their
   receptive fields (``receptive``).
3. Before anything is written, the addon is assembled in a temporary folder and checked: for every
   speaker, a probe sentence streamed through the split networks (chunked, noise off) must equal the
   monolithic graph on the same ids (>= 60 dB, the same length). Only then is the folder moved into place.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from blocks.catalog import NAME
from blocks.components.espeak import loadable_voice
from blocks.errors import EspeakError, VoiceImportError
from blocks.importers.piper_cut_plan import CutPlan
from blocks.importers.piper_graph import find_plan
from blocks.importers.piper_split import extract, interface
from blocks.importers.receptive import static_field
from blocks.options import options_from
from blocks.parity import snr_db

PASS_DB = 60.0
PROBE = "The quick brown fox jumps over the lazy dog. Streaming speech must not change a sample!"
"""Read by each voice's own espeak-ng voice: any ids do to compare the split networks with the whole graph."""
SCHEDULE = {"first": 32, "growth": 4.0, "max": 1024}
DECODER_SCHEDULE = {"first": 48, "growth": 5.0, "max": 1024}
FADE = {"type": "Fade", "fade_in_ms": 3, "fade_out_ms": 3, "spans": True}


@dataclass(frozen=True)
class PiperConfig:
    """What an import reads from ``VOICE.onnx.json``."""

    raw: dict[str, Any]
    sample_rate: int
    espeak_voice: str
    language: str
    speakers: dict[str, int]
    """Speaker name -> id (empty for a single-speaker voice)."""
    defaults: dict[str, float]
    description: str

    @classmethod
    def read(cls, path: Path) -> PiperConfig:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise VoiceImportError(f"{path}: cannot read the voice's config ({error})") from None
        for key in ("audio", "espeak", "phoneme_id_map"):
            if not isinstance(raw.get(key), dict):
                raise VoiceImportError(f"{path}: the voice's config has no {key!r} object")
        if raw.get("phoneme_type", "espeak") != "espeak":
            raise VoiceImportError(f"{path}: phoneme_type {raw['phoneme_type']!r} is not supported "
                                   f"(voxstack reads piper voices through espeak-ng phonemes)")
        try:
            espeak_voice = loadable_voice(str(raw["espeak"].get("voice", "")))
        except EspeakError as error:
            raise VoiceImportError(f"{path}: espeak.voice: {error}") from None
        count = int(raw.get("num_speakers", 1))
        speakers = dict(raw.get("speaker_id_map") or {}) if count > 1 else {}
        if count > 1 and not speakers:
            speakers = {f"speaker_{i}": i for i in range(count)}
        inference = raw.get("inference") or {}
        defaults = {key: float(inference[source]) for key, source in
                    (("noise_scale", "noise_scale"), ("length_scale", "length_scale"), ("noise_w", "noise_w"))
                    if source in inference}
        language = raw.get("language") or {}
        code = str(language.get("code") or espeak_voice).replace("_", "-")
        quality = (raw.get("audio") or {}).get("quality", "")
        described = ", ".join(x for x in (language.get("name_english"), quality) if x)
        return cls(raw, int(raw["audio"]["sample_rate"]), espeak_voice, code, speakers, defaults,
                   f"piper voice {raw.get('dataset', path.stem)!r}" + (f" ({described})" if described else ""))


@dataclass
class Imported:
    """An imported voice: where it went and what the check measured."""

    name: str
    folder: Path
    speakers: list[str]
    contexts: dict[str, int]
    snr_db: dict[str, float] = field(default_factory=dict)
    """Worst SNR per voice (speaker) against the monolithic graph."""
    seconds: float = 0.0


def addon_name(onnx_path: Path, given: str | None) -> str:
    """``given``, else the file's name made into an addon name (``en_US-lessac-medium``)."""
    name = given or re.sub(r"[^A-Za-z0-9_.-]", "_", onnx_path.name.removesuffix(".onnx"))
    if not NAME.match(name):
        raise VoiceImportError(f"{name!r} is not an addon name: use letters, digits, '-', '_' or '.'")
    return name


def voice_name(speaker: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", speaker)[:64]
    return cleaned if NAME.match(cleaned) else f"v{cleaned}"[:64]


def network_stack(plan: CutPlan, contexts: dict[str, int]) -> list[dict[str, Any]]:
    """The stack of the networks alone (what the check runs)."""
    decoder = {"type": "Decoder", "context": contexts["flow"], "schedule": DECODER_SCHEDULE}
    return [{"type": "StreamablePipeline", "sequence_block": {"type": "Encoders"},
             "streamable_block": {"type": "StreamableStack", "stack": [{"type": "Upsampler"}, decoder]}},
            {"type": "Vocoder", "context": contexts["vocoder"]}]


def addon_config(name: str, config: PiperConfig, plan: CutPlan, networks: dict[str, onnx.ModelProto],
                 contexts: dict[str, int], source: Path, digest: str) -> dict[str, Any]:
    """The addon's ``addon.json``."""
    declared = {}
    roles = {"encoders": "encoder", "flow": "decoder", "vocoder": "vocoder"}
    for network, model in networks.items():
        declared[network] = {"file": f"networks/{network}.onnx", "format": "onnx", "role": roles[network],
                             **interface(model)}
    if config.speakers:
        voices = [{"name": voice_name(speaker), "speaker": speaker, "language": config.language,
                   "tensors": {"sid": {"dtype": "int64", "value": [sid]}}}
                  for speaker, sid in sorted(config.speakers.items(), key=lambda item: item[1])]
    else:
        voices = [{"name": "default", "language": config.language}]
    return {
        "name": name, "version": digest[:12], "description": f"{config.description}, imported from {source.name}",
        "sample_rate": config.sample_rate, "hop_length": plan.hop,
        "build": f"voxstack addons import piper {source} --name {name}",
        "source": {"piper": source.name, "sha256": digest},
        "frontend": {"type": "EspeakFrontend", "voice": config.espeak_voice, "phoneme_id_map": "networks/voice.json"},
        "defaults": config.defaults, "schedule": SCHEDULE,
        "backend": {"kind": "onnxruntime", "device": "cpu", "profile": "dynamic"},
        "networks": declared, "voices": voices,
        "stack": [*network_stack(plan, contexts), FADE],
    }


def check(folder: Path, reference: Path, plan: CutPlan, contexts: dict[str, int]) -> dict[str, float]:
    """Every voice of the addon in ``folder`` against the monolithic graph: the worst SNR per voice; a
    VoiceImportError when one is under PASS_DB or differs in length."""
    import onnxruntime as ort

    from blocks.voice import Voice

    voice = Voice.load(folder.name, folder.parent, {"stack": network_stack(plan, contexts)}, warm_up=False)
    whole = ort.InferenceSession(str(reference), providers=["CPUExecutionProvider"])
    found: dict[str, float] = {}
    for spec in voice.addon.config.voices:
        sid = voice.addon.voice_tensors(spec.name).get("sid")
        session = voice.session(PROBE, options_from(noise_scale=0.0, noise_w=0.0, voice=spec.name))
        worst = np.inf
        for job in session.jobs():
            ours = np.concatenate([c.samples for c in voice.utterance(session, job)])
            feeds = {"input": np.asarray([job.utterance.ids], np.int64),
                     "input_lengths": np.asarray([len(job.utterance.ids)], np.int64),
                     "scales": np.asarray([0.0, session.options.scale("length_scale"), 0.0], np.float32)}
            if sid is not None:
                feeds["sid"] = sid
            theirs = whole.run(None, feeds)[0].reshape(-1)
            if theirs.shape != ours.shape:
                raise VoiceImportError(f"voice {spec.name!r}: the split networks give {ours.shape[0]} samples, "
                                       f"the whole graph {theirs.shape[0]}")
            worst = min(worst, snr_db(ours, theirs))
        if worst < PASS_DB:
            raise VoiceImportError(f"voice {spec.name!r}: the split networks differ from the whole graph "
                                   f"({worst:.1f} dB, under {PASS_DB:g} dB)")
        found[spec.name] = float(worst)
    voice.close()
    return found


def import_piper(source: Path, config_path: Path | None = None, name: str | None = None, to: Path | None = None,
                 networks_only: bool = False, progress: Callable[[str], None] = lambda _: None) -> Imported:
    """Import ``source`` (and its ``.onnx.json``) as addon ``name`` in folder ``to``; see the module's doc.

    ``networks_only``: the addon folder exists with its own ``addon.json``; only ``networks/`` is written.
    """
    from blocks.catalog import default_destination

    started = time.perf_counter()
    source = source.resolve()
    if not source.is_file():
        raise VoiceImportError(f"{source}: no such file")
    config_path = (config_path or source.with_name(source.name + ".json")).resolve()
    config = PiperConfig.read(config_path)
    name = addon_name(source, name)
    root = (to or default_destination()).resolve()
    final = root / name
    if final.exists() and not networks_only:
        raise VoiceImportError(f"{final} exists: remove it, or import under another --name")
    progress(f"reading {source.name}")
    model = onnx.load(str(source))
    plan = find_plan(model, config.raw)
    if bool(config.speakers) != plan.multi_speaker:
        raise VoiceImportError(f"{config_path.name} says {len(config.speakers) or 1} speakers, the graph has "
                               f"{plan.num_speakers}")
    networks = extract(model, plan)
    contexts = {"flow": static_field(networks["flow"], "z_p").context,
                "vocoder": static_field(networks["vocoder"], "z").context}
    progress(f"cut into encoders, flow (context {contexts['flow']}) and vocoder (context {contexts['vocoder']})")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        folder = staging / name
        (folder / "networks").mkdir(parents=True)
        for network, part in networks.items():
            onnx.save(part, str(folder / "networks" / f"{network}.onnx"))
        (folder / "networks" / "voice.json").write_text(json.dumps(config.raw, ensure_ascii=False, indent=1),
                                                        encoding="utf-8")
        generated = addon_config(name, config, plan, networks, contexts, source, digest)
        (folder / "addon.json").write_text(json.dumps(generated, ensure_ascii=False, indent=1), encoding="utf-8")
        progress(f"checking {len(generated['voices'])} voice(s) against the whole graph")
        snr = check(folder, source, plan, contexts)
        if networks_only:
            target = final / "networks"
            shutil.rmtree(target, ignore_errors=True)
            (folder / "networks").rename(target)
        else:
            folder.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    voices = [v["name"] for v in generated["voices"]]
    return Imported(name, final, voices, contexts, snr, time.perf_counter() - started)
