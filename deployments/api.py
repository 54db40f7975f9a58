"""HTTP request models and JSON errors (OpenAI-shaped: ``{"error": {"message", "type", "param"}}``).

Errors are answered by one handler: ``deployments.errors`` maps each error class to its status.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from blocks.audio_formats import FORMATS
from blocks.errors import ServiceError, first_problem
from blocks.options import SynthesisOptions, VoiceOptions
from deployments.errors import answer_for, param_of


class SpeechRequest(BaseModel):
    """``POST /v1/audio/speech``, as OpenAI's: ``model`` and ``voice`` are an addon's names or OpenAI's."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    model: str
    """The addon to speak with (``GET /v1/models`` lists them), or an OpenAI model name (``tts-1``, ...)
    mapped to one (``GET /v1/audio/voices`` lists the names)."""
    input: str
    """The text to speak (plain text, as OpenAI reads it)."""
    voice: str | None = None
    """The addon's voice, or an OpenAI voice name (``alloy``, ...) mapped to one (``GET /v1/audio/voices``
    lists both; default: the addon's first voice)."""
    instructions: str | None = None
    """Accepted for compatibility; no voice here takes instructions (``GET /v1/audio/voices`` says so per
    voice), and it is ignored."""
    response_format: str = Field(default="mp3", json_schema_extra={"enum": list(FORMATS)})
    """The audio encoding, streamed: ``mp3``, ``opus`` (Ogg), ``aac`` (ADTS), ``flac``, ``wav`` or ``pcm``
    (16-bit little-endian mono at 24 kHz); the ``x-voxstack-sample-rate`` header gives the rate."""
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    """Speaking rate: 2 is twice as fast (the addon's length scale divided by it)."""
    stream_format: Literal["audio", "sse"] = "audio"
    """``sse``: server-sent events carrying base64 audio (``speech.audio.delta``), then ``speech.audio.done``."""


class StreamRequest(VoiceOptions):
    """``POST /v1/stream``: the native endpoint, NDJSON out; the synthesis options are the voice's own."""

    model: str
    """The addon to speak with (``GET /v1/models`` lists them)."""
    input: str
    """The text (or SSML, with ``text_type: "ssml"``) to speak."""
    sample_format: Literal["s16le", "f32le"] = "s16le"
    """Encoding of the base64 audio in each ``audio`` line."""
    text_type: Literal["text", "ssml"] = "text"
    """``ssml``: ``input`` is SSML (the supported subset of Amazon Polly's)."""

    def options(self) -> SynthesisOptions:
        """The synthesis options of this request (the HTTP-only fields left out)."""
        return SynthesisOptions(**self.model_dump(include=set(VoiceOptions.model_fields)))


def error_body(message: str, kind: str, param: str | None) -> dict[str, dict[str, str | None]]:
    return {"error": {"message": message, "type": kind, "param": param}}


def error_response(error: BaseException) -> JSONResponse:
    """The JSON answer for ``error``, its status from the one table (``deployments.errors``); a 429 or 503
    says when to retry."""
    answer = answer_for(error)
    headers = {}
    retry = error.retry_after_s if isinstance(error, ServiceError) else None
    if retry is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry)))
    message = str(error) if answer.status < 500 else f"{type(error).__name__}: {error}"
    return JSONResponse(error_body(message, answer.kind, param_of(error)), answer.status, headers=headers)


async def on_error(_: Request, error: Exception) -> JSONResponse:
    """Any error a route raises, answered as the table says."""
    return error_response(error)


async def on_validation_error(_: Request, error: Exception) -> JSONResponse:
    """Malformed JSON or a bad field: 400 naming the field."""
    assert isinstance(error, RequestValidationError)
    problem = first_problem(error, root="", skip=("body",))
    if problem.kind == "json_invalid":
        return JSONResponse(error_body(f"malformed JSON: {problem.message}", "invalid_request_error", "body"), 400)
    return JSONResponse(error_body(str(problem), "invalid_request_error", problem.field or "body"), 400)


async def on_http_error(_: Request, error: Exception) -> JSONResponse:
    """Starlette's own answers (unknown path, wrong method) in the same JSON error shape."""
    assert isinstance(error, HTTPException)
    return JSONResponse(error_body(str(error.detail), "invalid_request_error", None), error.status_code,
                        headers=dict(error.headers or {}))


def ndjson_line(record: dict[str, Any]) -> bytes:
    """One NDJSON line."""
    return (json.dumps(record, ensure_ascii=False) + "\n").encode()
