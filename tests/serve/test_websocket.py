"""``/v1/stream/ws``: text streamed in over a WebSocket, through the same Serve graph as ``/v1/stream``."""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import snr_db
from tests.serve.conftest import LONG_TEXT, Service

TEXT = "Dr. Smith paid $42.50 at 9:30, e.g. for tea. Then we left!"
STREAM_STAGES = ("Upsampler-Decoder", "Vocoder", "Fade", "ChunkStats")


@contextmanager
def socket(service: Service, prefix: str = "/placed", **headers: str) -> Iterator[ClientConnection]:
    url = service.url.replace("http://", "ws://") + f"{prefix}/v1/stream/ws"
    with connect(url, proxy=None, compression=None, max_size=None, additional_headers=headers or None,
                 open_timeout=30) as ws:
        yield ws


def send(ws: ClientConnection, kind: str, **fields: Any) -> None:
    ws.send(json.dumps({"type": kind, **fields}))


def received(ws: ClientConnection, timeout: float = 120, timed: bool = False) -> tuple[list[Any], int | None]:
    """Every message until the server closes (JSON decoded, audio as bytes), and the close code; ``timed``:
    each message as (monotonic arrival time, message)."""
    messages: list[Any] = []
    try:
        while True:
            message = ws.recv(timeout=timeout)
            decoded = message if isinstance(message, bytes) else json.loads(message)
            messages.append((time.monotonic(), decoded) if timed else decoded)
    except ConnectionClosed as closed:
        return messages, closed.rcvd.code if closed.rcvd else None


def audio(messages: list[Any]) -> np.ndarray:
    return np.concatenate([np.frombuffer(m, "<f4") for m in messages if isinstance(m, bytes)])


def one_shot(service: Service, text: str, prefix: str = "/placed", **options: Any) -> tuple[np.ndarray, list]:
    body = {"model": "piper-joe", "input": text, "sample_format": "f32le", **options}
    response = service.http.post(f"{prefix}/v1/stream", json=body, timeout=120)
    assert response.status_code == 200, response.text
    records = [json.loads(line) for line in response.text.splitlines()]
    samples = np.concatenate([np.frombuffer(base64.b64decode(r["audio"]), "<f4") for r in records
                              if r["type"] == "audio"])
    return samples, [m for r in records if r["type"] == "marks" for m in r["marks"]]


def test_fragments_cut_at_every_character_give_the_whole_text_audio(service: Service) -> None:
    expected, marks = one_shot(service, TEXT, seed=7)
    with socket(service) as ws:
        send(ws, "start", model="piper-joe", seed=7, sample_format="f32le")
        for char in TEXT:
            send(ws, "text", text=char)
        send(ws, "end")
        messages, code = received(ws)
    assert code == 1000
    assert messages[0]["type"] == "start" and messages[0]["sample_rate"] == 22050
    assert messages[-1] == {"type": "end", "samples": expected.shape[0],
                            "seconds": round(expected.shape[0] / 22050, 4)}
    assert np.array_equal(audio(messages), expected)
    assert [m for r in messages if isinstance(r, dict) and r["type"] == "marks" for m in r["marks"]] == marks


def test_the_first_sentence_is_spoken_before_the_text_ends(service: Service) -> None:
    with socket(service) as ws:
        send(ws, "start", model="piper-joe")
        send(ws, "text", text="The first sentence is done. And the sec")
        assert json.loads(ws.recv(timeout=30))["type"] == "start"
        first = ws.recv(timeout=30)
        assert isinstance(first, bytes) or json.loads(first)["type"] == "marks"
        send(ws, "flush")
        kinds = []
        while "flushed" not in kinds:
            message = ws.recv(timeout=30)
            kinds.append("audio" if isinstance(message, bytes) else json.loads(message)["type"])
        send(ws, "end")
        messages, code = received(ws)
    assert code == 1000 and messages[-1]["type"] == "end"
    assert not any(isinstance(m, bytes) for m in messages)  # everything was spoken by the flush


def test_clear_stops_audio_within_one_chunk_and_the_next_text_is_spoken(service: Service) -> None:
    quiet = {"noise_scale": 0.0, "noise_w": 0.0}
    expected, _ = one_shot(service, "A fresh start.", **quiet)
    with socket(service) as ws:
        send(ws, "start", model="piper-joe", sample_format="f32le", **quiet)
        send(ws, "text", text=LONG_TEXT + " ")
        send(ws, "flush")
        while not isinstance(ws.recv(timeout=30), bytes):
            pass
        send(ws, "clear")
        late = 0
        while True:
            message = ws.recv(timeout=30)
            if isinstance(message, bytes):
                late += 1
            elif json.loads(message)["type"] == "cleared":
                break
        assert late <= 1, late  # at most the chunk already on its way
        send(ws, "text", text="A fresh start.")
        send(ws, "end")
        messages, code = received(ws)
    assert code == 1000
    assert snr_db(audio(messages), expected) > 60  # noise off: the same audio (threads may reorder float sums)


