"""Streaming over HTTP: first bytes early, NDJSON format, the openai client, formats, bad input."""

from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
import openai
import pytest
import soundfile

from tests.serve.conftest import LONG_TEXT, Service


def test_health_and_models(service: Service) -> None:
    health = service.http.get("/healthz").json()
    assert health["status"] == "ready"
    assert set(health["stages"]) == {"Encoders", "CustomizedEncoders", "Upsampler-Decoder", "Vocoder", "Fade",
                                     "ChunkStats"}
    models = service.http.get("/v1/models").json()["data"]
    assert [m["id"] for m in models] == ["piper-joe"] and models[0]["sample_rate"] == 22050


def test_ndjson_streams_first_audio_before_the_end(service: Service) -> None:
    started = time.perf_counter()
    records, arrivals = [], []
    with service.http.stream("POST", "/v1/stream", json={"model": "piper-joe", "input": LONG_TEXT, "seed": 3}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        for line in r.iter_lines():
            records.append(json.loads(line))
            arrivals.append(time.perf_counter() - started)
    kinds = [rec["type"] for rec in records]
    assert kinds[0] == "start" and kinds[-1] == "end" and "error" not in kinds
    first_audio = arrivals[kinds.index("audio")]
    assert first_audio < arrivals[-1] / 2, (first_audio, arrivals[-1])
    audio = [rec for rec in records if rec["type"] == "audio"]
    samples = np.concatenate([np.frombuffer(base64.b64decode(a["audio"]), "<i2") for a in audio])
    assert samples.shape[0] == records[-1]["samples"] and np.abs(samples).max() > 1000
    offsets = [a["offset"] for a in audio]
    assert offsets == sorted(offsets) and offsets[0] == 0
    marks = [m for rec in records if rec["type"] == "marks" for m in rec["marks"]]
    assert sum(m["type"] == "sentence" for m in marks) == 8 and any(m["value"] == "sentence" for m in marks)


def test_openai_client_writes_a_valid_wav(service: Service, tmp_path) -> None:
    client = openai.OpenAI(base_url=f"{service.url}/v1", api_key="unused")
    target = tmp_path / "speech.wav"
    with client.audio.speech.with_streaming_response.create(
            model="piper-joe", voice="default", input="Hello from the streaming service.",
            response_format="wav") as response:
        assert response.headers["x-voxstack-variant"] in ("Encoders", "CustomizedEncoders")
        response.stream_to_file(target)
    audio, rate = soundfile.read(target, dtype="float32")
    assert rate == 22050 and 0.8 < audio.shape[0] / rate < 5 and np.abs(audio).max() > 0.05


@pytest.mark.parametrize("fmt", ["opus", "pcm"])
def test_other_formats(service: Service, fmt: str) -> None:
    r = service.http.post("/v1/audio/speech", json={"model": "piper-joe", "input": "Short and sweet.",
                                                     "response_format": fmt, "speed": 1.5})
    assert r.status_code == 200
    if fmt == "opus":
        audio, rate = soundfile.read(io.BytesIO(r.content))
        assert r.content[:4] == b"OggS" and rate == 24000 and audio.shape[0] > 0.3 * rate
    else:
        assert r.headers["x-voxstack-sample-rate"] == "24000"  # OpenAI's pcm, whatever the voice's rate
        assert len(r.content) % 2 == 0 and len(r.content) > 0.3 * 24000 * 2


def test_sse_stream_format(service: Service) -> None:
    r = service.http.post("/v1/audio/speech", json={"model": "piper-joe", "input": "Events please.",
                                                     "response_format": "pcm", "stream_format": "sse"})
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1]["type"] == "speech.audio.done"
    assert sum(len(base64.b64decode(e["audio"])) for e in events[:-1]) > 0.3 * 22050 * 2


GOOD = {"model": "piper-joe", "input": "Fine text."}


@pytest.mark.parametrize(("body", "status", "param"), [
    (b"{not json", 400, "body"),
    ({**GOOD, "model": "nope"}, 404, "model"),
    ({**GOOD, "voice": "nobody"}, 400, "voice"),
    ({**GOOD, "input": "   "}, 400, "input"),
    ({**GOOD, "input": "a" * 20001}, 400, "input"),
    ({**GOOD, "response_format": "m4a"}, 400, "response_format"),
    ({**GOOD, "speed": 5}, 400, "speed"),
    ({**GOOD, "speed": "fast"}, 400, "speed"),
    ({"input": "no model"}, 400, "model"),
])
def test_bad_speech_input_is_a_4xx_naming_the_field(service: Service, body, status: int, param: str) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = service.http.post("/v1/audio/speech", content=content, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param


@pytest.mark.parametrize(("change", "param"), [
    ({"seed": -1}, "seed"), ({"length_scale": 0}, "length_scale"), ({"noise_scale": 3}, "noise_scale"),
    ({"sample_format": "u8"}, "sample_format"), ({"marks": ["viseme"]}, "marks.0"), ({"extra": 1}, "extra"),
])
def test_bad_stream_options_are_400(service: Service, change: dict, param: str) -> None:
    r = service.http.post("/v1/stream", json={**GOOD, **change})
    assert r.status_code == 400 and r.json()["error"]["param"] == param


def test_prometheus_metrics_are_exported(service: Service) -> None:
    import httpx
    import ray

    service.http.post("/v1/stream", json={"model": "piper-joe", "input": "Count me."})
    ports = {n["MetricsExportPort"] for n in ray.nodes() if n["Alive"] and n.get("MetricsExportPort")}
    wanted = ("voxstack_first_audio_seconds", "voxstack_real_time_factor", "voxstack_inter_chunk_gap_seconds",
              "voxstack_requests")
    deadline = time.time() + 40
    while True:
        text = "".join(httpx.get(f"http://127.0.0.1:{p}/metrics", timeout=5).text for p in ports)
        tagged = 'variant="Encoders"' in text or 'variant="CustomizedEncoders"' in text
        if tagged and all(name in text for name in wanted):
            break
        assert time.time() < deadline, f"metrics (with this app's variant tag) missing from {ports}"
        time.sleep(1)
