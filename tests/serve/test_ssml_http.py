"""SSML over HTTP: served stages honour breaks, hostile SSML is a quick 400, OpenAI's endpoint reads text."""

from __future__ import annotations

import base64
import json
import time

import numpy as np
import pytest

from tests.serve.conftest import Service
from tests.test_ssml import HOSTILE


def _stream(service: Service, body: dict, prefix: str = "") -> tuple[np.ndarray, list[dict], list[dict]]:
    response = service.http.post(f"{prefix}/v1/stream", json={"noise_scale": 0.0, "noise_w": 0.0, **body})
    assert response.status_code == 200, response.text
    records = [json.loads(line) for line in response.text.splitlines()]
    dtype = "<f4" if records[0]["sample_format"] == "f32le" else "<i2"
    audio = np.concatenate([np.frombuffer(base64.b64decode(r["audio"]), dtype) for r in records
                            if r["type"] == "audio"])
    marks = [m for r in records if r["type"] == "marks" for m in r["marks"]]
    return audio, marks, records


@pytest.mark.parametrize("prefix,model", [("", "piper-joe"), ("/placed", "hibari")])
def test_served_break_adds_its_silence(service: Service, prefix: str, model: str) -> None:
    plain, _, _ = _stream(service, {"model": model, "input": "Hello there, my friend."}, prefix)
    ssml = '<speak>Hello there, <break time="700ms"/>my <mark name="m"/>friend.</speak>'
    audio, marks, records = _stream(service, {"model": model, "input": ssml, "text_type": "ssml",
                                              "marks": ["word", "ssml"]}, prefix)
    rate = records[0]["sample_rate"]
    hop = {"piper-joe": 256, "hibari": 600}[model]
    assert abs((audio.shape[0] - plain.shape[0]) - 0.7 * rate) <= hop
    mark = next(m for m in marks if m["type"] == "ssml")
    assert mark["value"] == "m" and ssml.encode()[mark["start"] : mark["end"]] == b'<mark name="m"/>'


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_ssml_is_a_quick_400_and_the_service_keeps_serving(service: Service, name: str) -> None:
    started = time.perf_counter()
    response = service.http.post("/v1/stream", json={"model": "piper-joe", "input": HOSTILE[name],
                                                      "text_type": "ssml"})
    assert time.perf_counter() - started < 1.0
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "input"
    audio, _, _ = _stream(service, {"model": "piper-joe", "input": "<speak>Still here.</speak>", "text_type": "ssml"})
    assert audio.shape[0] > 0


def test_pitch_is_refused_naming_the_addon_and_models_list_controls(service: Service) -> None:
    response = service.http.post("/v1/stream", json={"model": "piper-joe", "text_type": "ssml",
                                                      "input": '<speak><prosody pitch="+20%">Hi</prosody></speak>'})
    assert response.status_code == 400 and "'piper-joe' cannot honour SSML pitch" in response.json()["error"]["message"]
    models = {m["id"]: m for m in service.http.get("/placed/v1/models").json()["data"]}
    assert models["piper-joe"]["controls"] == ["break", "rate", "volume"]
    assert models["hibari"]["controls"] == ["break", "pitch", "rate", "volume"]


def test_unsupported_tag_is_a_400_naming_it(service: Service) -> None:
    response = service.http.post("/v1/stream", json={"model": "piper-joe", "text_type": "ssml",
                                                      "input": "<speak><emphasis>Hi</emphasis></speak>"})
    assert response.status_code == 400 and "<emphasis>" in response.json()["error"]["message"]


def test_openai_endpoint_reads_speak_as_text(service: Service) -> None:
    text = "<speak>Hello</speak>"
    response = service.http.post("/v1/audio/speech", json={"model": "piper-joe", "input": text,
                                                            "response_format": "pcm"})
    assert response.status_code == 200 and len(response.content) > 0


def test_websocket_speaks_ssml_documents_and_refuses_bad_ones(service: Service) -> None:
    from deployments.websocket import POLICY
    from tests.serve.test_websocket import audio, received, send, socket

    document = '<speak>Hello there, <break time="700ms"/>my <mark name="m"/>friend.</speak>'
    whole, _, _ = _stream(service, {"model": "piper-joe", "input": document, "text_type": "ssml",
                                    "sample_format": "f32le"}, "/placed")
    with socket(service) as ws:
        send(ws, "start", model="piper-joe", text_type="ssml", sample_format="f32le", noise_scale=0.0, noise_w=0.0,
             marks=["word", "ssml"])
        for piece in (document[:12], document[12:40], document[40:]):
            send(ws, "text", text=piece)
        send(ws, "end")
        messages, code = received(ws)
    assert code == 1000
    marks = [m for message in messages if isinstance(message, dict) and message["type"] == "marks"
             for m in message["marks"]]
    assert [m["value"] for m in marks] == ["Hello", "there", "my", "m", "friend"]
    np.testing.assert_allclose(audio(messages), whole, atol=1e-4)
    with socket(service) as ws:
        send(ws, "start", model="piper-joe", text_type="ssml")
        send(ws, "text", text="<speak><emphasis>no</emphasis></speak>")
        send(ws, "flush")
        messages, code = received(ws)
    assert code == POLICY and any("<emphasis>" in json.dumps(m) for m in messages if isinstance(m, dict))