def test_a_disconnect_mid_stream_cancels_every_stage(service: Service) -> None:
    before = {name: service.stats(name) for name in STREAM_STAGES}
    with socket(service, "") as ws:
        send(ws, "start")
        send(ws, "text", text=LONG_TEXT)
        send(ws, "end")
        while not isinstance(ws.recv(timeout=30), bytes):
            pass
    deadline = time.time() + 10
    while not all(service.stats(n)["active"] == 0 for n in STREAM_STAGES):
        assert time.time() < deadline, "a stage kept streaming"
        time.sleep(0.2)
    delta = {n: service.stats(n)["cancelled"] - before[n]["cancelled"] for n in STREAM_STAGES}
    assert delta["ChunkStats"] >= 1, delta
    assert service.stats("ChunkStats")["completed"] - before["ChunkStats"]["completed"] <= 1


BAD = [
    ("text before start", [{"type": "text", "text": "hi"}], 1008, "before 'start'"),
    ("second start", [{"type": "start"}, {"type": "start"}], 1008, "second 'start'"),
    ("unknown type", [{"type": "start"}, {"type": "speak"}], 1008, "unknown message type 'speak'"),
    ("bad field", [{"type": "start", "seed": -1}], 1008, "seed"),
    ("unknown voice", [{"type": "start", "voice": "nobody"}], 1008, "voice 'nobody'"),
    ("binary frame", [b"\x00\x01"], 1003, "binary frames"),
    ("non-UTF-8 frame", [b"\xff\xfe"], 1007, "not UTF-8"),
    ("malformed JSON", ["{nope"], 1007, "malformed JSON"),
    ("oversized frame", [{"type": "start"}, {"type": "text", "text": "a" * 70_000}], 1009, "over the limit"),
]


