"""Every addon behind one ingress (the ``placed`` application): models, own sample rates, 404s, variants."""

from __future__ import annotations

import base64
import concurrent.futures
import io
import json
import time
from typing import Any

import httpx
import numpy as np
import soundfile

from blocks.addon import Addon, list_addons
from tests.serve.conftest import MULTI_SPEAKER, Service

PREFIX = "/placed"
TEXT = "Every addon speaks here. Each one at its own rate."


def _rate(addon: str) -> int:
    return int(Addon.open(addon).config.sample_rate)


def _stream(url: str, addon: str) -> tuple[float, list[dict[str, Any]]]:
    """First-audio seconds and the NDJSON records of one stream of ``addon``."""
    started = time.perf_counter()
    first: float | None = None
    records: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, timeout=60) as client, client.stream(
            "POST", f"{PREFIX}/v1/stream", json={"model": addon, "input": TEXT, "seed": 1, "marks": []}) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            records.append(json.loads(line))
            if records[-1]["type"] == "audio" and first is None:
                first = time.perf_counter() - started
    assert first is not None, records
    return first, records


def test_models_lists_every_addon_with_voices_and_rate(service: Service) -> None:
    models = {m["id"]: m for m in service.http.get(f"{PREFIX}/v1/models").json()["data"]}
    assert set(models) == {*list_addons(), MULTI_SPEAKER}  # the imported voice lives outside the repository
    for name, model in models.items():
        config = Addon.open(name, service.imported if name == MULTI_SPEAKER else None).config
        assert model["sample_rate"] == config.sample_rate
        assert [v["name"] for v in model["voices"]] == [v.name for v in config.voices]
    assert models["hibari"]["variants"] == ["hibari.CustomizedEncoders", "hibari.Encoders"]
    stages = service.http.get(f"{PREFIX}/healthz").json()["stages"]
    assert {s.split(".")[0] for s in stages} == set(models) and "piper-joe.Vocoder-Fade-ChunkStats" in stages


def test_every_addon_streams_through_one_service_at_its_own_rate(service: Service) -> None:
    addons = list_addons()
    with concurrent.futures.ThreadPoolExecutor(len(addons)) as pool:
        results = dict(zip(addons, pool.map(_stream, [service.url] * len(addons), addons), strict=True))
    for addon, (first, records) in results.items():
        start, end = records[0], records[-1]
        assert start["type"] == "start" and start["model"] == addon and start["sample_rate"] == _rate(addon)
        assert end["type"] == "end", end
        audio = [r for r in records if r["type"] == "audio"]
        samples = np.concatenate([np.frombuffer(base64.b64decode(a["audio"]), "<i2") for a in audio])
        assert samples.shape[0] == end["samples"] and np.abs(samples).max() > 1000, addon
        assert 1.5 < end["seconds"] < 10 and end["seconds"] == round(end["samples"] / _rate(addon), 4), addon
        print(f"\n{addon}: first audio {first * 1000:.0f} ms (concurrent with the others)", end="")
    for addon in addons:
        r = service.http.post(f"{PREFIX}/v1/audio/speech", json={"model": addon, "input": "Rate check.",
                                                                   "response_format": "wav"})
        audio, rate = soundfile.read(io.BytesIO(r.content), dtype="float32")
        assert r.status_code == 200 and rate == _rate(addon) and audio.shape[0] > 0.3 * rate, addon


def test_unknown_model_is_404_listing_the_available(service: Service) -> None:
    for path in ("/v1/stream", "/v1/audio/speech"):
        r = service.http.post(f"{PREFIX}{path}", json={"model": "nope", "input": "Anyone there?"})
        assert r.status_code == 404, r.text
        error = r.json()["error"]
        assert error["param"] == "model" and error["type"] == "model_not_found"
        assert all(repr(name) in error["message"] for name in list_addons()), error
    assert service.http.get(f"{PREFIX}/v1/route", params={"model": "nope"}).status_code == 404


def test_variants_are_per_addon(service: Service) -> None:
    def variant(model: str) -> str:
        return service.http.get(f"{PREFIX}/v1/route", params={"model": model}).json()["variant"]

    assert variant("hibari") == "hibari.CustomizedEncoders" and variant("piper-joe") == "piper-joe.Encoders"
    before = service.stats("hibari.CustomizedEncoders", app="placed")["completed"]
    r = service.http.post(f"{PREFIX}/v1/audio/speech", json={"model": "hibari", "input": "Tuned encoders."})
    assert r.status_code == 200 and r.headers["x-voxstack-variant"] == "hibari.CustomizedEncoders"
    assert service.stats("hibari.CustomizedEncoders", app="placed")["completed"] > before


def test_an_autoregressive_addon_sends_word_marks_over_http(service: Service) -> None:
    text = "Marks from the attention decoder reach the client."
    body = {"model": "legacy-ar", "input": text, "marks": ["word"]}
    with service.http.stream("POST", f"{PREFIX}/v1/stream", json=body, timeout=120) as response:
        assert response.status_code == 200
        records = [json.loads(line) for line in response.iter_lines()]
    assert records[-1]["type"] == "end"
    words = [m for r in records if r["type"] == "marks" for m in r["marks"]]
    assert [m["value"] for m in words] == text.rstrip(".").split()
    times = [m["time"] for m in words]
    assert times == sorted(times) and times[-1] < records[-1]["seconds"] * 1000
