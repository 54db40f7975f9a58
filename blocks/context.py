"""What a block may know of its addon: its networks, its audio parameters and its default chunk schedule."""

from __future__ import annotations

from typing import TYPE_CHECKING

from blocks.config import NetworkConfig, ScheduleConfig

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
