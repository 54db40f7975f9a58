"""Cancellation on disconnect, overload answers, mid-stream failures, autoscaling, placement."""

from __future__ import annotations

import concurrent.futures
import json
import time
from typing import Any

import httpx
import pytest
from ray import serve

from tests.serve.conftest import FIXED_STAGE, LONG_TEXT, Service, admitted

STREAM_STAGES = ("Upsampler-Decoder", "Vocoder", "Fade", "ChunkStats")


def _wait(predicate: Any, timeout: float, message: str) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, message
        time.sleep(0.2)


ONE_LONG_SENTENCE = (
    "The slow river carries the fallen leaves past the old stone bridge and the quiet mill where the miller and "
    "his daughter watch the water turn the great wooden wheel from the first light of morning until the long "
    "shadows of the evening reach across the empty fields and the tired horses come home."
)


def test_disconnect_cancels_every_stage(service: Service) -> None:
    """The client leaves after the first bytes of a 14 s first utterance and eight more: the stage still
    streaming is cancelled, every stage ends each stream it began, and no later utterance is synthesized
    (a stage whose part of the first utterance was done before the disconnect reached it ends it complete)."""
    counts = ("streams", "cancelled", "completed", "failed")
    before = {name: service.stats(name) for name in STREAM_STAGES}
    with service.http.stream("POST", "/v1/audio/speech", json={
            "model": "piper-joe", "input": f"{ONE_LONG_SENTENCE} {LONG_TEXT}", "response_format": "pcm"}) as r:
        assert r.status_code == 200
        next(r.iter_bytes())
    _wait(lambda: all(service.stats(n)["active"] == 0 for n in STREAM_STAGES), 10, "a stage kept streaming")
    delta = {n: {k: service.stats(n)[k] - before[n][k] for k in counts} for n in STREAM_STAGES}
    assert delta["ChunkStats"]["cancelled"] >= 1, delta  # the audio stage was cut off, not run out
    for change in delta.values():
        assert change["failed"] == 0, delta
        assert change["streams"] == change["cancelled"] + change["completed"] >= 1, delta
        assert change["completed"] <= 1, delta  # at most the first utterance's part ran to its end


def _long_stream(url: str, retry: bool = True) -> tuple[int, dict[str, str]]:
    """One long stream read to its end (``retry``: a 429 is sent again after its Retry-After)."""
    body = {"model": "piper-joe", "input": LONG_TEXT, "response_format": "pcm"}
    with httpx.Client(base_url=url, timeout=120) as client:
        r = admitted(lambda: client.post("/v1/audio/speech", json=body), 180 if retry else 0)
        return r.status_code, dict(r.headers)


def test_a_colocated_stage_encodes_and_streams_every_utterance(service: Service) -> None:
    """The ``fixed`` app serves piper-joe's encoder part in its one stream stage (``colocate_encoder``): there is
    no encoder deployment, and each utterance of a request is encoded and streamed by that stage."""
    assert set(serve.status().applications["fixed"].deployments) == {"Ingress", FIXED_STAGE}
    before = service.stats(FIXED_STAGE, app="fixed")
    response = admitted(lambda: service.http.post("/fixed/v1/audio/speech", json={
        "model": "piper-joe", "input": "The first sentence is short. The second one is too.",
        "response_format": "pcm"}))
    assert response.status_code == 200 and len(response.content) > 0

    def changed(key: str) -> int:
        return service.stats(FIXED_STAGE, app="fixed")[key] - before[key]

    _wait(lambda: changed("completed") == 2, 10, "the stage did not complete both utterances")
    assert changed("encoded") == 2 and changed("failed") == 0


def test_overload_is_429_with_retry_after(service: Service) -> None:
    with concurrent.futures.ThreadPoolExecutor(7) as pool:
        results = list(pool.map(_long_stream, [service.url] * 7, [False] * 7))
    codes = [code for code, _ in results]
    # at most max_streams (3) produce at once; fewer if the measured capacity holds fewer
    assert 1 <= codes.count(200) and 429 in codes, codes
    assert all(int(headers["retry-after"]) >= 1 for code, headers in results if code == 429)


def test_autoscaling_up_then_down(service: Service) -> None:
    """The Vocoder's policy reads the streams it holds against its measured capacity (admission's signal):
    three streams scale it out, which its ongoing-request target alone never would (one stream's load, about
    0.15 here, stays under the test config's target of 0.25)."""
    def running() -> int:
        states = serve.status().applications["voxstack"].deployments["Vocoder"].replica_states
        return int(states.get("RUNNING", 0))

    _wait(lambda: running() == 1, 40, "Vocoder not at its minimum before the burst")
    assert _long_stream(service.url)[0] == 200  # eight utterances: the replica has measured its capacity
    vocoder = serve.get_deployment_handle("Vocoder", app_name="voxstack")
    _wait(lambda: "stream_load" in vocoder.record_autoscaling_stats.remote().result(timeout_s=30), 30,
          "no Vocoder replica reports its stream_load")  # a replica that has not measured yet reports nothing
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(_long_stream, service.url) for _ in range(3)]
        time.sleep(1.0)
        load = vocoder.record_autoscaling_stats.remote().result(timeout_s=30)
        _wait(lambda: running() == 2, 30, f"Vocoder never scaled up under the burst (a replica reported {load})")
        assert all(f.result()[0] == 200 for f in futures)
    _wait(lambda: running() == 1, 40, "Vocoder never scaled back down")


