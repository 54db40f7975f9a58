"""Addons: a folder with ``addon.json`` and its network files, read safely; networks load on first use."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from blocks.backends import Network, load_network
from blocks.backends.batching import BatchingNetwork
from blocks.backends.fixed import FixedShapeNetwork
from blocks.backends.manifest import Artefacts, profile_key, read_manifest
from blocks.catalog import addon_path, list_addons
from blocks.config import AddonConfig, BackendConfig
from blocks.context import BlockContext, FrontendContext, inside
from blocks.contracts import check_stack
from blocks.errors import AddonError, StackError, describe_validation
from blocks.spec import Node, parse_stack


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied key by key (nested objects merge, other values replace)."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config(folder: Path, overrides: dict[str, Any] | None = None) -> AddonConfig:
    """The addon's ``addon.json`` with ``overrides`` merged in, validated (errors name the JSON path)."""
    config_file = folder / "addon.json"
    if not config_file.resolve().is_relative_to(folder):
        raise AddonError(f"{config_file}: points outside the addon folder")
    try:
        raw = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise AddonError(f"{config_file}: cannot read addon config ({error})") from None
    if not isinstance(raw, dict):
        raise AddonError(f"{config_file}: the addon config must be a JSON object")
    try:
        return AddonConfig.model_validate(merge(raw, overrides or {}))
    except ValidationError as error:
        raise AddonError(f"{config_file}: {describe_validation(error)}") from None


class Addon:
    """A parsed addon: config, checked stack, and its networks (each loaded once, on first use)."""

    def __init__(self, folder: Path, overrides: dict[str, Any] | None = None) -> None:
        self.folder = folder.resolve()
        self.overrides = overrides
        self.config = read_config(self.folder, overrides)
        try:
            self.stack_nodes: list[Node] = parse_stack(self.config.stack)
            check_stack(self.stack_nodes, self.config)
        except StackError as error:
            raise AddonError(f"{self.folder / 'addon.json'}: {error}") from None
        self._networks: dict[str, Network] = {}
        self._voices: dict[str, dict[str, np.ndarray]] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, name: str, root: Path | None = None, overrides: dict[str, Any] | None = None) -> Addon:
        """The addon called ``name`` (in ``root``, else wherever ``blocks.catalog`` finds it); nothing loads yet."""
        return cls(addon_path(name, root), overrides)

    @property
    def name(self) -> str:
        return self.config.name

    def resolve(self, relative: str) -> Path:
        """A file inside the addon folder; anything leaving it (``..``, absolute, symlink) is refused."""
        return inside(self.folder, relative, self.name)

    def networks_with_role(self, role: str) -> list[str]:
        return [name for name, net in self.config.networks.items() if net.role == role]

    def backend_for(self, name: str) -> BackendConfig:
        return self.config.networks[name].backend or self.config.backend

    def voice_tensors(self, name: str | None) -> dict[str, np.ndarray]:
        """The tensors voice ``name`` (the first when None or empty) adds to every utterance, read once."""
        voice = self.config.voice(name or None)
        if voice.name not in self._voices:
            found = {}
            for tensor, spec in voice.tensors.items():
                if spec.file is not None:
                    path = self.resolve(spec.file)
                    if not path.is_file():
                        raise AddonError(f"addon {self.name!r}: voice {voice.name!r}: {spec.file} is missing")
                    found[tensor] = np.load(path, allow_pickle=False).astype(spec.dtype)
                else:
                    found[tensor] = np.asarray(spec.value, dtype=spec.dtype)
            self._voices[voice.name] = found
        return self._voices[voice.name]

    def context(self) -> BlockContext:
        """What this addon's blocks may know of it (networks, audio parameters, schedule)."""
        return BlockContext(self)

    def frontend_context(self) -> FrontendContext:
        """What this addon's frontend may know of it (its name, its files, how to build them)."""
        return FrontendContext(self.name, self.folder, self.config.build)

    def provide_network(self, network: Network) -> None:
        """Use an already built network instead of loading its file (embedding, network-free tests)."""
        if network.name not in self.config.networks:
            raise AddonError(f"addon {self.name!r} declares no network {network.name!r}")
        with self._lock:
            self._networks[network.name] = network

    def network(self, name: str) -> Network:
        """The loaded network ``name`` (loads it on first call, once)."""
        with self._lock:
            if name not in self._networks:
                if name not in self.config.networks:
                    raise AddonError(
                        f"addon {self.name!r} has no network {name!r} (has {sorted(self.config.networks)})"
                    )
                backend = self.backend_for(name)
                load = self._load_fixed if backend.profile == "fixed" else self._load_dynamic
                self._networks[name] = load(name, backend)
            return self._networks[name]

    def _load_dynamic(self, name: str, backend: BackendConfig) -> Network:
        config = self.config.networks[name]
        path = self.resolve(config.file)
        if not path.is_file() and self.config.build:
            raise AddonError(
                f"addon {self.name!r}: network file {config.file} is missing; build it with: {self.config.build}"
            )
        return load_network(name, config, path, backend)

    def fixed_artefacts(self) -> Artefacts:
        """The fixed profile's static artefacts, as ``voxstack addons compile`` recorded them."""
        profile = self.config.fixed_profile
        if profile is None:
            raise AddonError(f"addon {self.name!r} has no fixed_profile")
        folder = self.resolve(profile.artefacts)
        return read_manifest(folder, profile_key(profile, self.config.backend.kind), self.name, profile.artefacts)

    def _load_fixed(self, name: str, backend: BackendConfig) -> Network:
        """One static artefact per profile size, wrapped to pad and crop (and batch frame networks)."""
        profile = self.config.fixed_profile
        if profile is None or name not in profile.networks:
            raise AddonError(f"addon {self.name!r}: profile 'fixed' gives no shapes for network {name!r}")
        files = self.fixed_artefacts().get(name)
        if files is None:
            raise AddonError(f"addon {self.name!r}: the fixed-shape artefacts have none for network {name!r}")
        config = self.config.networks[name]
        window = config.role in ("decoder", "vocoder")
        variants: dict[int, Network] = {}
        for size in profile.networks[name].sizes:
            static = config.model_copy(update={"file": files[str(size)]})
            network = load_network(name, static, self.resolve(static.file), backend)
            if window and backend.batch is not None:
                network = BatchingNetwork(network, backend.batch)
            variants[size] = network
        return FixedShapeNetwork(variants, profile.networks[name], window)

    def max_sequence_length(self) -> int:
        """Most phoneme ids one utterance may hold: ``frontend.max_utterance_ids``, or the largest
        encoder bucket of the fixed profile where that is lower. Longer sentences are halved."""
        limit = self.config.frontend.max_utterance_ids
        profile = self.config.fixed_profile
        if profile is None:
            return limit
        sizes = [
            profile.networks[n].sizes[-1]
            for n in self.networks_with_role("encoder")
            if n in profile.networks and self.backend_for(n).profile == "fixed"
        ]
        return min([limit, *sizes])

    def loaded_networks(self) -> list[Network]:
        return list(self._networks.values())

    def close(self) -> None:
        """Stop every thread the loaded networks started (batching workers); they may not run after."""
        with self._lock:
            networks, self._networks = list(self._networks.values()), {}
        for network in networks:
            network.close()


__all__ = ["Addon", "addon_path", "list_addons", "merge", "read_config"]
