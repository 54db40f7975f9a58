"""What a request may ask of a voice: one typed, frozen model holding every range and default once.

The HTTP request models derive from :class:`VoiceOptions`; :class:`SynthesisOptions` adds what only
code may set (the chunk schedule) and crosses Ray as it is.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blocks.config import ScheduleConfig, SynthesisDefaults
from blocks.errors import InputError

MarkType = Literal["sentence", "word", "phoneme", "ssml"]
MARK_TYPES: tuple[MarkType, ...] = ("sentence", "word", "phoneme", "ssml")


class VoiceOptions(BaseModel):
    """Per-request synthesis options a client may send; ``None`` takes the addon's default."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    seed: int = Field(default=0, ge=0, lt=2**63)
    """Seed of every random draw: the same seed gives bit-identical audio."""
    length_scale: float | None = Field(default=None, ge=0.1, le=10.0, allow_inf_nan=False)
    """Speaking time multiplier: above 1 is slower."""
    noise_scale: float | None = Field(default=None, ge=0.0, le=2.0, allow_inf_nan=False)
    """Scale of the prior noise (0: deterministic whatever the seed)."""
    noise_w: float | None = Field(default=None, ge=0.0, le=2.0, allow_inf_nan=False)
    """Scale of the duration predictor's noise."""
    marks: tuple[MarkType, ...] = ("sentence", "word")
    """Speech mark types to send with the audio (none: no marks); ``ssml``: at each SSML ``<mark>``."""


class SynthesisOptions(VoiceOptions):
    """Everything one synthesis runs with; ``resolved`` fills the addon's defaults."""

    schedule: ScheduleConfig | None = None
    """Chunk schedule override (e.g. one chunk per utterance), for code, not HTTP clients."""

    def resolved(self, defaults: SynthesisDefaults) -> SynthesisOptions:
        """These options with every ``None`` scale replaced by the addon's default."""
        return self.model_copy(update={
            name: getattr(defaults, name) if getattr(self, name) is None else getattr(self, name)
            for name in ("length_scale", "noise_scale", "noise_w")
        })


def options_from(**given: object) -> SynthesisOptions:
    """Validated options from keyword arguments; a bad value is an InputError naming the option."""
    try:
        return SynthesisOptions.model_validate({k: v for k, v in given.items() if v is not None})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "options"
        raise InputError(f"{where}: {first['msg']}, got {first.get('input')!r}") from None
