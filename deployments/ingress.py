"""The HTTP ingress: OpenAI-compatible speech, native NDJSON streaming, models, health, A/B routing.

No postponed annotations here: FastAPI must see the request models when Serve wraps the routes.
"""


import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Header, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from ray import serve
from starlette.exceptions import HTTPException

from blocks.admission import Admission, Key, Ticket
from blocks.audio_formats import FORMATS, MEDIA_TYPES, ffmpeg_single_thread, format_rate
from blocks.errors import AddonError, Busy, InputError, ServiceError, StackError
from blocks.options import SynthesisOptions, options_from
from blocks.session import AudioChunk, Session
from deployments.api import (
    SpeechRequest,
    StreamRequest,
    error_body,
    ndjson_line,
    on_error,
    on_http_error,
    on_validation_error,
)
from deployments.audio import SAMPLE_FORMATS, StreamEncoder
from deployments.errors import answer_for
from deployments.lifecycle import REQUEST_ID_HEADER, Lifecycle, log, request_id
from deployments.metrics import ServiceMetrics
from deployments.openai_names import Names
from deployments.security import AccessMiddleware, AccessPolicy
from deployments.served_addons import AddonHandles, ServedAddon, ServedAddons
from deployments.served_stream import ServedStream
from deployments.settings import IngressConfig
from deployments.websocket import Socket

CLIENT_HEADER = "x-voxstack-client"
VARIANT_HEADER = "x-voxstack-variant"
MODEL_HEADER = "x-voxstack-model"
VOICE_HEADER = "x-voxstack-voice"
RATE_HEADER = "x-voxstack-sample-rate"
HEALTH_TIMEOUT_S = 5.0
PROBE_TEXT = "Warm up."

REFUSALS = {"steady": "the machine is fully planned", "burst": "a start now would drain a playing stream's buffer",
            "cap": "max_streams are producing"}
"""Why a stream was refused, by the admission test's reason."""

STATIC = Path(__file__).resolve().parent / "static"

