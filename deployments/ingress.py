"""The HTTP ingress: OpenAI-compatible speech, native NDJSON streaming, models, health, A/B routing.

No postponed annotations here: FastAPI must see the request models when Serve wraps the routes.
"""


import asyncio
import base64
import json
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Header, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from starlette.exceptions import HTTPException

from blocks.admission import MARGIN, Admission, Ticket
from blocks.errors import InputError
from blocks.options import SynthesisOptions
from blocks.session import Session
from deployments.api import (
    ApiError,
    SpeechRequest,
    StreamRequest,
    error_body,
    ndjson_line,
    on_api_error,
    on_http_error,
    on_validation_error,
)
from deployments.audio import FORMATS, MEDIA_TYPES, SAMPLE_FORMATS, encoder_for
from deployments.metrics import ServiceMetrics
from deployments.models import AddonHandles, Models, ServedModel
from deployments.security import DEFAULT_MAX_BODY_BYTES, AccessMiddleware, AccessPolicy
from deployments.synthesis import Synthesis
from deployments.websocket import Socket

CLIENT_HEADER = "x-voxstack-client"
VARIANT_HEADER = "x-voxstack-variant"
REQUEST_ID_HEADER = "x-voxstack-request-id"

STATIC = Path(__file__).resolve().parent / "static"

app = FastAPI(title="voxstack")
app.add_exception_handler(ApiError, on_api_error)
app.add_exception_handler(RequestValidationError, on_validation_error)
app.add_exception_handler(HTTPException, on_http_error)
app.mount("/static", StaticFiles(directory=STATIC), name="static")
ACCESS = AccessPolicy()
app.add_middleware(AccessMiddleware, policy=ACCESS)  # key, body limit, CORS: security.py


