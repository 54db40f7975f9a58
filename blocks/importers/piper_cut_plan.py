"""The cut plan of a piper VITS graph: the tensors its encoders / flow / vocoder networks begin and end at,
and the sizes read from the graph (``piper_graph`` finds it; ``piper_split`` cuts at it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PHONEMES, FRAMES = "phonemes", "frames"


@dataclass(frozen=True)
class CutPlan:
    """The tensors to cut a piper graph at (names in the source graph) and the sizes read from it."""

    dp_noise: str | None
    """Output of the stochastic duration predictor's random node, [1, 2, phonemes] (None: deterministic one)."""
    prior_noise: str
    """Output of the random node that adds noise to the prior (stays outside the split networks)."""
    m_p: str
    logs_p: str
    durations: str
    z_p: str
    mask: str
    z: str
    audio: str
    sid: str | None
    g: str | None
    inter_channels: int
    dp_noise_channels: int | None
    hop: int
    upsample_rates: tuple[int, ...]
    generator_channels: int
    num_symbols: int
    num_speakers: int
    speaker_channels: int | None
    g_enters: dict[str, list[str]] = field(default_factory=dict)
    """Region (encoders / flow / vocoder) -> the nodes reading ``g`` (op, channels in -> out)."""
    notes: list[str] = field(default_factory=list)

    @property
    def multi_speaker(self) -> bool:
        return self.g is not None

    def renames(self) -> dict[str, str]:
        """Source tensor -> name in the split networks."""
        names = {self.m_p: "m_p", self.logs_p: "logs_p", self.durations: "durations", self.z_p: "z_p",
                 self.mask: "mask", self.z: "z", self.audio: "audio"}
        if self.dp_noise is not None:
            names[self.dp_noise] = "dp_noise"
        if self.g is not None:
            names[self.g] = "g"
        return names

    def cuts(self) -> dict[str, tuple[list[str], list[str]]]:
        """Network -> (input tensors, output tensors) in the source graph."""
        speaker_in = [self.sid] if self.sid else []
        g_out = [self.g] if self.g else []
        return {
            "encoders": (["input", "input_lengths", "scales", *speaker_in, *([self.dp_noise] if self.dp_noise else [])],
                         [self.m_p, self.logs_p, self.durations, *g_out]),
            "flow": ([self.z_p, self.mask, *g_out], [self.z]),
            "vocoder": ([self.z, *g_out], [self.audio]),
        }

    def declared_shapes(self) -> dict[str, list[int | str]]:
        """Shapes of the renamed cut tensors, with symbolic ``phonemes`` / ``frames`` axes."""
        shapes: dict[str, list[int | str]] = {
            "m_p": [1, self.inter_channels, PHONEMES],
            "logs_p": [1, self.inter_channels, PHONEMES],
            "durations": [1, 1, PHONEMES],
            "z_p": [1, self.inter_channels, FRAMES],
            "mask": [1, 1, FRAMES],
            "z": [1, self.inter_channels, FRAMES],
        }
        if self.speaker_channels:
            shapes["g"] = [1, self.speaker_channels, 1]
        if self.dp_noise_channels:
            shapes["dp_noise"] = [1, self.dp_noise_channels, PHONEMES]
        return shapes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
