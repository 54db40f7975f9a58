"""OpenAI's model and voice names resolved to a served addon and its voice: one place for the speech route,
``GET /v1/audio/voices`` and the check of the ingress config. An addon's own names come first."""

from __future__ import annotations

from typing import Any

from blocks.config import VoiceConfig
from blocks.errors import InputError
from deployments.errors import UnknownModel
from deployments.served_addons import ServedAddon, ServedAddons
from deployments.settings import OpenAINames


class Names:
    """The served addons under their own names and OpenAI's."""

    def __init__(self, addons: ServedAddons, table: OpenAINames) -> None:
        """Refuses a table naming an addon not served, or a voice that an addon it maps to lacks."""
        self.addons = addons
        first = next(iter(addons.by_name))
        self.models = {alias: target or first for alias, target in table.models.items()}
        self.voices = dict(table.voices)
        if unknown := sorted({t for t in self.models.values() if t not in addons.by_name}):
            raise InputError(f"openai.models: {unknown} not served; the addons are {sorted(addons.by_name)}",
                             "openai.models")
        for target in sorted(set(self.models.values())):
            names = [v.name for v in addons.by_name[target].addon.config.voices]
            if missing := sorted({v for v in self.voices.values() if v is not None and v not in names}):
                raise InputError(f"openai.voices: {target} (an OpenAI model's addon) has no voice {missing}; "
                                 f"its voices are {names}", "openai.voices")

    def model(self, name: str) -> ServedAddon:
        """The addon ``name`` is, or an OpenAI model name maps to; an unknown name is refused naming both."""
        if name in self.addons.by_name:
            return self.addons.by_name[name]
        if name in self.models:
            return self.addons.by_name[self.models[name]]
        raise UnknownModel(f"model {name!r} does not exist; available: {sorted(self.addons.by_name)}, and OpenAI's "
                           f"{sorted(self.models)}")

    def voice(self, model: ServedAddon, name: str | None) -> VoiceConfig:
        """``model``'s voice called ``name`` (its own, else an OpenAI voice's target; None: its first)."""
        config = model.addon.config
        own = [v.name for v in config.voices]
        if name is None or name in own:
            return config.voice(name)
        if name not in self.voices:
            raise InputError(f"voice {name!r} is not one of {model.name}'s voices {own} nor OpenAI's "
                             f"{sorted(self.voices)}", "voice")
        target = self.voices[name]
        if target is not None and target not in own:
            raise InputError(f"voice {name!r} is {target!r}, which {model.name} lacks; its voices are {own}",
                             "voice")
        return config.voice(target)

    def aliases(self, models: list[ServedAddon]) -> dict[str, list[dict[str, Any]]]:
        """The OpenAI names ``GET /v1/audio/voices`` lists: each model name with its addon, and each voice
        name with the voice it is in each of ``models`` (where that addon has it)."""
        own = {served.name for served in models}
        voices = []
        for served in models:
            names = {v.name for v in served.addon.config.voices}
            for alias, target in self.voices.items():
                if alias not in names and (target is None or target in names):
                    voices.append({"name": alias, "model": served.name, "voice": self.voice(served, alias).name})
        return {"models": [{"name": alias, "model": target} for alias, target in self.models.items()
                           if target in own],
                "voices": voices}
