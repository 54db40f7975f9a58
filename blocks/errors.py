"""Every error the framework raises on purpose, in one place.

Each message says what was wrong and where (a JSON path, an option name, a file).
"""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """The request text or an option is unusable; the message says what and where."""


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


class EspeakError(RuntimeError):
    """espeak-ng could not be loaded or refused a voice."""


class ConfigError(ValueError):
    """A serve config is invalid; the message names the field."""


class DeadlineExceeded(TimeoutError):
    """The request ran past its deadline."""
