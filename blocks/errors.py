"""Every error the framework raises on purpose, in one place.

Each message says what was wrong and where (a JSON path, an option name, a file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class Invalid(Protocol):
    """A validation error: pydantic's, or FastAPI's for a request (both list their problems in ``errors()``)."""

    def errors(self) -> Any: ...


class InputError(ValueError):
    """The request text or an option is unusable; the message says what and where (``param``: the field)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class AddonError(ValueError):
    """An addon cannot be found, or its config or files are invalid."""


class StackError(ValueError):
    """A stack spec is invalid; ``path`` is the JSON path of the offending entry."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class ContractError(StackError):
    """A block reads a tensor that nothing before it in the stack writes (or with another dtype/rank)."""


class ShapeError(ValueError):
    """An input is larger than every size of the fixed-shape profile."""


class NetworkLoadError(RuntimeError):
    """A network file is missing, corrupt or does not match its declaration."""

    def __init__(self, name: str, path: Path, reason: str) -> None:
        super().__init__(f"network {name!r} ({path.name}): {reason}")
        self.network = name
        self.path = path


class VoiceImportError(AddonError):
    """A model could not be turned into an addon; the message says what was not found or did not match."""


class DeviceUnavailable(AddonError):
    """A network's backend asks for a device (CUDA, NeuronCores) this machine or install lacks; the message
    says what to install or which setting to change."""


class EspeakError(RuntimeError):
    """espeak-ng could not be loaded or refused a voice."""


class ConfigError(ValueError):
    """A serve config is invalid; the message names the field."""


class DeadlineExceeded(TimeoutError):
    """The request ran past its deadline."""


class ServiceError(RuntimeError):
    """The service could not do what a valid request asked (a stage failed, a network broke); it may be
    retried after ``retry_after_s`` when that is given."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Busy(ServiceError):
    """No capacity now: the request may be retried after ``retry_after_s``."""


def json_path(location: tuple[int | str, ...], root: str = "$") -> str:
    """A pydantic error location as a JSON path: ``("stack", 0, "type")`` -> ``$.stack[0].type``."""
    path = root + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in location)
    return path.lstrip(".") if not root else path


@dataclass(frozen=True)
class Problem:
    """The first problem of a validation error: where (a JSON path), the field (dotted), what, and its kind."""

    where: str
    field: str
    message: str
    kind: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def first_problem(error: Invalid, root: str = "$", with_input: bool = False, skip: tuple[str, ...] = ()) -> Problem:
    """The first problem of a validation error (``root`` prefixes its path, ``skip`` drops location parts
    such as FastAPI's ``body``; ``with_input``: the message names the value given)."""
    first = error.errors()[0]
    location = tuple(p for p in first.get("loc", ()) if p not in skip)
    message = str(first.get("msg", "invalid"))
    if with_input and "input" in first:
        message += f", got {first['input']!r}"
    return Problem(json_path(location, root) or "value", ".".join(str(p) for p in location),
                   message, str(first.get("type", "")))


def describe_validation(error: Invalid, root: str = "$", with_input: bool = False, skip: tuple[str, ...] = ()) -> str:
    """The first problem of a validation error as ``PATH: message`` (see ``first_problem``)."""
    return str(first_problem(error, root, with_input, skip))
