"""The Wyoming bridge, driven by the ``wyoming`` package's own client (the library Home Assistant uses)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from wyoming.audio import AudioChunk, AudioStart
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeVoice

from deployments.run import free_port
from deployments.wyoming_bridge import Service as Bridged
from deployments.wyoming_bridge import serve_wyoming
from tests.conftest import snr_db
from tests.serve.conftest import MULTI_SPEAKER, SPEAKERS, Service

TEXT = "Dr. Smith paid $42.50 at 9:30, e.g. for tea. Then we all went home."
FIRST = "Dr. Smith paid $42.50 at 9:30, e.g. for tea. Th"
"""Enough text to complete the first sentence (confirmed by what follows it)."""


@pytest.fixture(scope="module")
def bridge(service: Service) -> Iterator[int]:
    """The bridge on its own event loop, speaking to every addon of ``/placed``."""
    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def run() -> None:
        started = asyncio.Event()
        task = asyncio.create_task(serve_wyoming(f"tcp://127.0.0.1:{port}", f"{service.url}/placed", started))
        await started.wait()
        ready.set()
        await task

    def serve() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(run())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30)
    yield port
    for task in asyncio.all_tasks(loop):
        loop.call_soon_threadsafe(task.cancel)
    thread.join(10)


def models(service: Service) -> list[dict[str, Any]]:
    return list(service.http.get("/placed/v1/models").json()["data"])


async def _events_until(client: AsyncTcpClient, last: str) -> list[Event]:
    events = []
    while True:
        event = await asyncio.wait_for(client.read_event(), 120)
        assert event is not None, "the bridge closed the connection"
        events.append(event)
        if event.type in (last, "error"):
            return events


def audio_of(events: list[Event]) -> bytes:
    return b"".join(e.payload or b"" for e in events if AudioChunk.is_type(e.type))


async def one_shot(port: int, text: str, voice: str) -> list[Event]:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text, voice=SynthesizeVoice(name=voice)).event())
        return await _events_until(client, "audio-stop")


async def streamed(port: int, voice: str) -> tuple[list[Event], list[Event]]:
    """Events before ``synthesize-stop`` is sent (after the first sentence's fragments), and after."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name=voice)).event())
        for at in range(0, len(FIRST), 5):  # cut inside words, as a language model's tokens are
            await client.write_event(SynthesizeChunk(FIRST[at:at + 5]).event())
        before = [await asyncio.wait_for(client.read_event(), 120)]
        while not AudioChunk.is_type(before[-1].type):
            before.append(await asyncio.wait_for(client.read_event(), 120))
        await client.write_event(SynthesizeChunk(TEXT[len(FIRST):]).event())
        await client.write_event(Synthesize(TEXT, voice=SynthesizeVoice(name=voice)).event())  # ignored
        await client.write_event(SynthesizeStop().event())
        return before, await _events_until(client, "synthesize-stopped")


def test_describe_lists_every_addon_as_a_voice_of_one_streaming_program(service: Service, bridge: int) -> None:
    async def describe() -> Event:
        async with AsyncTcpClient("127.0.0.1", bridge) as client:
            await client.write_event(Describe().event())
            return await asyncio.wait_for(client.read_event(), 30)

    info = Info.from_event(asyncio.run(describe()))
    assert len(info.tts) == 1 and info.tts[0].supports_synthesize_streaming
    served = models(service)
    voices = info.tts[0].voices
    assert [v.name for v in voices] == [m["id"] for m in served] and len(voices) >= 3
    for voice, model in zip(voices, served, strict=True):
        assert voice.languages == [model["voices"][0]["language"].replace("-", "_")]
        assert f"{model['sample_rate']} Hz" in (voice.description or "")
        # as wyoming-piper lists a multi-speaker model's speakers; a single-voice addon lists none
        names = [v["name"] for v in model["voices"]]
        assert [s.name for s in voice.speakers or []] == (names if len(names) > 1 else [])
    assert next(v for v in voices if v.name == MULTI_SPEAKER).languages == ["de_DE"]


def test_the_speaker_is_chosen_per_request_and_equals_the_http_stream(service: Service, bridge: int) -> None:
    text = "Guten Morgen. Der Zug fährt um neun Uhr ab."

    async def speak(speaker: str | None) -> list[Event]:
        async with AsyncTcpClient("127.0.0.1", bridge) as client:
            await client.write_event(Synthesize(text, voice=SynthesizeVoice(name=MULTI_SPEAKER,
                                                                             speaker=speaker)).event())
            return await _events_until(client, "audio-stop")

    for speaker in (SPEAKERS[1], SPEAKERS[2]):
        body = {"model": MULTI_SPEAKER, "voice": speaker, "input": text, "sample_format": "s16le"}
        records = [json.loads(line) for line in service.http.post("/placed/v1/stream", json=body).text.splitlines()]
        http = b"".join(base64.b64decode(r["audio"]) for r in records if r["type"] == "audio")
        assert audio_of(asyncio.run(speak(speaker))) == http
    default = audio_of(asyncio.run(speak(None)))
    assert default != audio_of(asyncio.run(speak(SPEAKERS[1])))  # no speaker: the first, ana
    refused = asyncio.run(speak("nobody"))
    assert refused[-1].type == "error" and all(name in refused[-1].data["text"] for name in SPEAKERS)


@pytest.mark.parametrize("addon", ["piper-joe", "hibari", "legacy-ar"])
def test_one_shot_and_streamed_synthesis_give_the_same_audio(service: Service, bridge: int, addon: str) -> None:
    rate = next(m["sample_rate"] for m in models(service) if m["id"] == addon)
    whole = asyncio.run(one_shot(bridge, TEXT, addon))
    assert whole[0].type == "audio-start" and whole[-1].type == "audio-stop", whole[-1]
    start = AudioStart.from_event(whole[0])
    assert (start.rate, start.width, start.channels) == (rate, 2, 1)
    before, after = asyncio.run(streamed(bridge, addon))
    assert before[0].type == "audio-start"  # audio came before synthesize-stop was sent
    starts_stops = [e.type for e in before + after if not AudioChunk.is_type(e.type)]
    assert starts_stops == ["audio-start", "audio-stop"] * 2 + ["synthesize-stopped"]  # one pair a sentence
    streamed_audio, whole_audio = (np.frombuffer(audio_of(events), "<i2").astype(np.float32)
                                   for events in (before + after, whole))
    assert whole_audio.size > rate / 2  # more than half a second
    if addon == "legacy-ar":  # its torch decoder's float sums depend on thread timing: a bit or two may differ
        assert snr_db(streamed_audio, whole_audio) > 50
    else:
        assert np.array_equal(streamed_audio, whole_audio)


def test_one_shot_audio_equals_the_http_stream(service: Service, bridge: int) -> None:
    body = {"model": "piper-joe", "input": TEXT, "sample_format": "s16le", "marks": []}
    records = [json.loads(line) for line in service.http.post("/placed/v1/stream", json=body).text.splitlines()]
    http = b"".join(base64.b64decode(r["audio"]) for r in records if r["type"] == "audio")
    assert audio_of(asyncio.run(one_shot(bridge, TEXT, "piper-joe"))) == http


def test_unknown_events_malformed_events_and_unknown_voices_keep_the_connection(bridge: int) -> None:
    async def session() -> list[Event]:
        async with AsyncTcpClient("127.0.0.1", bridge) as client:
            answers = []
            await client.write_event(Event(type="some-future-event", data={"x": 1}))
            assert client._writer is not None
            client._writer.write(b"{not json\n")
            await client._writer.drain()
            answers.append(await asyncio.wait_for(client.read_event(), 30))
            await client.write_event(Synthesize("Hi.", voice=SynthesizeVoice(name="nobody")).event())
            answers.append(await asyncio.wait_for(client.read_event(), 30))
            await client.write_event(Synthesize("Hi.", voice=SynthesizeVoice(language="en_US")).event())
            answers += await _events_until(client, "audio-stop")
            return answers

    answers = asyncio.run(session())
    assert answers[0].type == "error" and "malformed event" in answers[0].data["text"]
    assert answers[1].type == "error" and "no voice 'nobody'" in answers[1].data["text"]
    assert answers[2].type == "audio-start" and answers[-1].type == "audio-stop"
    assert np.frombuffer(audio_of(answers[2:]), "<i2").size > 0


def test_a_request_takes_the_socket_opened_ahead_and_one_the_service_closed_is_replaced(service: Service) -> None:
    async def speak(bridged: Bridged) -> list[Any]:
        ws = await bridged.open(await bridged.voice(SynthesizeVoice(name="piper-joe")), None, sentences=False,
                                request_id="wyoming-test")
        await ws.send(json.dumps({"type": "text", "text": "Opened ahead."}))
        await ws.send(json.dumps({"type": "end"}))
        return [m if isinstance(m, bytes) else json.loads(m) async for m in ws]

    async def run() -> tuple[list[Any], list[Any]]:
        bridged = Bridged(f"{service.url}/placed")
        await bridged.info()  # describe opens the next request's socket
        spare = bridged._spare
        assert spare is not None
        ahead = await spare
        taken = await speak(bridged)
        assert ahead.state.name == "CLOSED"  # the request spoke over it (the service closed it at the end)
        await (await bridged._spare).close()  # as a service restart would
        again = await speak(bridged)
        await bridged.close()
        return taken, again

    for messages in asyncio.run(run()):
        assert messages[0]["type"] == "start" and messages[-1]["type"] == "end"
        assert any(isinstance(m, bytes) for m in messages)
