"""``/v1/stream/ws``: text streamed in over a WebSocket, audio streamed out as its sentences complete.

The client sends JSON text frames: ``start`` (first, once), then ``text`` fragments cut anywhere,
``flush``, ``clear`` (barge-in) and ``end``. The server answers ``start``, binary audio frames (the
``sample_format`` of ``start``), ``marks``, ``flushed``, ``cleared``, ``end`` (then a normal close) and
``error``. What is said is the TextStream's (blocks/text_stream.py); this module only moves it.
With ``"text_type": "ssml"`` in ``start``, the fragments form SSML documents, each spoken once a
``flush`` or ``end`` closes it (blocks/ssml_stream.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from blocks.errors import InputError, first_problem
from blocks.options import SynthesisOptions, VoiceOptions
from blocks.ssml_stream import SsmlTextStream
from blocks.text_stream import TextStream
from deployments.api import error_body
from deployments.audio import SAMPLE_FORMATS
from deployments.errors import NORMAL, POLICY, SERVER_ERROR, TRY_LATER, answer_for, param_of
from deployments.lifecycle import Lifecycle, request_id
from deployments.security import SUBPROTOCOL_PREFIX
from deployments.served_text_stream import IDLE, ServedTextStream

if TYPE_CHECKING:
    from deployments.ingress import Ingress
    from deployments.served_addons import ServedAddon

UNSUPPORTED = 1003
"""A binary frame from the client."""
INVALID_DATA = 1007
"""A frame that is not UTF-8 JSON."""
TOO_BIG = 1009
"""A frame over ``max_frame_bytes``."""


class Start(VoiceOptions):
    """The first message: what to speak with."""

    type: Literal["start"]
    model: str | None = None
    """The addon (default: the first served)."""
    sample_format: Literal["s16le", "f32le"] = "s16le"
    """Encoding of the binary audio frames."""
    text_type: Literal["text", "ssml"] = "text"
    """``ssml``: the text is SSML, one ``<speak>`` document per ``flush`` (and one before ``end``)."""
    request_id: str | None = None
    """The socket's request id in every log line (default: the upgrade request's ``X-Request-ID``, or a new one)."""

    def options(self) -> SynthesisOptions:
        return SynthesisOptions(**self.model_dump(include=set(VoiceOptions.model_fields)))


class Text(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["flush", "clear", "end"]


class Refused(Exception):
    """A client mistake that ends the socket with ``code`` and a JSON error."""

    def __init__(self, code: int, message: str, param: str | None = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.code, self.message, self.param, self.kind = code, message, param, kind

    @classmethod
    def of(cls, error: BaseException) -> Refused:
        """The refusal the error table gives ``error``."""
        answer = answer_for(error)
        message = str(error) if answer.status < 500 else f"{type(error).__name__}: {error}"
        return cls(answer.close_code, message, param_of(error), answer.kind)


def parse(message: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """One client frame as a JSON object with a ``type``; a Refused naming what is wrong otherwise."""
    if message.get("bytes") is not None:
        raw = message["bytes"]
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(INVALID_DATA, "a binary frame that is not UTF-8; send JSON text frames") from None
        raise Refused(UNSUPPORTED, "binary frames are not accepted; send JSON text frames")
    text = message.get("text") or ""
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise Refused(TOO_BIG, f"a frame over the limit of {max_bytes} bytes; send text in smaller fragments")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise Refused(INVALID_DATA, f"malformed JSON: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise Refused(POLICY, "each message is a JSON object with a string 'type'", "type")
    return data


def validated(model: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problem = first_problem(error, root="")
        raise Refused(POLICY, f"{data['type']}: {problem}", problem.field or "message") from None


class Socket:
    """One client's conversation: a TextStream, the Synthesis that speaks it, and a writer task."""

    def __init__(self, ingress: Ingress, websocket: WebSocket, request_id: str) -> None:
        self.ingress = ingress
        self.config = ingress.config
        self.ws = websocket
        self.lifecycle = Lifecycle(request_id, "ws")
        self.send_lock = asyncio.Lock()
        self.stream: TextStream | None = None
        self.synthesis: ServedTextStream | None = None
        self.writer: asyncio.Task[None] | None = None
        self.model: ServedAddon | None = None
        self.variant = ""
        self.pack: Any = None
        self.sent = 0
        """Samples sent to the client."""
        self.flushes: list[int] = []
        """Utterance counts at each unanswered flush: answered once those utterances are sent."""
        self.outcome = "failed"
        self.released_at: float | None = None
        """When a frame confirmed the first sentence (text after it, a flush or the end)."""
        self.first_audio = False
        """Whether the socket's first audio was measured."""
        self.last_frame: tuple[int, float] | None = None
        """The utterance and time of the last audio frame sent."""
        self.unheld = asyncio.Event()
        """Set unless the stream's first sentence is released on speculation (its audio is then held)."""
        self.unheld.set()

    async def run(self) -> None:
        """Serve the socket until its end, a client error, or a disconnect; every stage stops with it."""
        protocols = self.ws.scope.get("subprotocols") or []
        offered = next((p for p in protocols if p.startswith(SUBPROTOCOL_PREFIX)), None)
        await self.ws.accept(subprotocol=offered)
        sockets = self.ingress.sockets
        try:
            if len(sockets) >= self.config.max_sockets:
                raise Refused(TRY_LATER, f"busy: {len(sockets)} sockets open; retry later", None, "rate_limit_error")
            sockets.add(self)
            await self._receive()
        except Refused as refused:
            self.lifecycle.abort("invalid" if refused.code == POLICY else "refused", refused.message)
            await self._refuse(refused)
        except (WebSocketDisconnect, RuntimeError):  # the client left (or the socket closed after its end)
            if self.outcome != "ok":
                self.outcome = "cancelled"
                self.lifecycle.abort("client_gone")
        finally:
            sockets.discard(self)
            await self._stop()
            if self.variant:
                self.ingress.metrics.outcome(self.variant, "ws", self.outcome)

    async def shutdown(self) -> None:
        """The replica is stopping: end the socket's synthesis and close it (1001, going away)."""
        self.lifecycle.abort("shutdown", "the replica is stopping")
        await self._stop()
        with contextlib.suppress(Exception):
            await self.ws.close(1001, "the service is stopping")

    async def _receive(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            data = parse(message, self.config.max_frame_bytes)
            kind = data["type"]
            if self.stream is None and kind != "start":
                raise Refused(POLICY, f"'{kind}' before 'start': the first message must be start", "type")
            if kind == "start":
                if self.stream is not None:
                    raise Refused(POLICY, "a second 'start': one stream per socket", "type")
                await self._start(validated(Start, data))
            elif kind == "text":
                await self._feed(type(self.stream).feed, validated(Text, data).text)
            elif kind in ("flush", "clear", "end"):
                validated(Command, data)
                await getattr(self, f"_{kind}")()
            else:
                raise Refused(POLICY, f"unknown message type {kind!r}; valid: start, text, flush, clear, end", "type")

    async def _start(self, start: Start) -> None:
        if start.request_id is not None:
            self.lifecycle.request_id = request_id(start.request_id)
        self.lifecycle.model, self.lifecycle.voice = start.model or "", start.voice or ""
        self.lifecycle.started = time.perf_counter()
        self.lifecycle.open()
        try:
            model = self.ingress.models.get(start.model)
            voice = model.addon.config.voice(start.voice)
        except InputError as error:
            raise Refused.of(error) from None
        self.model = model
        self.variant = model.router.choose(self.ws.headers.get("x-voxstack-client"))
        options = start.options()
        rid = self.lifecycle.request_id
        self.stream = (SsmlTextStream(model.addon, model.frontend, options, rid) if start.text_type == "ssml"
                       else TextStream(model.addon, model.frontend, options, rid, speculate=True))
        self.pack = SAMPLE_FORMATS[start.sample_format]
        await self._send_json({"type": "start", "model": model.name, "variant": self.variant,
                               "voice": voice.name, "sample_rate": model.sample_rate,
                               "sample_format": start.sample_format, "request_id": rid})
        self._begin()

    def _begin(self) -> None:
        """A synthesis of the stream (again, after a clear) and the task that sends its audio."""
        assert self.model is not None and self.stream is not None
        config = self.config
        self.synthesis = ServedTextStream(self.stream, self.model.encoders[self.variant], self.model.tail,
                                          config.lookahead, config.socket_deadline_s, self.lifecycle,
                                          config.socket_pace_ahead_s)
        self.writer = asyncio.create_task(self._write(self.synthesis))

    async def _feed(self, change: Callable[..., None], *args: Any) -> None:
        """Apply a TextStream method, then wake the synthesis (a new one if a speculation was refuted)."""
        assert self.stream is not None and self.synthesis is not None
        stream = self.stream
        try:
            change(stream, *args)
        except InputError as error:
            raise Refused(POLICY, f"text: {error}", "text") from None
        if stream.refuted:  # the held audio of a first sentence that was not one: drop it, start afresh
            await self._stop()
            stream.samples = self.sent
            stream.refuted = False
            self._begin()
        if self.released_at is None and stream.spans and stream.speculative is None:
            self.released_at = time.perf_counter()
        if stream.speculative is None:
            self.unheld.set()
        else:
            self.unheld.clear()
        self.synthesis.wake()

    async def _flush(self) -> None:
        assert self.stream is not None
        await self._feed(type(self.stream).flush)
        self.flushes.append(len(self.stream.spans))

    async def _end(self) -> None:
        await self._feed(type(self.stream).end)

    async def _clear(self) -> None:
        """Barge-in: stop the audio in flight in every stage, drop the buffer, then say so."""
        assert self.stream is not None
        await self._stop()
        self.stream.clear()
        self.unheld.set()
        self.stream.samples = self.sent  # marks time the audio the client got
        self.flushes.clear()
        self._begin()
        await self._send_json({"type": "cleared"})

    async def _stop(self) -> None:
        if self.writer is not None and not self.writer.done():
            self.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.writer
        if self.synthesis is not None:
            await self.synthesis.close()

    async def _write(self, synthesis: ServedTextStream) -> None:
        """Send the synthesis' audio and marks; the socket's end when the stream ends."""
        try:
            async for piece in synthesis:
                if piece is IDLE:
                    await self._flushed(None)
                    continue
                await self.unheld.wait()  # a speculative first sentence's audio waits for its confirmation
                await self._flushed(piece.utterance)
                if piece.marks:
                    await self._send_json({"type": "marks", "marks": [mark.as_json() for mark in piece.marks]})
                await self._send(self.pack(piece.samples))
                self.lifecycle.audio_started()
                self.sent += int(piece.samples.shape[0])
                self._measure(piece.utterance)
            await self._flushed(None)
            await self._send_json({"type": "end", "samples": self.sent,
                                   "seconds": round(self.sent / synthesis.session.sample_rate, 4)})
            self.outcome = "ok"
            self.lifecycle.end(self.sent / synthesis.session.sample_rate)
            await self.ws.close(NORMAL)
        except asyncio.CancelledError:
            raise
        except Refused as refused:
            self.lifecycle.abort("client_gone" if refused.code == POLICY else "error", refused.message)
            await self._refuse(refused)
        except (WebSocketDisconnect, RuntimeError):
            self.outcome = "cancelled"
            self.lifecycle.abort("client_gone")
        except Exception as error:
            self.lifecycle.abort(answer_for(error).reason, f"{type(error).__name__}: {error}")  # type: ignore[arg-type]
            refused = Refused.of(error)
            refused.code = SERVER_ERROR  # the stream is past its start: whatever failed, the socket ends
            await self._refuse(refused)

    def _measure(self, utterance: int) -> None:
        """Metrics as ``/v1/stream`` records them, tagged ``endpoint="ws"``: first audio from the frame that
        released the first sentence; the gap between frames of one utterance (between utterances the
        client's text sets the pace)."""
        now = time.perf_counter()
        tags = {"variant": self.variant, "endpoint": "ws"}
        if not self.first_audio and self.released_at is not None:
            self.first_audio = True
            self.ingress.metrics.first_audio.observe(now - self.released_at, tags=tags)
        elif self.last_frame is not None and self.last_frame[0] == utterance:
            self.ingress.metrics.gap.observe(now - self.last_frame[1], tags=tags)
        self.last_frame = (utterance, now)

    async def _flushed(self, utterance: int | None) -> None:
        """Answer each flush whose utterances are all sent (``None``: everything released is)."""
        while self.flushes and (utterance is None or utterance >= self.flushes[0]):
            self.flushes.pop(0)
            await self._send_json({"type": "flushed"})

    async def _send(self, data: bytes) -> None:
        """One audio frame; a client that has not taken it within ``send_timeout_s`` is closed."""
        try:
            async with self.send_lock:
                await asyncio.wait_for(self.ws.send_bytes(data), self.config.send_timeout_s)
        except TimeoutError:
            raise Refused(POLICY, f"the client took no audio for {self.config.send_timeout_s} s") from None

    async def _send_json(self, record: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.ws.send_text(json.dumps(record, ensure_ascii=False))

    async def _refuse(self, refused: Refused) -> None:
        """Send the JSON error and close with its code (if the client is still there)."""
        if self.ws.application_state == WebSocketState.DISCONNECTED:
            return
        with contextlib.suppress(Exception):
            await self._send_json({"type": "error", **error_body(refused.message, refused.kind, refused.param)})
            await self.ws.close(refused.code, refused.message[:120])
