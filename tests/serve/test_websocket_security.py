"""The API key on ``/v1/stream/ws``: by header, or by the ``bearer.<key>`` subprotocol browsers can send."""

from __future__ import annotations

import contextlib
import json

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.serve.conftest import Service
from tests.serve.test_security import KEY, locked  # noqa: F401 - the service with a key
from tests.serve.test_websocket import received


def _open(service: Service, **options: object) -> list:
    url = service.url.replace("http://", "ws://") + "/v1/stream/ws"
    with connect(url, proxy=None, compression=None, open_timeout=30, **options) as ws:  # type: ignore[arg-type]
        with contextlib.suppress(ConnectionClosed):  # a refused socket may close before these are sent
            ws.send(json.dumps({"type": "start", "model": "piper-joe"}))
            ws.send(json.dumps({"type": "text", "text": "Key checked."}))
            ws.send(json.dumps({"type": "end"}))
        return list(received(ws, 60))


def test_a_socket_without_the_key_hears_an_error_and_closes_1008(locked: Service) -> None:  # noqa: F811
    for options in ({}, {"additional_headers": {"authorization": "Bearer wrong"}}, {"subprotocols": ["bearer.no"]}):
        messages, code = _open(locked, **options)
        assert code == 1008, options
        assert messages[0]["type"] == "error" and messages[0]["error"]["type"] == "authentication_error"


def test_the_key_by_header_or_subprotocol_opens_the_socket(locked: Service) -> None:  # noqa: F811
    for options in ({"additional_headers": {"authorization": f"Bearer {KEY}"}}, {"subprotocols": [f"bearer.{KEY}"]}):
        messages, code = _open(locked, **options)
        assert code == 1000, messages[-1]
        assert messages[0]["type"] == "start" and messages[-1]["type"] == "end"
        assert any(isinstance(m, bytes) for m in messages)