def _fail_vocoder(after: int | None) -> Any:
    def change(config: dict[str, Any]) -> None:
        entry = next(d for d in config["applications"][0]["deployments"] if d["name"] == "Vocoder")
        entry["user_config"] = {"fail_after_chunks": after, "fail_seed": 0}
    return change


def _ndjson(url: str, seed: int) -> list[dict[str, Any]]:
    with httpx.Client(base_url=url, timeout=120) as client:
        r = admitted(lambda: client.post("/v1/stream", json={"model": "piper-joe", "input": LONG_TEXT, "seed": seed}))
        assert r.status_code == 200, r.text
        return [json.loads(line) for line in r.text.splitlines()]


def test_stage_failure_mid_stream_is_detectable(service: Service) -> None:
    service.redeploy(_fail_vocoder(1))
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            failing, healthy = pool.map(_ndjson, [service.url] * 2, [0, 5])
        assert failing[0]["type"] == "start" and failing[-1]["type"] == "error"
        assert "fault drill" in failing[-1]["error"]["message"]
        assert healthy[-1]["type"] == "end" and not any(r["type"] == "error" for r in healthy)
        with pytest.raises(httpx.RemoteProtocolError):
            admitted(lambda: service.http.post("/v1/audio/speech", json={
                "model": "piper-joe", "input": LONG_TEXT, "response_format": "wav"}))
    finally:
        service.redeploy(_fail_vocoder(None))
    r = admitted(lambda: service.http.post("/v1/audio/speech", json={"model": "piper-joe", "input": "Healthy again.",
                                                                      "response_format": "wav"}))
    assert r.status_code == 200 and len(r.content) > 44 + 22050


def test_placement_on_fake_accelerators(service: Service) -> None:
    import ray

    nodes = {n["NodeID"]: n["Resources"] for n in ray.nodes() if n["Alive"]}
    (encoders,) = service.stats("piper-joe.Encoders", app="placed")["nodes"]
    (decoder,) = service.stats("piper-joe.Upsampler-Decoder", app="placed")["nodes"]
    assert "neuron_cores" in nodes[encoders] and "GPU" not in nodes[encoders]
    assert "GPU" in nodes[decoder]
    r = service.http.post("/placed/v1/audio/speech", json={"model": "piper-joe", "input": "Placed stages.",
                                                           "response_format": "wav"})
    assert r.status_code == 200 and r.content[:4] == b"RIFF"


def test_deadline_ends_the_stream(service: Service) -> None:
    def deadline(seconds: float) -> Any:
        def change(config: dict[str, Any]) -> None:
            config["applications"][0]["deployments"][0]["user_config"]["deadline_s"] = seconds
        return change

    service.redeploy(deadline(1.0))
    try:
        started = time.perf_counter()
        lines = service.http.post("/v1/stream", json={"model": "piper-joe", "input": LONG_TEXT * 3}).text
        records = [json.loads(line) for line in lines.splitlines()]
        assert records[-1]["type"] == "error" and "deadline" in records[-1]["error"]["message"]
        assert time.perf_counter() - started < 5
    finally:
        service.redeploy(deadline(60))


def test_pacing_bounds_the_run_ahead(service: Service) -> None:
    def pace(seconds: float | None) -> Any:
        def change(config: dict[str, Any]) -> None:
            config["applications"][0]["deployments"][0]["user_config"]["pace_ahead_s"] = seconds
        return change

    service.redeploy(pace(1.0))
    try:
        text = "Paced streams never run far ahead of playback. They send audio about as fast as it plays."
        arrivals: list[tuple[float, float, float]] = []
        with service.http.stream("POST", "/v1/stream", json={"model": "piper-joe", "input": text}) as r:
            first = None
            for line in r.iter_lines():
                record = json.loads(line)
                if record["type"] == "audio":
                    now = time.perf_counter()
                    first = first if first is not None else now
                    arrivals.append((now - first, record["offset"] / 22050, record["samples"] / 22050))
    finally:
        service.redeploy(pace(None))
    assert all(start <= at + 1.0 + 0.3 for at, start, _ in arrivals), arrivals
    audio = arrivals[-1][1] + arrivals[-1][2]
    assert audio > 4 and arrivals[-1][0] >= arrivals[-1][1] - 1.3, arrivals


def test_admission_decisions_are_visible(service: Service) -> None:
    """Each admission decision is kept with the request id and what the test weighed; the model shows each
    voice's cost once streams of it have ended."""
    request_id = "admission-visible-1"
    with httpx.Client(base_url=service.url, timeout=60) as client:
        for n in range(4):  # enough ended streams for the addon's cost to be measured
            response = admitted(lambda n=n: client.post(
                "/placed/v1/stream", headers={"X-Request-Id": f"{request_id}-{n}"},
                json={"model": "piper-joe", "input": "The river runs past the mill.", "marks": []}), 60)
            assert response.status_code == 200
        state = client.get("/placed/v1/admission").json()
    decisions = {d["request_id"]: d for d in state["decisions"]}
    first, last = decisions[f"{request_id}-0"], decisions[f"{request_id}-3"]
    assert first["admitted"] and first["reason"] == "" and first["addon"] == "piper-joe", first
    assert last["measured"] and last["steady"] > 0 and last["margin"] <= state["margin"], last
    costs = {(c["addon"], c["voice"]): c for c in state["costs"]}
    assert costs[("piper-joe", first["voice"])]["machine_s_per_audio_s"] > 0, costs
