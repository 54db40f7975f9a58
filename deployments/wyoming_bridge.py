"""The Wyoming protocol (Home Assistant's voice protocol) in front of the running service.

``voxstack wyoming`` runs this bridge: it speaks Wyoming to its clients and ``/v1/stream/ws`` to the
service, so everything but the protocol runs in Serve (routing, limits, metrics, every stage).

- ``describe`` → ``info``: one TTS program whose voices are the served addons (``GET /v1/models``), with
  their languages and sample rates, and ``supports_synthesize_streaming``; an addon with several voices
  lists them as its ``speakers``, as wyoming-piper lists a multi-speaker model's.
- ``synthesize.voice``: ``name`` picks the addon (else ``language`` does), ``speaker`` its voice.
- ``synthesize`` → ``audio-start``, ``audio-chunk`` × N, ``audio-stop`` at the addon's rate (16-bit mono).
- ``synthesize-start``, ``synthesize-chunk`` × N, ``synthesize-stop`` → each sentence's audio (its own
  ``audio-start`` … ``audio-stop``) as soon as it completes, then ``synthesize-stopped``; a ``synthesize``
  inside a stream (sent for older servers) is ignored.
- ``ping`` → ``pong``; any other event is logged and ignored: the connection stays up.
- A failure (an unknown voice, a service error) is answered with an ``error`` event; the connection stays up.

The service socket of the next request is opened ahead (one spare, kept at most ``SPARE_MAX_AGE_S``), so a
request's text goes out at once instead of after a connection set-up; audio frames are relayed as they
come, one ``audio-chunk`` each, never buffered or re-cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice, TtsVoiceSpeaker
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler, AsyncServer
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

from blocks.errors import InputError, ServiceError
from deployments.errors import answer_for
from deployments.security import load_api_key

log = logging.getLogger("voxstack.wyoming")

ATTRIBUTION = Attribution(name="voxstack", url="")
WIDTH, CHANNELS = 2, 1
"""Wyoming audio: 16-bit little-endian mono (the socket's ``s16le``)."""
SPARE_MAX_AGE_S = 120.0
"""A spare socket older than this is closed and a fresh one opened (the service may have restarted)."""


def wyoming_language(espeak_voice: str) -> str:
    """``en-us`` → ``en_US`` (Home Assistant's language codes)."""
    language, _, region = espeak_voice.partition("-")
    return f"{language}_{region.upper()}" if region else language


@dataclass(frozen=True)
class Voice:
    """A served addon as Wyoming sees it: a voice whose speakers are the addon's voices."""

    name: str
    language: str
    sample_rate: int
    description: str
    speakers: tuple[str, ...]
    """The addon's voices, the first its default."""

    def speaker(self, wanted: str | None) -> str | None:
        """The addon voice a request's ``voice.speaker`` names (None: the default); an unknown one is refused."""
        if wanted is None or wanted == "":
            return None
        if wanted not in self.speakers:
            raise InputError(f"voice {self.name!r} has no speaker {wanted!r}; speakers: {list(self.speakers)}",
                             "voice")
        return wanted


class RemoteError(ServiceError):
    """The service answered a request with an error; ``kind`` is its error type (the Wyoming code)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class Service:
    """The running voxstack service, as the bridge reaches it."""

    def __init__(self, url: str, api_key: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.ws_url = self.url.replace("http", "ws", 1) + "/v1/stream/ws"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._voices: list[Voice] | None = None
        self._spare: asyncio.Task[ClientConnection] | None = None
        self._spare_since = 0.0
        self._closing: set[asyncio.Task[None]] = set()

    async def voices(self) -> list[Voice]:
        """The served addons (asked once, then remembered; asked again while the service is not up)."""
        if self._voices is None:
            models = await asyncio.to_thread(self._models)
            self._voices = [Voice(m["id"], wyoming_language(m["voices"][0]["language"]), int(m["sample_rate"]),
                                  m.get("description", ""), tuple(v["name"] for v in m["voices"])) for m in models]
        return self._voices

    def _models(self) -> list[dict[str, Any]]:
        request = urllib.request.Request(self.url + "/v1/models", headers=self.headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return list(json.loads(response.read())["data"])

    async def voice(self, wanted: SynthesizeVoice | None) -> Voice:
        """The voice a request names (by addon name, else by language), the first addon when it names none."""
        voices = await self.voices()
        if wanted is None or (wanted.name is None and wanted.language is None):
            return voices[0]
        if wanted.name is not None:
            found = [v for v in voices if v.name == wanted.name]
        else:
            found = [v for v in voices if v.language.lower().startswith(str(wanted.language).lower().replace("-", "_"))]
        if not found:
            asked = wanted.name if wanted.name is not None else f"language {wanted.language}"
            raise InputError(f"no voice {asked!r}; voices: {[v.name for v in voices]}", "voice")
        return found[0]

    async def open(self, voice: Voice, speaker: str | None, sentences: bool, request_id: str) -> ClientConnection:
        """A socket that speaks ``voice`` as ``speaker`` (``start`` sent, with ``request_id``); ``sentences``:
        with sentence marks.

        It is the spare opened ahead when that one is still open, else a new one; either way the next
        request's spare is opened now."""
        ws = await self._take_spare() or await self._connect()
        self.prepare()
        marks = ["sentence"] if sentences else []
        start = {"type": "start", "model": voice.name, "sample_format": "s16le", "marks": marks,
                 "request_id": request_id}
        if speaker is not None:
            start["voice"] = speaker
        await ws.send(json.dumps(start))
        return ws

    def prepare(self) -> None:
        """Open the next request's socket now (unless one is open or opening)."""
        if self._spare is None:
            self._spare = asyncio.create_task(self._connect())
            self._spare.add_done_callback(lambda task: task.cancelled() or task.exception())  # seen: no warning
            self._spare_since = time.monotonic()

    async def _take_spare(self) -> ClientConnection | None:
        """The spare socket if it is (or becomes) open and is young enough; None otherwise."""
        spare, self._spare = self._spare, None
        if spare is None:
            return None
        try:
            ws = await spare
        except Exception:  # the service was not reachable then: try afresh
            return None
        if ws.state is State.OPEN and time.monotonic() - self._spare_since < SPARE_MAX_AGE_S:
            return ws
        closing = asyncio.create_task(ws.close())  # off the request's path
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        return None

    async def _connect(self) -> ClientConnection:
        return await connect(self.ws_url, additional_headers=self.headers, compression=None, max_size=None,
                             proxy=None)

    async def close(self) -> None:
        """Close the spare socket."""
        if (ws := await self._take_spare()) is not None:
            await ws.close()

    async def info(self) -> Info:
        voices = [TtsVoice(name=v.name, attribution=ATTRIBUTION, installed=True, version=None,
                           description=f"{v.description} ({v.sample_rate} Hz)".strip(), languages=[v.language],
                           speakers=[TtsVoiceSpeaker(name=s) for s in v.speakers] if len(v.speakers) > 1 else None)
                  for v in await self.voices()]
        program = TtsProgram(name="voxstack", attribution=ATTRIBUTION, installed=True, version=None,
                             description="voxstack streaming text-to-speech", voices=voices,
                             supports_synthesize_streaming=True)
        self.prepare()  # a client that asked what is served is about to ask for speech
        return Info(tts=[program])


class Handler(AsyncEventHandler):
    """One Wyoming client connection."""

    def __init__(self, service: Service, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.service = service
        self.lock = asyncio.Lock()
        self.socket: ClientConnection | None = None
        self.pump: asyncio.Task[None] | None = None
        self.streaming = False
        self.request_id = ""
        """The id of the request in progress (the service logs under it too)."""

    async def run(self) -> None:
        """Events until the client leaves; a malformed one is answered with an error, the connection kept."""
        try:
            while (event := await self._read()) is not None:
                if isinstance(event, str):
                    await self._write(Error(text=f"malformed event: {event}", code="malformed-event").event())
                else:
                    await self.handle_event(event)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            await self.disconnect()
            self.writer.close()

    async def _read(self) -> Event | str | None:
        """The next event (a JSON header line, then its data and payload bytes); a string saying what is
        wrong with a malformed one; None at the end of the connection."""
        line = await self.reader.readline()
        if not line:
            return None
        try:
            header = json.loads(line)
            if not isinstance(header, dict) or not isinstance(header.get("type"), str):
                return "the header line is not a JSON object with a string 'type'"
            data = header.get("data") or {}
            if length := int(header.get("data_length") or 0):
                data = {**data, **json.loads(await self.reader.readexactly(length))}
            size = int(header.get("payload_length") or 0)
            payload = await self.reader.readexactly(size) if size > 0 else None
        except (ValueError, TypeError) as error:
            return f"{type(error).__name__}: {error}"
        return Event(type=header["type"], data=data, payload=payload)

    async def handle_event(self, event: Event) -> bool:
        try:
            await self._handle(event)
        except Exception as error:  # answered; the connection stays up
            log.warning("wyoming %s failed (request %s): %s: %s", event.type, self.request_id, type(error).__name__,
                        error)
            await self._stop_socket()
            self.streaming = False
            code = error.kind if isinstance(error, RemoteError) else answer_for(error).kind
            await self._write(Error(text=f"{type(error).__name__}: {error}", code=code).event())
        return True

    async def _handle(self, event: Event) -> None:
        if Describe.is_type(event.type):
            await self._write((await self.service.info()).event())
        elif Ping.is_type(event.type):
            await self._write(Pong(text=Ping.from_event(event).text).event())
        elif Synthesize.is_type(event.type):
            if not self.streaming:  # inside a stream it only repeats the chunks, for older servers
                synthesize = Synthesize.from_event(event)
                await self._begin(synthesize.voice, sentences=False)
                await self._send({"type": "text", "text": synthesize.text})
                await self._finish()
        elif SynthesizeStart.is_type(event.type):
            await self._stop_socket()
            self.streaming = True
            await self._begin(SynthesizeStart.from_event(event).voice, sentences=True)
        elif SynthesizeChunk.is_type(event.type):
            if self.streaming:
                await self._send({"type": "text", "text": SynthesizeChunk.from_event(event).text})
        elif SynthesizeStop.is_type(event.type):
            if self.streaming:
                self.streaming = False
                await self._finish()
                await self._write(SynthesizeStopped().event())
        else:
            log.info("wyoming: ignored an event of unknown type %r", event.type)

    async def _begin(self, wanted: SynthesizeVoice | None, sentences: bool) -> None:
        """Open the service socket and start relaying its audio (``sentences``: each sentence's audio
        between its own ``audio-start`` and ``audio-stop``, as in a stream)."""
        self.request_id = uuid.uuid4().hex
        voice = await self.service.voice(wanted)
        speaker = voice.speaker(wanted.speaker if wanted is not None else None)
        log.info("wyoming request %s for voice %s speaker %s", self.request_id, voice.name, speaker)
        self.socket = await self.service.open(voice, speaker, sentences, self.request_id)
        self.pump = asyncio.create_task(self._relay(self.socket, voice))

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.socket is not None
        await self.socket.send(json.dumps(message))

    async def _finish(self) -> None:
        """End the text and wait until its audio has been relayed."""
        await self._send({"type": "end"})
        assert self.pump is not None
        pump, self.pump = self.pump, None
        try:
            await pump
        finally:
            await self._stop_socket()

    async def _relay(self, ws: ClientConnection, voice: Voice) -> None:
        """The service's audio as Wyoming audio events: start, chunks, stop; its error raised."""
        timestamp = 0
        spoken = False
        """Audio relayed since the last ``audio-start``."""
        async for message in ws:
            if isinstance(message, bytes):
                await self._write(AudioChunk(rate=voice.sample_rate, width=WIDTH, channels=CHANNELS,
                                             audio=message, timestamp=timestamp).event())
                timestamp += len(message) * 1000 // (WIDTH * voice.sample_rate)
                spoken = True
                continue
            record = json.loads(message)
            if record["type"] == "start":
                await self._write(AudioStart(rate=voice.sample_rate, width=WIDTH, channels=CHANNELS).event())
            elif record["type"] == "marks" and spoken and any(m["type"] == "sentence" for m in record["marks"]):
                await self._write(AudioStop(timestamp=timestamp).event())  # the next sentence begins
                await self._write(AudioStart(rate=voice.sample_rate, width=WIDTH, channels=CHANNELS,
                                             timestamp=timestamp).event())
                spoken = False
            elif record["type"] == "end":
                await self._write(AudioStop(timestamp=timestamp).event())
                return
            elif record["type"] == "error":
                raise RemoteError(record["error"]["message"], record["error"].get("type") or "server_error")
        raise ServiceError("the service closed the stream before its end")

    async def _stop_socket(self) -> None:
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(BaseException):
                await self.pump
            self.pump = None
        if self.socket is not None:
            with contextlib.suppress(Exception):
                await self.socket.close()
            self.socket = None

    async def _write(self, event: Event) -> None:
        async with self.lock:
            await self.write_event(event)

    async def disconnect(self) -> None:
        await self._stop_socket()


async def serve_wyoming(uri: str, service_url: str, ready: asyncio.Event | None = None) -> None:
    """Run the bridge at ``uri`` (``tcp://host:port``) until cancelled."""
    service = Service(service_url, load_api_key())
    server = AsyncServer.from_uri(uri)
    log.info("wyoming bridge on %s for %s", uri, service_url)
    await server.start(lambda reader, writer: Handler(service, reader, writer))
    if ready is not None:
        ready.set()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
        await service.close()
