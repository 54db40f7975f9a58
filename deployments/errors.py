"""One table from the project's error classes to what each protocol answers: an HTTP status and OpenAI
error type, a WebSocket close code, and a Wyoming ``error`` event's code (the same type string)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from blocks.errors import Busy, DeadlineExceeded, InputError, ServiceError

NORMAL = 1000
POLICY = 1008
"""A client's mistake (a bad field, out of order, an unknown model or voice)."""
SERVER_ERROR = 1011
TRY_LATER = 1013


class UnknownModel(InputError):
    """A request names an addon (``model``) the service does not serve."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "model")


@dataclass(frozen=True)
class Answer:
    """How every entry reports one class of error."""

    status: int
    """HTTP status."""
    close_code: int
    """WebSocket close code."""
    kind: str
    """OpenAI's error ``type``; also the Wyoming error's ``code``."""
    reason: str
    """The request's logged abort reason (``deployments.lifecycle``)."""


TABLE: tuple[tuple[type[BaseException], Answer], ...] = (
    (UnknownModel, Answer(404, POLICY, "model_not_found", "invalid")),
    (InputError, Answer(400, POLICY, "invalid_request_error", "invalid")),
    (Busy, Answer(429, TRY_LATER, "rate_limit_error", "refused")),  # before ServiceError, which it extends
    (DeadlineExceeded, Answer(504, SERVER_ERROR, "timeout_error", "deadline")),
    (ServiceError, Answer(503, SERVER_ERROR, "server_error", "error")),
    (asyncio.CancelledError, Answer(499, NORMAL, "cancelled", "client_gone")),
    (BaseException, Answer(500, SERVER_ERROR, "server_error", "error")),
)
"""Most specific first: the first class an error is an instance of decides."""


def answer_for(error: BaseException) -> Answer:
    return next(answer for cls, answer in TABLE if isinstance(error, cls))


def param_of(error: BaseException) -> str | None:
    """The request field an error names, if any."""
    return error.param if isinstance(error, InputError) else None
