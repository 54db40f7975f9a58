"""One request's life at the ingress: its id, its ``open`` line, and then ``end`` or ``abort`` (its reason).

Every entry (HTTP, a WebSocket's ``start``, the Wyoming bridge through the WebSocket) takes the client's
``X-Request-ID`` (the WebSocket's ``start.request_id``) or makes one, echoes it, and logs under it; the
stages log under the same id. Lines go to the logger ``ray.serve``: Serve's log files, and the output of
``voxstack serve``. Each request ends exactly once, whatever ends it.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from deployments.errors import answer_for

log = logging.getLogger("ray.serve")

REQUEST_ID_HEADER = "x-request-id"
MARKER = "voxstack request"
"""Begins every lifecycle line (what ``voxstack serve`` picks out of Serve's logs)."""
_SAFE = re.compile(r"[^A-Za-z0-9._:/+=@-]")
MAX_ID_CHARS = 128

AbortReason = Literal["client_gone", "deadline", "error", "shutdown", "refused", "invalid"]
"""Why a request ended before its audio did: the client went away, it ran past its deadline, a stage
failed, the replica is stopping (the service's end, or a rollout whose drain ran out), it was refused for
want of capacity, or its input was invalid (the error tables in ``deployments.errors`` say which)."""


def request_id(given: str | None) -> str:
    """The client's id when it sent one (unsafe characters dropped, at most 128), else a new one."""
    cleaned = _SAFE.sub("", given or "")[:MAX_ID_CHARS]
    return cleaned or uuid.uuid4().hex


@dataclass
class Lifecycle:
    """Logs one request's ``open``, then its ``end`` or its ``abort``, once."""

    request_id: str
    endpoint: str
    model: str = ""
    voice: str = ""
    started: float = field(default_factory=time.perf_counter)
    first_audio_s: float | None = None
    """Seconds from the request's arrival to its first audio (None: none yet)."""
    finished: str | None = None
    """``end`` or the abort reason, once the request is over."""

    def open(self) -> None:
        log.info("%s %s open endpoint=%s model=%s voice=%s", MARKER, self.request_id, self.endpoint, self.model,
                 self.voice)

    @contextmanager
    def failing(self) -> Iterator[None]:
        """Any error raised inside aborts the request, with the reason the error table gives it."""
        try:
            yield
        except BaseException as error:
            self.abort(answer_for(error).reason, f"{type(error).__name__}: {error}")  # type: ignore[arg-type]
            raise

    def audio_started(self) -> float:
        """Note the first audio; returns its latency in seconds."""
        if self.first_audio_s is None:
            self.first_audio_s = time.perf_counter() - self.started
        return self.first_audio_s

    def end(self, audio_s: float) -> None:
        if self.finished is None:
            self.finished = "end"
            first = "-" if self.first_audio_s is None else f"{self.first_audio_s * 1000:.0f}"
            log.info("%s %s end audio_s=%.3f first_audio_ms=%s wall_s=%.3f", MARKER, self.request_id, audio_s,
                     first, time.perf_counter() - self.started)

    def abort(self, reason: AbortReason, detail: str = "") -> None:
        if self.finished is None:
            self.finished = reason
            note = f" detail={detail!r}" if detail else ""
            log.info("%s %s abort reason=%s%s", MARKER, self.request_id, reason, note)
