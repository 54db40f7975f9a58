"""OpenAI clients unchanged: OpenAI's model and voice names, every response format streamed and decodable by
FFmpeg to the synthesized duration, pcm at 24 kHz, and bad input refused naming the field and what exists."""

from __future__ import annotations

import base64
import json
import time

import httpx
import numpy as np
import openai
import pytest

from blocks.audio_formats import MEDIA_TYPES, PCM_RATE
from blocks.voice import Voice
from deployments.settings import OPENAI_MODELS, OPENAI_VOICES
from tests.audio_checks import FRAME, LEAD, OPENAI_FORMATS, decode
from tests.serve.conftest import LONG_TEXT, Service, admitted

TEXT = "OpenAI's client, unchanged, asked for this sentence in every format."
PREFIX = "/placed"
"""piper-joe's first in this app, and all of its traffic on its own encoders (the in-process stack's)."""
OPUS_FRAME_S = 0.02


@pytest.fixture(scope="module")
def synthesized(voice: Voice) -> int:
    """Samples of ``TEXT`` synthesized in process, as the service speaks it by default."""
    return int(voice.synthesize(TEXT).audio.shape[0])


def _client(service: Service) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{service.url}{PREFIX}/v1", api_key="unused")


@pytest.mark.parametrize("fmt", OPENAI_FORMATS)
def test_openai_client_gets_every_format_at_the_synthesized_duration(service: Service, synthesized: int,
                                                                    fmt: str) -> None:
    with _client(service).audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=TEXT, response_format=fmt) as response:
        headers = response.headers
        data = response.read()
    assert headers["x-voxstack-model"] == "piper-joe" and headers["x-voxstack-voice"] == "default"
    assert headers["content-type"] == MEDIA_TYPES[fmt]
    rate = int(headers["x-voxstack-sample-rate"])
    decoded, decoded_rate = decode(data, fmt, rate)
    expected_s = synthesized / 22050
    got_s = (decoded.shape[0] - LEAD.get(fmt, 0)) / decoded_rate
    frame_s = FRAME[fmt] / rate if fmt in FRAME else OPUS_FRAME_S if fmt == "opus" else 1 / rate
    assert abs(got_s - expected_s) < frame_s, (fmt, got_s, expected_s)
    if fmt == "pcm":
        assert rate == PCM_RATE and len(data) == 2 * round(synthesized * PCM_RATE / 22050)
    elif fmt in ("wav", "flac"):
        assert decoded_rate == rate == 22050 and decoded.shape[0] == synthesized
    assert np.abs(decoded).max() > 0.05


def test_mp3_is_the_default_and_streams_its_first_bytes_with_the_first_audio(service: Service) -> None:
    started = time.perf_counter()
    arrivals = []
    with service.http.stream("POST", f"{PREFIX}/v1/audio/speech",
                             json={"model": "tts-1-hd", "voice": "onyx", "input": LONG_TEXT}) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "audio/mpeg"
        chunks = []
        for chunk in response.iter_raw():
            chunks.append(chunk)
            arrivals.append(time.perf_counter() - started)
    assert chunks[0][0] == 0xFF and chunks[0][1] & 0xE0 == 0xE0  # an MPEG frame, no ID3 tag in front
    assert arrivals[0] < arrivals[-1] / 2, (arrivals[0], arrivals[-1])
    assert decode(b"".join(chunks), "mp3")[0].shape[0] / 22050 > 10


@pytest.mark.parametrize("fmt", ["mp3", "pcm"])
def test_sse_carries_the_same_formats(service: Service, fmt: str) -> None:
    body = {"model": "gpt-4o-mini-tts", "voice": "coral", "input": TEXT, "response_format": fmt}
    whole = service.http.post(f"{PREFIX}/v1/audio/speech", json=body)
    events = service.http.post(f"{PREFIX}/v1/audio/speech", json={**body, "stream_format": "sse"})
    assert events.headers["content-type"].startswith("text/event-stream")
    records = [json.loads(line[6:]) for line in events.text.splitlines() if line.startswith("data: ")]
    assert records[-1]["type"] == "speech.audio.done"
    carried = b"".join(base64.b64decode(r["audio"]) for r in records[:-1])
    assert carried == whole.content  # the same bytes, cut at frame boundaries


def test_an_addon_keeps_its_own_names(service: Service) -> None:
    r = service.http.post(f"{PREFIX}/v1/audio/speech", json={"model": "hibari", "input": "My own name.",
                                                             "response_format": "wav"})
    assert r.status_code == 200
    assert r.headers["x-voxstack-model"] == "hibari" and r.headers["x-voxstack-voice"] == "default"
    assert r.headers["x-voxstack-sample-rate"] == str(decode(r.content, "wav")[1])


def test_voices_lists_openai_names_beside_the_voices(service: Service) -> None:
    listed = service.http.get("/v1/audio/voices").json()
    assert [v["name"] for v in listed["voices"]] == ["default"] and not listed["voices"][0]["instructions"]
    assert listed["aliases"]["models"] == [{"name": m, "model": "piper-joe"} for m in OPENAI_MODELS]
    assert listed["aliases"]["voices"] == [{"name": v, "model": "piper-joe", "voice": "default"}
                                           for v in OPENAI_VOICES]
    for_alias = service.http.get("/v1/audio/voices", params={"model": "tts-1"}).json()
    assert for_alias == listed


@pytest.mark.parametrize(("change", "status", "param", "named"), [
    ({"model": "tts-2"}, 404, "model", ["piper-joe", "tts-1", "gpt-4o-mini-tts"]),
    ({"voice": "nobody"}, 400, "voice", ["default", "alloy", "verse"]),
    ({"response_format": "m4a"}, 400, "response_format", list(OPENAI_FORMATS)),
    ({"speed": 4.5}, 400, "speed", ["4"]),
    ({"speed": 0.1}, 400, "speed", ["0.25"]),
])
def test_bad_input_names_the_field_and_what_is_accepted(service: Service, change: dict, status: int, param: str,
                                                        named: list[str]) -> None:
    body = {"model": "tts-1", "voice": "alloy", "input": "Refused.", **change}
    r = service.http.post("/v1/audio/speech", json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param and all(name in error["message"] for name in named), error


def test_instructions_are_accepted_and_ignored(service: Service) -> None:
    body = {"model": "tts-1", "voice": "alloy", "input": "Plain.", "response_format": "pcm"}
    plain = service.http.post(f"{PREFIX}/v1/audio/speech", json=body)
    told = service.http.post(f"{PREFIX}/v1/audio/speech", json={**body, "instructions": "Whisper, slowly."})
    assert plain.status_code == told.status_code == 200 and plain.content == told.content


def test_a_client_leaving_mid_stream_leaves_the_service_serving(service: Service) -> None:
    for fmt in ("mp3", "aac", "opus"):
        with httpx.Client(base_url=service.url, timeout=60) as http, http.stream(
                "POST", "/v1/audio/speech", json={"model": "tts-1", "input": LONG_TEXT, "response_format": fmt}) as r:
            assert r.status_code == 200
            next(r.iter_raw())
    r = admitted(lambda: service.http.post("/v1/audio/speech", json={"model": "tts-1", "input": "Still here."}))
    assert r.status_code == 200 and decode(r.content, "mp3")[0].shape[0] > 0