class IngressConfig(BaseModel):
    """The ingress ``user_config``: applied live by ``reconfigure``."""

    model_config = ConfigDict(extra="forbid")
    weights: dict[str, float] = Field(default_factory=dict)
    """Encoder deployment -> traffic weight, split per addon (an addon none names: all to its own encoders)."""
    max_streams: int = Field(default=16, ge=1)
    """Most streams one replica holds producing at once, whatever its measured capacity."""
    admission_margin: float = Field(default=MARGIN, gt=0.0, le=1.0)
    """Share of the measured capacity (audio seconds per second) that producing streams may take; the
    rest is room for a new stream's first utterance. A stream past it answers 429 with Retry-After."""
    queue_s: float = Field(default=0.0, ge=0.0, le=30.0)
    """How long a request may wait for admission before the 429 (0: refused at once)."""
    retry_after_s: int = Field(default=1, ge=0)
    """Retry-After of a 503, and of a 429 before any stream has been measured."""
    deadline_s: float = Field(default=300.0, gt=0)
    """Longest a request may take, start to end."""
    hold_start: bool = True
    """While other streams are producing, a stream's first audio leaves once its second piece is queued:
    under load the second (longer) chunk takes more than the first one plays, and playback that starts
    at the first byte would stall. Costs first audio under load, never alone."""
    lookahead: int = Field(default=4, ge=1)
    """Chunks the producers may run ahead of the response body."""
    pace_ahead_s: float | None = Field(default=None, gt=0)
    """Audio seconds a stream may run ahead of real-time playback (None: as fast as it can)."""
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024)
    """Larger request bodies answer 413."""
    cors_origins: list[str] = Field(default_factory=list)
    """Origins allowed by CORS (empty: CORS off); ``$VOXSTACK_CORS_ORIGINS`` adds more."""
    max_sockets: int = Field(default=16, ge=1)
    """``/v1/stream/ws`` sockets open at once on one replica; more are closed with 1013."""
    max_frame_bytes: int = Field(default=64 * 1024, ge=1024)
    """Largest client frame on a socket; a larger one closes it with 1009."""
    socket_deadline_s: float = Field(default=3600.0, gt=0)
    """Longest a socket may stay open."""
    socket_pace_ahead_s: float | None = Field(default=30.0, gt=0)
    """Audio seconds a socket may run ahead of real-time playback: a client that never reads is paced."""
    send_timeout_s: float = Field(default=10.0, gt=0)
    """A socket whose client takes no audio frame for this long is closed with 1008."""


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=32)
@serve.ingress(app)
class Ingress:
    """Validates requests, picks the addon (``model``) and its encoder variant, streams its stages' audio."""

    def __init__(self, addons: dict[str, AddonHandles]) -> None:
        self.models = Models(addons)
        self.metrics = ServiceMetrics()
        self.admission = Admission()
        self.sockets: set[Socket] = set()
        self.reconfigure({})

    def reconfigure(self, config: dict[str, Any]) -> None:
        self.config = IngressConfig.model_validate(config or {})
        self.admission.margin = self.config.admission_margin
        self.admission.fallback = self.config.max_streams
        ACCESS.configure(self.config.max_body_bytes, self.config.cors_origins)
        self.models.route(self.config.weights)

    @app.get("/", include_in_schema=False)
    async def demo(self) -> FileResponse:
        """The demo page: type, speak, hear it stream."""
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz")
    async def healthz(self) -> JSONResponse:
        """200 once every stage answers (each warms up before it goes live), else 503."""
        stages = self.models.stages
        names = list(stages)
        try:
            async with asyncio.timeout(5):
                await asyncio.gather(*(stages[n].ready.remote() for n in names))
        except Exception as error:
            return JSONResponse({"status": "starting", "detail": str(error)}, 503)
        return JSONResponse({"status": "ready", "stages": names})

    @app.get("/v1/models")
    async def models(self) -> dict[str, Any]:
        """Every served addon with its voices, sample rate and encoder variants."""
        return {"object": "list", "data": [model.describe() for model in self.models.by_name.values()]}

    @app.get("/v1/route")
    async def route(self, model: str | None = None,
                    x_voxstack_client: str | None = Header(default=None)) -> JSONResponse:
        """The variant of ``model`` (default: the first addon) a client would be served, without synthesis."""
        variant = self.models.get(model).router.choose(x_voxstack_client)
        return JSONResponse({"variant": variant}, headers={VARIANT_HEADER: variant})

    @app.post("/v1/audio/speech")
    async def speech(self, body: SpeechRequest,
                     x_voxstack_client: str | None = Header(default=None)) -> StreamingResponse:
        if body.response_format not in FORMATS:
            raise ApiError(400, f"response_format {body.response_format!r} is not supported; "
                                f"use one of {list(FORMATS)}", "response_format")
        model = self.models.get(body.model)
        options = SynthesisOptions(length_scale=model.default("length_scale") / body.speed, marks=())
        synthesis, variant, started = await self._open(model, body.voice, body.input, options, x_voxstack_client)
        encoder = encoder_for(body.response_format, model.sample_rate)
        sse = body.stream_format == "sse"

        def frame(data: bytes, done: bool = False) -> bytes:
            if not sse:
                return data
            event = {"type": "speech.audio.done", "usage": {"input_tokens": 0, "output_tokens": 0,
                                                             "total_tokens": 0}} if done else \
                {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()}
            return f"data: {json.dumps(event)}\n\n".encode()

        async def body_bytes() -> AsyncIterator[bytes]:
            async for piece in self._pieces(synthesis, variant, "speech", started, raw=not sse):
                if isinstance(piece, dict):  # an error after the stream began (sse only)
                    yield f"data: {json.dumps(piece)}\n\n".encode()
                    return
                if data := encoder.encode(piece.samples):
                    yield frame(data)
            if tail := encoder.finish():
                yield frame(tail)
            if sse:
                yield frame(b"", done=True)

        media = "text/event-stream" if sse else MEDIA_TYPES[body.response_format]
        return StreamingResponse(body_bytes(), media_type=media, headers=self._headers(synthesis, variant))

    @app.post("/v1/stream")
    async def stream(self, body: StreamRequest,
                     x_voxstack_client: str | None = Header(default=None)) -> StreamingResponse:
        model = self.models.get(body.model)
        synthesis, variant, started = await self._open(model, body.voice, body.input, body.options(),
                                                       x_voxstack_client, body.text_type)
        pack = SAMPLE_FORMATS[body.sample_format]
        rate = model.sample_rate

        async def lines() -> AsyncIterator[bytes]:
            # each piece's lines leave in one write, the start line with the first piece's
            start = {"type": "start", "model": body.model, "variant": variant, "sample_rate": rate,
                     "sample_format": body.sample_format, "utterances": len(synthesis.session.spans)}
            if (document := synthesis.session.document) is not None and document.notes:
                start["notes"] = document.notes  # e.g. xml:lang accepted and ignored
            out = ndjson_line(start)
            async for piece in self._pieces(synthesis, variant, "stream", started, raw=False):
                if isinstance(piece, dict):
                    yield out + ndjson_line(piece)
                    return
                if piece.marks:
                    out += ndjson_line({"type": "marks", "marks": piece.marks})
                yield out + ndjson_line({"type": "audio", "offset": piece.offset,
                                         "samples": int(piece.samples.shape[0]), "utterance": piece.utterance,
                                         "audio": base64.b64encode(pack(piece.samples)).decode()})
                out = b""
            yield out + ndjson_line({"type": "end", "samples": synthesis.samples,
                                     "seconds": round(synthesis.seconds, 4)})

        return StreamingResponse(lines(), media_type="application/x-ndjson", headers=self._headers(synthesis, variant))

    @app.websocket("/v1/stream/ws")
    async def stream_ws(self, websocket: WebSocket) -> None:
        """Text streamed in, audio out as sentences complete (protocol: deployments/websocket.py)."""
        await Socket(self, websocket).run()

    async def _open(self, model: ServedModel, voice: str, text: str, options: SynthesisOptions,
                    client: str | None, text_type: str = "text") -> tuple[Synthesis, str, float]:
        """Validate, admit, and start a request; returns once its first chunk exists (OpenAI's
        endpoint always reads plain text: SSML only where ``text_type`` asks for it)."""
        started = time.perf_counter()
        config = model.addon.config
        if voice not in config.voices:
            raise ApiError(400, f"voice {voice!r} is not one of {config.voices}", "voice")
        try:
            session = Session(model.addon, model.frontend, text, options, text_type=text_type)
        except InputError as error:
            raise ApiError(400, f"input: {error}", "input") from None
        ticket = await self._admit()
        if self._hold():  # the stages owe its first two chunks by its arrival
            session.clock.lead = 2
        variant = model.router.choose(client)
        synthesis = Synthesis(session, model.encoders[variant], model.tail, self.config.lookahead,
                              self.config.deadline_s, self.config.pace_ahead_s,
                              on_end=lambda completed: self.admission.release(ticket, session.seconds, completed))
        try:
            first = await synthesis.queue.get()
        except BaseException:
            await synthesis.close()
            raise
        if isinstance(first, BaseException):
            await synthesis.close()
            self.metrics.outcome(variant, "open", "failed")
            if isinstance(first, InputError):
                raise ApiError(400, f"input: {first}", "input")
            raise ApiError(503, f"synthesis failed: {type(first).__name__}: {first}", None, "server_error",
                           {"Retry-After": str(self.config.retry_after_s)})
        synthesis.first = first
        if session.clock.lead > 1 or self._hold():
            await synthesis.second_queued()
        return synthesis, variant, started

    @staticmethod
    def _headers(synthesis: Synthesis, variant: str) -> dict[str, str]:
        """The variant that serves the request and the request id its stages log."""
        return {VARIANT_HEADER: variant, REQUEST_ID_HEADER: synthesis.session.request_id}

    def _hold(self) -> bool:
        """Whether a stream's first audio waits for its second piece: other streams are producing."""
        return self.config.hold_start and self.admission.active > 1

    def _active(self) -> int:
        """Streams whose producer still runs (one whose body never started ends at its deadline)."""
        return self.admission.active

    async def _admit(self) -> Ticket:
        """A place among the producing streams, waiting up to ``queue_s``; else a 429 with Retry-After."""
        waited_until = time.monotonic() + self.config.queue_s
        while (ticket := self.admission.admit(self.config.max_streams)) is None:
            if time.monotonic() >= waited_until:
                limit = self.admission.limit(self.config.max_streams)
                retry = self.admission.retry_after() if self.admission.capacity else self.config.retry_after_s
                raise ApiError(429, f"busy: {self.admission.active} streams producing, as many as the measured "
                                    f"capacity holds ({limit}); retry later", None, "rate_limit_error",
                               {"Retry-After": str(max(1, math.ceil(retry)))})
            await asyncio.sleep(0.05)
        return ticket

    async def _pieces(self, synthesis: Synthesis, variant: str, endpoint: str, started: float,
                      raw: bool) -> AsyncIterator[Any]:
        """The request's pieces with metrics; a failure mid-stream aborts a raw body or yields an error."""
        tags = {"variant": variant, "endpoint": endpoint}
        outcome = "failed"
        previous = None
        try:
            pieces = synthesis.__aiter__()
            piece = synthesis.first
            while piece is not None:
                now = time.perf_counter()
                if previous is None:
                    self.metrics.first_audio.observe(now - started, tags=tags)
                else:
                    self.metrics.gap.observe(now - previous, tags=tags)
                previous = now
                yield piece
                piece = await anext(pieces, None)
            outcome = "ok"
            if synthesis.seconds > 0:
                self.metrics.rtf.observe((time.perf_counter() - started) / synthesis.seconds, tags=tags)
        except (asyncio.CancelledError, GeneratorExit):
            outcome = "cancelled"
            raise
        except Exception as error:
            if raw:
                raise  # abort the chunked body: the client sees an incomplete transfer
            yield {"type": "error", "error": error_body(f"{type(error).__name__}: {error}", "server_error",
                                                         None)["error"]}
        finally:
            self.metrics.outcome(variant, endpoint, outcome)
            await synthesis.close()
