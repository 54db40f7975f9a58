"""What a request may ask of a voice: one typed, frozen model holding every range and default once.

The HTTP request models derive from :class:`VoiceOptions`; :class:`SynthesisOptions` adds what only
code may set (the chunk schedule) and crosses Ray as it is. The default scales a request falls back on
are the addon's ``defaults`` (``blocks.config.SynthesisDefaults``), applied by ``resolved`` only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blocks.config import ScheduleConfig, SynthesisDefaults
from blocks.errors import InputError, describe_validation

MarkType = Literal["sentence", "word", "phoneme", "ssml"]
MARK_TYPES: tuple[MarkType, ...] = ("sentence", "word", "phoneme", "ssml")
SCALES = ("length_scale", "noise_scale", "noise_w")
"""The scales a request may leave to the addon's defaults."""


class VoiceOptions(BaseModel):
    """Per-request synthesis options a client may send; ``None`` takes the addon's default."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    voice: str | None = None
    """The addon's voice (``GET /v1/audio/voices`` lists them; default: its first)."""
    seed: int = Field(default=0, ge=0, lt=2**63)
    """Seed of every random draw: the same seed gives bit-identical audio."""
    length_scale: float | None = Field(default=None, ge=0.1, le=10.0, allow_inf_nan=False)
    """Speaking time multiplier: above 1 is slower (default: the addon's)."""
    noise_scale: float | None = Field(default=None, ge=0.0, le=2.0, allow_inf_nan=False)
    """Scale of the prior noise; 0 makes synthesis deterministic whatever the seed (default: the addon's)."""
    noise_w: float | None = Field(default=None, ge=0.0, le=2.0, allow_inf_nan=False)
    """Scale of the duration predictor's noise (default: the addon's)."""
    marks: tuple[MarkType, ...] = ("sentence", "word")
    """Speech mark types to send with the audio (none: no marks); ``ssml``: at each SSML ``<mark>``."""


class SynthesisOptions(VoiceOptions):
    """Everything one synthesis runs with; ``resolved`` fills the addon's defaults."""

    schedule: ScheduleConfig | None = None
    """Chunk schedule override (e.g. one chunk per utterance), for code, not HTTP clients."""

    def resolved(self, defaults: SynthesisDefaults) -> SynthesisOptions:
        """These options with every ``None`` scale replaced by the addon's default."""
        return self.model_copy(update={name: getattr(defaults, name) for name in SCALES
                                       if getattr(self, name) is None})

    def scale(self, name: str) -> float:
        """A resolved scale (``resolved`` must have run: no default is guessed here)."""
        value = getattr(self, name)
        if value is None:
            raise InputError(f"{name} is not resolved: call resolved() with the addon's defaults first")
        return float(value)


def options_from(**given: object) -> SynthesisOptions:
    """Validated options from keyword arguments (``None``: not given); a bad value is an InputError
    naming the option and the value given."""
    try:
        return SynthesisOptions.model_validate({k: v for k, v in given.items() if v is not None})
    except ValidationError as error:
        raise InputError(describe_validation(error, root="", with_input=True)) from None