@pytest.mark.parametrize(("frames", "code", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_closes_with_a_code_and_a_json_error(service: Service, frames: list, code: int,
                                                        message: str) -> None:
    with socket(service, "") as ws:
        for frame in frames:
            ws.send(json.dumps(frame) if isinstance(frame, dict) else frame)
        messages, closed = received(ws, 30)
    errors = [m for m in messages if isinstance(m, dict) and m["type"] == "error"]
    assert closed == code, messages
    assert len(errors) == 1 and message in errors[0]["error"]["message"], errors
    assert set(errors[0]["error"]) == {"message", "type", "param"}
    assert service.http.get("/healthz").status_code == 200  # everyone else is still served


def _ingress(service: Service, **config: Any) -> None:
    def change(whole: dict[str, Any]) -> None:
        entry = next(d for a in whole["applications"] if a["name"] == "voxstack"
                     for d in a["deployments"] if d["name"] == "Ingress")
        entry["user_config"] = {**entry["user_config"], **config}

    service.redeploy(change)  # returns once Serve reports the replicas reconfigured


@pytest.fixture
def small_limits(service: Service) -> Iterator[None]:
    original = dict(service.deployment("Ingress")["user_config"])
    _ingress(service, max_sockets=2, socket_pace_ahead_s=1.0)
    try:
        yield
    finally:
        service.redeploy(lambda whole: next(d for a in whole["applications"] if a["name"] == "voxstack"
                                            for d in a["deployments"] if d["name"] == "Ingress")
                         .update(user_config=original))


def test_more_sockets_than_the_maximum_are_refused_and_a_client_that_never_reads_is_paced(
        service: Service, small_limits: None) -> None:
    with socket(service, "") as first, socket(service, "") as second:
        for ws in (first, second):
            send(ws, "start")
            assert json.loads(ws.recv(timeout=30))["type"] == "start"
        with socket(service, "") as third:
            messages, code = received(third, 30)
        assert code == 1013 and "busy" in messages[0]["error"]["message"]
        assert messages[0]["error"]["type"] == "rate_limit_error"
        send(first, "text", text=". ".join(LONG_TEXT.split(". ")[:3]) + ".")  # three sentences
        send(first, "end")
        messages, code = received(first, 120, timed=True)
    # paced at 1 s ahead of real-time playback: before each audio frame, no more than a second beyond the
    # time since the first one had been sent (half a second allowed for the two clocks' offset)
    frames = [(at, len(m) // 2) for at, m in messages if isinstance(m, bytes)]
    assert code == 1000 and len(frames) > 3
    before = 0
    for at, size in frames:
        assert before / 22050 <= at - frames[0][0] + 1.0 + 0.5, (before / 22050, at - frames[0][0])
        before += size
    assert before / 22050 > 12  # the whole text arrived (12.8 s)


def _ws_first_audio() -> dict[str, float]:
    """``voxstack_first_audio_seconds`` counts of ``endpoint="ws"`` by variant, from every node's exporter."""
    import httpx
    import ray

    ports = {n["MetricsExportPort"] for n in ray.nodes() if n["Alive"] and n.get("MetricsExportPort")}
    counts: dict[str, float] = {}
    for port in ports:
        for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines():
            if line.startswith("ray_voxstack_first_audio_seconds_count{") and 'endpoint="ws"' in line:
                variant = line.split('variant="', 1)[1].split('"', 1)[0]
                counts[variant] = counts.get(variant, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def test_a_sockets_first_audio_is_recorded_like_a_requests(service: Service) -> None:
    before = _ws_first_audio()
    with socket(service, "") as ws:
        send(ws, "start", model="piper-joe")
        send(ws, "text", text="Measure me. Then")
        send(ws, "end")
        messages, code = received(ws)
    assert code == 1000 and any(isinstance(m, bytes) for m in messages)
    variant = messages[0]["variant"]
    deadline = time.time() + 60
    while _ws_first_audio().get(variant, 0.0) < before.get(variant, 0.0) + 1:
        assert time.time() < deadline, f"no first audio with endpoint=ws, variant={variant}: {_ws_first_audio()}"
        time.sleep(1)


def test_a_text_frame_that_is_not_utf8_is_failed_1007_by_the_websocket_layer(service: Service) -> None:
    """RFC 6455 8.1: Serve's proxy fails the connection before the app sees the frame, so no JSON error."""
    with socket(service, "") as ws:
        send(ws, "start", model="piper-joe")
        ws.recv(timeout=30)  # the start answer: the socket is served
        ws.send(b'{"type": "text", "text": "\xff\xfe"}', text=True)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                message = ws.recv(timeout=30)
                assert isinstance(message, bytes) or json.loads(message)["type"] != "error", message
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
    assert closed.value.rcvd.reason == ""
    with socket(service, "") as other:  # everyone else is still served
        send(other, "start", model="piper-joe")
        send(other, "text", text="Still here.")
        send(other, "end")
        messages, code = received(other)
    assert code == 1000 and any(isinstance(m, bytes) for m in messages)


def _refused_busy(service: Service) -> bool:
    """Whether a new socket is refused as busy (else it is served: closed again at once)."""
    with socket(service, "") as probe:
        with contextlib.suppress(ConnectionClosed):  # a refused socket may close before this is sent
            send(probe, "start")
        answer = json.loads(probe.recv(timeout=30))
    return answer["type"] == "error" and answer["error"]["type"] == "rate_limit_error"


def test_a_client_that_never_reads_is_closed_by_the_proxys_keepalive_and_frees_its_place(
        service: Service, small_limits: None) -> None:
    """Serve's proxy buffers the socket, so the ingress cannot see a client stop reading; the proxy's
    keepalive can: its ping waits unread behind the audio, and no pong comes back."""
    url = service.url.replace("http://", "ws://") + "/v1/stream/ws"
    with connect(url, proxy=None, compression=None, max_size=None, open_timeout=30, ping_interval=None) as silent, \
            socket(service, "") as other:
        send(other, "start")  # the second of two places; its client library answers pings
        send(silent, "start")
        for ws in (other, silent):
            assert json.loads(ws.recv(timeout=30))["type"] == "start"
        send(silent, "text", text=" ".join([LONG_TEXT] * 4))  # minutes of audio: still speaking at the close
        send(silent, "end")
        deadline = time.time() + 180
        while _refused_busy(service):  # the silent client reads nothing meanwhile
            assert time.time() < deadline, "a client that never reads kept its place"
            time.sleep(3)
        messages: list[Any] = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                messages.append(silent.recv(timeout=30))
        send(other, "end")
        served, code = received(other)
        assert code == 1000 and served[-1]["type"] == "end"  # the other client was served throughout
    if closed.value.rcvd is not None:  # else the connection ended before its close frame was read (1006)
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1011, "keepalive ping timeout")
    assert not any(isinstance(m, str) and json.loads(m)["type"] == "end" for m in messages)  # cut short
    deadline = time.time() + 10
    while service.stats("ChunkStats")["active"] != 0:
        assert time.time() < deadline, "a stage kept streaming"
        time.sleep(0.2)