app = FastAPI(title="voxstack", description="Streaming text to speech: several models, one service.")
app.add_exception_handler(Exception, on_error)
app.add_exception_handler(RequestValidationError, on_validation_error)
app.add_exception_handler(HTTPException, on_http_error)
app.mount("/static", StaticFiles(directory=STATIC), name="static")
ACCESS = AccessPolicy()
app.add_middleware(AccessMiddleware, policy=ACCESS)  # key, body limit, CORS: security.py


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=32)
@serve.ingress(app)
class Ingress:
    """Validates requests, picks the addon (``model``) and its encoder variant, streams its stages' audio."""

    def __init__(self, addons: dict[str, AddonHandles]) -> None:
        self.models = ServedAddons(addons)
        self.metrics = ServiceMetrics()
        self.admission = Admission()
        self.sockets: set[Socket] = set()
        self.streams: set[ServedStream] = set()
        """Every stream this replica is producing (closed if the replica stops)."""
        self.broken: dict[str, str] = {}
        """Addon -> '' once a short request went through all its stages, else the addon error it met."""
        ffmpeg_single_thread()  # no idle FFmpeg threads per open encoder
        self.reconfigure({})

    def reconfigure(self, config: dict[str, Any]) -> None:
        parsed = IngressConfig.model_validate(config or {})
        self.names = Names(self.models, parsed.openai)
        self.config = parsed
        self.admission.configure(self.config.admission_margin, self.config.max_streams,
                                 self.config.measured_admission)
        ACCESS.configure(self.config.max_body_bytes, self.config.cors_origins)
        self.models.route(self.config.weights)

    async def __del__(self) -> None:
        """Serve is stopping this replica: every stream it still produces ends, each logged with its reason."""
        for stream in list(self.streams):
            await stream.close("shutdown", "the replica is stopping (the service's end, or a rollout's drain ran out)")
        for socket in list(self.sockets):
            await socket.shutdown()

    @app.get("/", include_in_schema=False)
    async def demo(self) -> FileResponse:
        """The demo page: type, speak, hear it stream."""
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz")
    async def healthz(self) -> JSONResponse:
        """200 once every stage answers and a short request has gone through each addon's stages; 503 while
        starting; 500 naming the addon and the error when that request met a broken addon (a block reading a
        tensor it did not declare, say): waiting will not mend it."""
        stages = self.models.stages
        names = list(stages)
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                await asyncio.gather(*(stages[n].ready.remote() for n in names))
        except Exception as error:
            return JSONResponse({"status": "starting", "detail": str(error)}, 503)
        for model in self.models.by_name.values():
            if model.name not in self.broken:
                await self._probe(model)
        if failed := {name: error for name, error in self.broken.items() if error}:
            return JSONResponse({"status": "failed", "detail": failed}, 500)
        return JSONResponse({"status": "ready", "stages": names})

    async def _probe(self, model: ServedAddon) -> None:
        """A short request through every stage of ``model``, once: a broken addon is kept in ``broken``; any
        other failure (a fault drill, a replica restarting) leaves it to be probed again."""
        session = Session(model.addon, model.frontend, PROBE_TEXT, SynthesisOptions(noise_scale=0.0, noise_w=0.0))
        lifecycle = Lifecycle(session.request_id, "probe", model.name)
        stream = ServedStream(session, model.encoders[model.default_variant], model.tail, self.config.lookahead,
                              self.config.deadline_s, lifecycle)
        try:
            async for _ in stream:
                pass
            self.broken[model.name] = ""
        except (AddonError, StackError) as error:
            self.broken[model.name] = f"{type(error).__name__}: {error}"
        except Exception as error:
            log.warning("probe of %s failed, to be tried again: %s: %s", model.name, type(error).__name__, error)
        finally:
            await stream.close()

    @app.get("/v1/models")
    async def models(self) -> dict[str, Any]:
        """Every served addon with its voices, sample rate and encoder variants."""
        return {"object": "list", "data": [model.describe() for model in self.models.by_name.values()]}

    @app.get("/v1/audio/voices")
    async def voices(self, model: str | None = None) -> dict[str, Any]:
        """Every voice of every served addon (of ``model`` only, when given; an OpenAI model name too): name,
        addon, language; and OpenAI's model and voice names with what each one is."""
        models = [self.names.model(model)] if model is not None else list(self.models.by_name.values())
        return {"voices": [voice for served in models for voice in served.voices()],
                "aliases": self.names.aliases(models)}

    @app.get("/v1/admission")
    async def admission_state(self) -> dict[str, Any]:
        """This replica's admission: the learned margin, each addon and voice's measured cost per audio second
        and held start audio, the streams held with their buffers, and the latest decisions (newest last)."""
        return {**self.admission.state(), "decisions": list(self.admission.decisions)}

    @app.get("/v1/route")
    async def route(self, model: str | None = None,
                    x_voxstack_client: str | None = Header(default=None)) -> JSONResponse:
        """The variant of ``model`` (default: the first addon) a client would be served, without synthesis."""
        variant = self.models.get(model).router.choose(x_voxstack_client)
        return JSONResponse({"variant": variant}, headers={VARIANT_HEADER: variant})

    @app.post("/v1/audio/speech")
    async def speech(self, body: SpeechRequest, x_voxstack_client: str | None = Header(default=None),
                     x_request_id: str | None = Header(default=None)) -> StreamingResponse:
        """OpenAI's speech endpoint: the audio, encoded chunk by chunk in the ``response_format`` asked for.
        ``model`` and ``voice`` take OpenAI's names too; the response says what served it."""
        lifecycle = Lifecycle(request_id(x_request_id), "speech", body.model, body.voice or "")
        lifecycle.open()
        with lifecycle.failing():
            if body.response_format not in FORMATS:
                raise InputError(f"response_format {body.response_format!r} is not supported; use one of "
                                 f"{list(FORMATS)}", "response_format")
            model = self.names.model(body.model)
            voice = self.names.voice(model, body.voice).name
            try:
                options = options_from(length_scale=model.addon.config.defaults.length_scale / body.speed, marks=(),
                                       voice=voice)
            except InputError as error:
                raise InputError(f"speed {body.speed} gives {error}", "speed") from None
            stream, variant = await self._open(lifecycle, model, body.input, options, x_voxstack_client)
        sse = body.stream_format == "sse"

        def frame(data: bytes, done: bool = False) -> bytes:
            if not sse:
                return data
            event = {"type": "speech.audio.done", "usage": {"input_tokens": 0, "output_tokens": 0,
                                                             "total_tokens": 0}} if done else \
                {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()}
            return f"data: {json.dumps(event)}\n\n".encode()

        async def body_bytes() -> AsyncIterator[bytes]:
            encoder = None  # made here, so that the body always closes it
            try:
                encoder = StreamEncoder(body.response_format, model.sample_rate)
                async for piece in self._pieces(stream, variant, "speech", raw=not sse):
                    if isinstance(piece, dict):  # an error after the stream began (sse only)
                        yield f"data: {json.dumps(piece)}\n\n".encode()
                        return
                    if data := await encoder.encode(piece.samples):
                        yield frame(data)
                if tail := await encoder.finish():
                    yield frame(tail)
                if sse:
                    yield frame(b"", done=True)
            finally:  # a client gone mid-stream: the encoder stops too
                if encoder is not None:
                    encoder.close()
                await stream.close()

        media = "text/event-stream" if sse else MEDIA_TYPES[body.response_format]
        headers = {VARIANT_HEADER: variant, MODEL_HEADER: model.name, VOICE_HEADER: voice,
                   RATE_HEADER: str(format_rate(body.response_format, model.sample_rate))}
        return StreamingResponse(body_bytes(), media_type=media, headers=headers)

    @app.post("/v1/stream")
    async def stream(self, body: StreamRequest, x_voxstack_client: str | None = Header(default=None),
                     x_request_id: str | None = Header(default=None)) -> StreamingResponse:
        """The native endpoint: NDJSON lines of audio and speech marks as they are made."""
        lifecycle = Lifecycle(request_id(x_request_id), "stream", body.model, body.voice or "")
        lifecycle.open()
        with lifecycle.failing():
            model = self.models.get(body.model)
            stream, variant = await self._open(lifecycle, model, body.input, body.options(),
                                               x_voxstack_client, body.text_type)
        pack = SAMPLE_FORMATS[body.sample_format]
        rate = model.sample_rate

        async def lines() -> AsyncIterator[bytes]:
            # each piece's lines leave in one write, the start line with the first piece's
            start = {"type": "start", "model": body.model, "voice": stream.session.voice.name, "variant": variant,
                     "sample_rate": rate,
                     "sample_format": body.sample_format, "utterances": len(stream.session.spans),
                     "request_id": lifecycle.request_id}
            out = ndjson_line(start)
            async for piece in self._pieces(stream, variant, "stream", raw=False):
                if isinstance(piece, dict):
                    yield out + ndjson_line(piece)
                    return
                if piece.marks:
                    out += ndjson_line({"type": "marks", "marks": [mark.as_json() for mark in piece.marks]})
                yield out + ndjson_line({"type": "audio", "offset": piece.offset,
                                         "samples": int(piece.samples.shape[0]), "utterance": piece.utterance,
                                         "audio": base64.b64encode(pack(piece.samples)).decode()})
                out = b""
            yield out + ndjson_line({"type": "end", "samples": stream.samples, "seconds": round(stream.seconds, 4)})

        return StreamingResponse(lines(), media_type="application/x-ndjson", headers={VARIANT_HEADER: variant})

    @app.websocket("/v1/stream/ws")
    async def stream_ws(self, websocket: WebSocket) -> None:
        """Text streamed in, audio out as sentences complete (protocol: deployments/websocket.py)."""
        await Socket(self, websocket, request_id(websocket.headers.get(REQUEST_ID_HEADER))).run()

    async def _open(self, lifecycle: Lifecycle, model: ServedAddon, text: str,
                    options: SynthesisOptions, client: str | None, text_type: str = "text"
                    ) -> tuple[ServedStream, str]:
        """Validate, admit, and start a request; returns once its first chunk exists (OpenAI's
        endpoint always reads plain text: SSML only where ``text_type`` asks for it)."""
        voice = model.addon.config.voice(options.voice)  # an unknown voice is refused naming the voices
        ticket = await self._admit((model.name, voice.name), lifecycle.request_id)  # a refusal costs no planning
        try:
            session = Session(model.addon, model.frontend, text, options, lifecycle.request_id, text_type=text_type)
        except BaseException as error:
            self.admission.release(ticket, 0.0, completed=False)
            if isinstance(error, InputError):
                raise InputError(f"input: {error}", error.param or "input") from None
            raise
        variant = model.router.choose(client)
        if self._hold():  # the stages owe its first two chunks by its arrival
            session.clock.lead = 2

        def ended(completed: bool) -> None:
            self.admission.release(ticket, session.seconds, completed, stream.least_ahead)
            self.metrics.admission_state(self.admission)

        stream = ServedStream(session, model.encoders[variant], model.tail, self.config.lookahead,
                              self.config.deadline_s, lifecycle, self.config.pace_ahead_s, on_end=ended,
                              on_thin=lambda: self.admission.near_stall(ticket))
        self.streams.add(stream)
        stream.task.add_done_callback(lambda _: self.streams.discard(stream))
        try:
            first = await stream.queue.get()
        except BaseException:
            await stream.close()
            raise
        if isinstance(first, BaseException):
            await stream.close()
            self.metrics.outcome(variant, "open", "failed")
            if isinstance(first, InputError):
                raise InputError(f"input: {first}", first.param or "input")
            raise ServiceError(f"synthesis failed: {type(first).__name__}: {first}", self.config.retry_after_s)
        stream.first = first
        if session.clock.lead > 1 or self._hold():
            await stream.second_queued()
        stream.play()
        self.admission.playing(ticket, session.seconds, stream.unplayed)
        return stream, variant

    def _hold(self) -> bool:
        """Whether a stream's first audio waits for its second piece: other streams are producing."""
        return self.config.hold_start and self.admission.active > 1

    async def _admit(self, key: Key, request_id: str) -> Ticket:
        """A place among the producing streams, waiting up to ``queue_s`` for the admission test to pass; else
        Busy (429 with Retry-After). The decision is logged and kept for ``GET /v1/admission``."""
        arrived = time.monotonic()
        while True:
            ticket, verdict = self.admission.admit(key, request_id, self.config.max_streams)
            waited = time.monotonic() - arrived
            if ticket is not None or waited >= self.config.queue_s:
                break
            await asyncio.sleep(0.05)
        record = self.admission.note(key, request_id, verdict, waited)
        self.metrics.admission(record, self.admission)
        log.info("admission %s", json.dumps(record))
        if ticket is None:
            raise Busy(f"busy: {REFUSALS[verdict.reason]} ({self.admission.active} streams producing); retry later",
                       self.admission.retry_after(verdict))
        return ticket

    async def _pieces(self, stream: ServedStream, variant: str, endpoint: str, raw: bool
                      ) -> AsyncIterator[AudioChunk | dict[str, Any]]:
        """The request's pieces with metrics; a failure mid-stream aborts a raw body or yields an error."""
        tags = {"variant": variant, "endpoint": endpoint}
        outcome = "failed"
        previous = None
        lifecycle = stream.lifecycle
        try:
            pieces = stream.__aiter__()
            piece = stream.first
            while piece is not None:
                now = time.perf_counter()
                if previous is None:
                    self.metrics.first_audio.observe(lifecycle.audio_started(), tags=tags)
                else:
                    self.metrics.gap.observe(now - previous, tags=tags)
                previous = now
                yield piece
                piece = await anext(pieces, None)
            outcome = "ok"
            lifecycle.end(stream.seconds)
            if stream.seconds > 0:
                self.metrics.rtf.observe((time.perf_counter() - lifecycle.started) / stream.seconds, tags=tags)
        except (asyncio.CancelledError, GeneratorExit):
            outcome = "cancelled"
            await stream.close("client_gone")
            raise
        except Exception as error:
            await stream.close("error", f"{type(error).__name__}: {error}")
            if raw:
                raise  # abort the chunked body: the client sees an incomplete transfer
            answer = answer_for(error)
            yield {"type": "error", "error": error_body(f"{type(error).__name__}: {error}", answer.kind, None)["error"]}
        finally:
            self.metrics.outcome(variant, endpoint, outcome)
            await stream.close()
