"""What a block or a frontend may know of its addon: a narrow view, never the whole addon."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from blocks.config import NetworkConfig, ScheduleConfig
from blocks.errors import AddonError

if TYPE_CHECKING:
    from blocks.addon import Addon
    from blocks.backends import Network


class BlockContext:
    """A narrow view of one addon, handed to every block it builds."""

    def __init__(self, addon: Addon) -> None:
        self._addon = addon

    @property
    def name(self) -> str:
        """The addon's name (for messages and cache keys)."""
        return self._addon.name

    @property
    def sample_rate(self) -> int:
        return self._addon.config.sample_rate

    @property
    def hop_length(self) -> int:
        """Audio samples per acoustic frame."""
        return self._addon.config.hop_length

    @property
    def schedule(self) -> ScheduleConfig:
        """The addon's default chunk schedule."""
        return self._addon.config.schedule

    def network(self, name: str) -> Network:
        """The loaded network ``name`` (loaded on first use, once per addon)."""
        return self._addon.network(name)

    def network_config(self, name: str) -> NetworkConfig:
        """The declaration of network ``name`` (file, format, inputs, outputs, role)."""
        return self._addon.config.networks[name]

    def networks_with_role(self, role: str) -> list[str]:
        return self._addon.networks_with_role(role)

    def network_names(self) -> list[str]:
        """Every network the addon declares."""
        return list(self._addon.config.networks)


def inside(folder: Path, relative: str, owner: str) -> Path:
    """``folder / relative``, refused when it leaves ``folder`` (``..``, an absolute path, a symlink)."""
    path = (folder / relative).resolve()
    if not path.is_relative_to(folder):
        raise AddonError(f"addon {owner!r}: {relative!r} points outside the addon folder")
    return path


@dataclass(frozen=True)
class FrontendContext:
    """What a frontend may know of its addon: its name, its folder's files, and how to build them."""

    name: str
    folder: Path
    build: str | None = None
    """The command that builds the addon's missing files, for messages."""

    def resolve(self, relative: str) -> Path:
        """A file inside the addon folder."""
        return inside(self.folder, relative, self.name)

    def missing(self, what: str) -> AddonError:
        """The error for a file the addon lacks, with the command that builds it."""
        hint = f"; build it with: {self.build}" if self.build else ""
        return AddonError(f"addon {self.name!r}: {what} is missing{hint}")
