"""A multi-speaker piper voice, imported at the session's start, served on every entry: the speaker is part of
the request (one encoder deployment serves all of them) and each speaker's audio equals the in-process audio."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from websockets.sync.client import connect

from blocks.voice import Voice
from tests.conftest import snr_db
from tests.serve.conftest import MULTI_SPEAKER, SPEAKERS, Service

TEXT = "Guten Morgen, Frau Weber. Der Zug nach Berlin fährt heute um neun Uhr ab."
NOISE_OFF = {"noise_scale": 0.0, "noise_w": 0.0}


@pytest.fixture(scope="module")
def local(service: Service) -> Voice:
    return Voice.load(MULTI_SPEAKER, service.imported)


def _audio(records: list[dict]) -> np.ndarray:
    return np.concatenate([np.frombuffer(base64.b64decode(r["audio"]), "<f4") for r in records
                           if r["type"] == "audio"])


def test_voices_are_listed_with_model_and_language(service: Service) -> None:
    listed = service.http.get("/placed/v1/audio/voices", params={"model": MULTI_SPEAKER}).json()["voices"]
    assert [v["name"] for v in listed] == list(SPEAKERS)
    assert all(v["model"] == MULTI_SPEAKER and v["language"] == "de-DE" for v in listed)
    everything = service.http.get("/placed/v1/audio/voices").json()["voices"]
    assert {v["model"] for v in everything} >= {MULTI_SPEAKER, "piper-joe", "hibari"}
    model = next(m for m in service.http.get("/placed/v1/models").json()["data"] if m["id"] == MULTI_SPEAKER)
    assert model["voices"] == listed


def test_each_speaker_over_http_equals_in_process(service: Service, local: Voice) -> None:
    served = {}
    for speaker in SPEAKERS[1:]:
        body = {"model": MULTI_SPEAKER, "voice": speaker, "input": TEXT, "sample_format": "f32le", **NOISE_OFF}
        response = service.http.post("/placed/v1/stream", json=body, timeout=180)
        assert response.status_code == 200, response.text
        records = [json.loads(line) for line in response.text.splitlines()]
        assert records[0]["voice"] == speaker and records[-1]["type"] == "end", records[-1]
        served[speaker] = _audio(records)
        alone = local.synthesize(TEXT, voice=speaker, **NOISE_OFF).audio
        assert served[speaker].shape == alone.shape
        assert np.array_equal(served[speaker], alone) or snr_db(served[speaker], alone) >= 90
    first, second = served.values()
    assert first.shape != second.shape or snr_db(first, second) < 20  # the speaker really changes the voice


def test_speech_endpoint_takes_the_voice_and_refuses_unknown_ones(service: Service, local: Voice) -> None:
    body = {"model": MULTI_SPEAKER, "voice": SPEAKERS[2], "input": TEXT, "response_format": "wav"}
    response = service.http.post("/placed/v1/audio/speech", json=body, timeout=180)
    assert response.status_code == 200, response.text
    assert (len(response.content) - 44) // 2 == local.synthesize(TEXT, voice=SPEAKERS[2]).audio.shape[0]
    refused = service.http.post("/placed/v1/audio/speech", json={**body, "voice": "nobody"})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["param"] == "voice" and all(name in error["message"] for name in SPEAKERS), error


def test_websocket_start_picks_the_speaker(service: Service, local: Voice) -> None:
    url = service.url.replace("http", "ws", 1) + "/placed/v1/stream/ws"
    with connect(url, proxy=None, compression=None, max_size=None, open_timeout=30) as ws:
        ws.send(json.dumps({"type": "start", "model": MULTI_SPEAKER, "voice": SPEAKERS[0], "sample_format": "f32le",
                            **NOISE_OFF}))
        start = json.loads(ws.recv(timeout=120))
        assert start["type"] == "start" and start["voice"] == SPEAKERS[0], start
        ws.send(json.dumps({"type": "text", "text": TEXT}))
        ws.send(json.dumps({"type": "end"}))
        frames = []
        while True:
            message = ws.recv(timeout=120)
            if isinstance(message, bytes):
                frames.append(message)
                continue
            event = json.loads(message)
            assert event["type"] != "error", event
            if event["type"] == "end":
                break
    audio = np.frombuffer(b"".join(frames), "<f4")
    alone = local.synthesize(TEXT, voice=SPEAKERS[0], **NOISE_OFF).audio
    assert audio.shape == alone.shape and (np.array_equal(audio, alone) or snr_db(audio, alone) >= 90)
    with connect(url, proxy=None, compression=None, max_size=None, open_timeout=30) as ws:
        ws.send(json.dumps({"type": "start", "model": MULTI_SPEAKER, "voice": "nobody"}))
        refused = json.loads(ws.recv(timeout=60))
        assert refused["type"] == "error" and refused["error"]["param"] == "voice", refused
        assert "nobody" in refused["error"]["message"] and SPEAKERS[1] in refused["error"]["message"]
