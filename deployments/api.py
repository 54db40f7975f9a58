"""HTTP request models and JSON errors (OpenAI-shaped: ``{"error": {"message", "type", "param"}}``)."""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from blocks.options import SynthesisOptions, VoiceOptions


class SpeechRequest(BaseModel):
    """``POST /v1/audio/speech``, as OpenAI's (``model`` is the addon name)."""

    model_config = ConfigDict(extra="forbid")
    model: str
    input: str
    voice: str = "default"
    instructions: str | None = None
    """Accepted for compatibility; the voices here take no instructions."""
    response_format: str = "wav"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] = "audio"


class StreamRequest(VoiceOptions):
    """``POST /v1/stream``: the native endpoint, NDJSON out; the synthesis options are the voice's own."""

    model: str
    input: str
    voice: str = "default"
    sample_format: Literal["s16le", "f32le"] = "s16le"
    text_type: Literal["text", "ssml"] = "text"
    """``ssml``: ``input`` is SSML (the supported subset of Amazon Polly's; README, "SSML")."""

    def options(self) -> SynthesisOptions:
        """The synthesis options of this request (the HTTP-only fields left out)."""
        return SynthesisOptions(**self.model_dump(include=set(VoiceOptions.model_fields)))


class ApiError(Exception):
    """An error answered as JSON with ``status`` (4xx for the client's mistakes)."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 kind: str = "invalid_request_error", headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.kind = kind
        self.headers = headers or {}


def error_body(message: str, kind: str, param: str | None) -> dict[str, dict[str, str | None]]:
    return {"error": {"message": message, "type": kind, "param": param}}


async def on_api_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return JSONResponse(error_body(error.message, error.kind, error.param), error.status, headers=error.headers)


async def on_validation_error(_: Request, error: Exception) -> JSONResponse:
    """Malformed JSON or a bad field: 400 naming the field."""
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    if first.get("type") == "json_invalid":
        return JSONResponse(error_body(f"malformed JSON: {first.get('msg')}", "invalid_request_error", "body"), 400)
    param = ".".join(loc) or "body"
    message = f"{param}: {first.get('msg')}"
    return JSONResponse(error_body(message, "invalid_request_error", param), 400)


async def on_http_error(_: Request, error: Exception) -> JSONResponse:
    """Starlette's own answers (unknown path, wrong method) in the same JSON error shape."""
    assert isinstance(error, HTTPException)
    return JSONResponse(error_body(str(error.detail), "invalid_request_error", None), error.status_code,
                        headers=dict(error.headers or {}))


def ndjson_line(record: dict[str, Any]) -> bytes:
    """One NDJSON line."""
    return (json.dumps(record, ensure_ascii=False) + "\n").encode()
