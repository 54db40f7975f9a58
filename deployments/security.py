"""Access control for the ingress: optional API key, request body limit, opt-in CORS (one ASGI middleware).

* **API key**: read from ``$VOXSTACK_API_KEY`` or the file named by ``$VOXSTACK_API_KEY_FILE`` in the
  replica's environment (never from a config or the command line). When set, every request but the public
  paths (``/healthz``, the demo page and its static files, CORS preflights) needs
  ``Authorization: Bearer <key>``; others get 401 with a JSON error.
* **Body limit**: bodies over ``max_body_bytes`` get 413 with a JSON error, before the app reads them.
* **CORS**: off unless origins are given (``cors_origins`` in the ingress ``user_config``, or
  ``$VOXSTACK_CORS_ORIGINS``, comma-separated).
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.middleware.cors import CORSMiddleware

from blocks.errors import ConfigError
from deployments.settings import DEFAULT_MAX_BODY_BYTES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KEY_ENV = "VOXSTACK_API_KEY"
KEY_FILE_ENV = "VOXSTACK_API_KEY_FILE"
CORS_ENV = "VOXSTACK_CORS_ORIGINS"
PUBLIC_PATHS = frozenset({"/healthz", "/"})
PUBLIC_PREFIXES = ("/static/",)
SUBPROTOCOL_PREFIX = "bearer."
"""A WebSocket client that cannot set headers (a browser) offers the subprotocol ``bearer.<key>``."""


def load_api_key(environ: MutableMapping[str, str] | None = None) -> str | None:
    """The API key from the environment (``$VOXSTACK_API_KEY``, else the file ``$VOXSTACK_API_KEY_FILE``)."""
    env = os.environ if environ is None else environ
    if key := env.get(KEY_ENV, "").strip():
        return key
    if path := env.get(KEY_FILE_ENV, "").strip():
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError(f"{KEY_FILE_ENV}: cannot read the API key file ({error.strerror})") from None
        if not key:
            raise ConfigError(f"{KEY_FILE_ENV}: the API key file is empty")
        return key
    return None


@dataclass
class AccessPolicy:
    """What the middleware enforces; the ingress replaces its fields on ``reconfigure``."""

    api_key: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    cors_origins: list[str] = field(default_factory=list)

    def configure(self, max_body_bytes: int, cors_origins: list[str]) -> None:
        """Apply the ingress config plus the environment (key, extra CORS origins)."""
        self.api_key = load_api_key()
        self.max_body_bytes = max_body_bytes
        extra = [o.strip() for o in os.environ.get(CORS_ENV, "").split(",") if o.strip()]
        self.cors_origins = sorted({*cors_origins, *extra})


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


async def _json_error(send: Send, status: int, message: str, kind: str, param: str | None,
                      headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": {"message": message, "type": kind, "param": param}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class AccessMiddleware:
    """CORS (when origins are set), then the API key, then the body limit, in front of the app."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy
        self._cors: tuple[tuple[str, ...], ASGIApp] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._socket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origins = tuple(self.policy.cors_origins)
        if not origins:
            await self._guarded(scope, receive, send)
            return
        if self._cors is None or self._cors[0] != origins:
            cors = CORSMiddleware(self._guarded, allow_origins=list(origins), allow_methods=["GET", "POST"],
                                  allow_headers=["authorization", "content-type", "x-voxstack-client"],
                                  expose_headers=["x-voxstack-variant", "retry-after"])
            self._cors = (origins, cors)
        await self._cors[1](scope, receive, send)

    def _refusal(self, scope: Scope) -> str | None:
        """Why the request lacks the API key (None: it may pass)."""
        key = self.policy.api_key
        if key is None or is_public(scope.get("path", "")):
            return None
        given = _header(scope, b"authorization") or ""
        scheme, _, token = given.partition(" ")
        if scope["type"] == "websocket" and not given:  # browsers cannot set headers on a WebSocket
            offered = [p for p in scope.get("subprotocols") or [] if p.startswith(SUBPROTOCOL_PREFIX)]
            scheme, token, given = "bearer", offered[0][len(SUBPROTOCOL_PREFIX):] if offered else "", "".join(offered)
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode()):
            return None
        return "missing API key" if not given else "invalid API key"

    async def _socket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket without the key is accepted only to hear a JSON error and close with 1008."""
        if (refusal := self._refusal(scope)) is None:
            await self.app(scope, receive, send)
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        message = f"{refusal}: send 'Authorization: Bearer <key>' or the subprotocol '{SUBPROTOCOL_PREFIX}<key>'"
        body = {"type": "error", "error": {"message": message, "type": "authentication_error", "param": None}}
        await send({"type": "websocket.send", "text": json.dumps(body)})
        await send({"type": "websocket.close", "code": 1008, "reason": refusal})

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (refusal := self._refusal(scope)) is not None:
            await _json_error(send, 401, f"{refusal}: send 'Authorization: Bearer <key>'",
                              "authentication_error", None, {"WWW-Authenticate": "Bearer"})
            return
        await self._limited(scope, receive, send)

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the body (up to the limit) before the app sees it; 413 past the limit."""
        limit = self.policy.max_body_bytes
        too_large = f"request body over the limit of {limit} bytes"
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            if length.isdigit():
                await _json_error(send, 413, too_large, "invalid_request_error", "body")
            else:
                await _json_error(send, 400, "invalid Content-Length", "invalid_request_error", "body")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before sending its body
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await _json_error(send, 413, too_large, "invalid_request_error", "body")
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
