"""One runtime: the same request gives the same audio and marks in process and through the service."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest

from blocks.addon import Addon, addon_path
from blocks.options import SynthesisOptions
from blocks.voice import Voice
from tests.conftest import snr_db
from tests.serve.conftest import FIXED_PROFILE, Service

LONG_SENTENCE = (
    "The committee that met on Tuesday evening in the old library above the harbour decided after a long and "
    "patient discussion that the new bridge would be built of stone rather than steel because the people who "
    "live along the river had asked for something that would last for centuries and look as if it had always "
    "been there"
)
TEXT = f"Dr. Smith paid $42.50 at 9:30. {LONG_SENTENCE}. Then, at last, everyone went home."
"""A held-out paragraph: abbreviations, money and a time, and a sentence longer than the fixed profile's
largest bucket (so the fixed profile must split it, in both runtimes alike)."""

CASES = [("/placed", "piper-joe", None), ("/placed", "hibari", None), ("/placed", "legacy-ar", None),
         ("/fixed", "piper-joe", FIXED_PROFILE)]


def served(service: Service, prefix: str, model: str, text: str = TEXT,
           **fields: Any) -> tuple[str, np.ndarray, list[dict[str, Any]]]:
    """The variant that served it, the float32 audio and the marks of one ``/v1/stream`` request."""
    body = {"model": model, "input": text, "seed": 5, "sample_format": "f32le",
            "marks": ["sentence", "word", "phoneme"], **fields}
    records = []
    with service.http.stream("POST", f"{prefix}/v1/stream", json=body, timeout=180) as response:
        assert response.status_code == 200, response.read()
        records = [json.loads(line) for line in response.iter_lines()]
        assert records[0]["request_id"] == response.headers["x-request-id"]  # what every stage's log lines name
    assert records[0]["type"] == "start" and records[-1]["type"] == "end", records[-1]
    audio = np.concatenate([np.frombuffer(base64.b64decode(r["audio"]), "<f4")
                            for r in records if r["type"] == "audio"])
    marks = [m for r in records if r["type"] == "marks" for m in r["marks"]]
    assert records[-1]["samples"] == audio.shape[0]
    return records[0]["variant"], audio, marks


def in_process(model: str, overrides: dict[str, Any] | None, variant_type: str | None) -> Voice:
    """The addon as the service loads it; ``variant_type`` replaces its encoders (an A/B variant)."""
    if variant_type is None:
        return Voice.load(model, overrides=overrides)
    stack = json.loads(json.dumps(Addon.open(model, overrides=overrides).config.stack))
    stack[0]["sequence_block"] = {"type": variant_type}
    return Voice.load(model, overrides={**(overrides or {}), "stack": stack})


def variant_type(service: Service, prefix: str, variant: str) -> str | None:
    """The registered type of a served encoder variant (None: the stack's own encoders)."""
    app = next(a for a in service.config["applications"] if a["route_prefix"] == prefix)
    args = app["args"]
    entries = args.get("addons") or [{"name": args.get("addon"), "variants": args.get("variants", {})}]
    for entry in entries:
        prefix_name = f"{entry['name']}." if args.get("addons") else ""
        for name, block_type in entry.get("variants", {}).items():
            if prefix_name + name == variant:
                return block_type
    return None


@pytest.mark.parametrize(("prefix", "model", "overrides"), CASES, ids=[f"{m}{p}" for p, m, _ in CASES])
def test_served_equals_in_process(service: Service, prefix: str, model: str, overrides: dict | None) -> None:
    variant, audio, marks = served(service, prefix, model)
    voice = in_process(model, overrides, variant_type(service, prefix, variant))
    local = voice.synthesize(TEXT, seed=5, marks=("sentence", "word", "phoneme"))
    assert audio.shape == local.audio.shape
    assert np.array_equal(audio, local.audio) or snr_db(audio, local.audio) >= 90
    assert marks == [mark.as_json() for mark in local.marks]
    sentences = [m["value"] for m in marks if m["type"] == "sentence"]
    assert sentences[0].startswith("Dr. Smith paid $42.50 at 9:30.")


def test_the_plugin_addon_served_equals_in_process(service: Service) -> None:
    """kokoro-ja (a plugin distribution) in the same service: the same audio and sentences as in process."""
    text = "東京の天気は、午後から雨になる見込みです。価格は1,980円です！"
    _, audio, marks = served(service, "/placed", "kokoro-ja", text, voice="jm_kumo")
    local = Voice.load("kokoro-ja").synthesize(text, voice="jm_kumo", marks=("sentence", "word", "phoneme"))
    assert audio.shape == local.audio.shape
    assert np.array_equal(audio, local.audio) or snr_db(audio, local.audio) >= 90
    assert marks == [mark.as_json() for mark in local.marks]
    assert [m["value"] for m in marks if m["type"] == "sentence"] == ["東京の天気は、午後から雨になる見込みです。",
                                                                       "価格は1,980円です！"]


def test_the_fixed_profile_splits_the_long_sentence_in_both_runtimes(service: Service) -> None:
    limit = Addon(addon_path("piper-joe"), FIXED_PROFILE).max_sequence_length()
    voice = in_process("piper-joe", FIXED_PROFILE, None)
    session = voice.session(TEXT, SynthesisOptions(seed=5))
    jobs = list(session.jobs())
    assert limit is not None and all(len(job.utterance.ids) <= limit for job in jobs)
    assert len(jobs) > len(session.spans)  # the long sentence did not fit whole
