"""The addon config (``addon.json``) as pydantic models. Unknown keys are errors."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from blocks.errors import InputError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TensorSpec(Strict):
    """A network input: its name, dtype and shape (ints, or symbols bound at run time)."""

    name: str
    dtype: Literal["float32", "int64", "int32", "bool"] = "float32"
    shape: list[int | str] = Field(default_factory=list)
    random: Literal["normal"] | None = None
    """Drawn by the block from the request's seeded generator instead of read from the tensors."""


class NetworkConfig(Strict):
    """One exported network of the addon."""

    file: str
    """Path relative to the addon folder; it may not leave the folder."""
    format: Literal["onnx", "torchscript", "torch_export"]
    inputs: list[TensorSpec]
    outputs: list[str]
    role: Literal["encoder", "decoder", "vocoder", "other"] = "other"
    """What the default components pick it for: Encoders run every ``encoder`` network."""
    backend: BackendConfig | None = None
    """Overrides the addon's backend for this network (e.g. a torch network in an ONNX addon)."""


class BatchConfig(Strict):
    """Cross-stream batching of fixed-shape frame networks (continuous: per chunk, not per request)."""

    max_size: int = Field(default=8, ge=1, le=64)
    """Most chunks run together in one call."""
    max_wait_ms: float = Field(default=2.0, ge=0.0, le=100.0)
    """How long the first chunk of a batch waits for others to join."""


class BackendConfig(Strict):
    """Where and how networks run; chosen once, when the addon loads."""

    kind: Literal["onnxruntime", "torch", "neuron"] = "onnxruntime"
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    threads: int | None = Field(default=None, ge=1)
    """Intra-op threads per network (None: the runtime's default)."""
    busy_threads: int | None = Field(default=None, ge=1)
    """onnxruntime only: intra-op threads for a call made while another network call runs in the same
    process (None: ``threads``). Concurrent streams then share the cores without oversubscribing them,
    and a lone stream still gets every core."""
    profile: Literal["dynamic", "fixed"] = "dynamic"
    """``fixed``: every network sees only the shapes of the addon's fixed profile."""
    batch: BatchConfig | None = None
    """Batch frame-network chunks of concurrent streams (fixed profile only)."""

    @model_validator(mode="after")
    def _busy_threads_need_onnxruntime(self) -> BackendConfig:
        if self.busy_threads is not None and self.kind != "onnxruntime":
            raise ValueError(f"busy_threads applies to the onnxruntime backend only, not {self.kind!r}")
        return self


class FixedNetworkProfile(Strict):
    """Static shapes of one network along one symbolic dim (time: always the last axis)."""

    dim: str
    """The symbolic input dim made static, e.g. ``phonemes`` or ``frames``."""
    sizes: list[int] = Field(min_length=1)
    """Allowed sizes, ascending; inputs are padded up to the next one. A frame network has one: its window."""
    pad_value: float = 0.0

    @field_validator("sizes")
    @classmethod
    def _ascending(cls, sizes: list[int]) -> list[int]:
        if sizes != sorted(set(sizes)) or sizes[0] < 1:
            raise ValueError("sizes must be positive, ascending and distinct")
        return sizes


class FixedProfile(Strict):
    """The addon's fixed-shape profile (accelerators that compile each tensor size)."""

    networks: dict[str, FixedNetworkProfile]
    artefacts: str = "networks/fixed"
    """Folder (inside the addon) where ``voxstack addons compile`` writes the static artefacts."""


class ScheduleConfig(Strict):
    """Frames per chunk: small first (latency), growing (efficiency), capped."""

    first: int = Field(default=16, ge=1)
    second: int | None = Field(default=None, ge=1)
    """The second chunk (None: ``first`` × ``growth``), growing by ``growth`` after it: a first chunk
    small for a lone listener's first audio, a second that fills what a start held under load queues."""
    growth: float = Field(default=2.0, ge=1.0)
    max: int = Field(default=256, ge=1)
    adaptive: bool = False
    """Grow only while the stream has audio to spare and no other stream waits for a core. Chunk
    boundaries then depend on load, so audio is bit-identical run to run only where a block's context
    covers its network's receptive field (off: the same seed always gives the same bytes)."""


class FrontendConfig(Strict):
    """Text to utterances to phoneme ids."""

    type: str = "EspeakFrontend"
    voice: str = "en-us"
    """espeak-ng voice name."""
    phoneme_id_map: dict[str, list[int]] | str = "networks/voice.json"
    """The map itself, or a JSON file in the addon holding it under ``phoneme_id_map``."""
    max_chars: int = Field(default=20_000, ge=1)
    """Longest accepted input text, in characters."""
    max_utterance_ids: int = Field(default=2048, ge=16)
    """Most phoneme ids one utterance may hold (dynamic profile; the fixed profile's largest encoder
    bucket when lower). A sentence over it is halved at the clause nearest its middle, else a word."""
    max_utterance_chars: int | None = Field(default=None, ge=8)
    """Optional: sentences longer than this many characters are halved the same way (default: none)."""
    first_utterance_chars: int | None = Field(default=None, ge=8)
    """Latency option, off by default: speak the first sentence's leading clauses (at most this many
    characters) on their own, so first audio waits for a shorter encoder run. Changes the prosody at
    that seam."""


class SynthesisDefaults(Strict):
    """The scales a request gets when it names none."""

    length_scale: float = Field(default=1.0, gt=0)
    noise_scale: float = Field(default=0.667, ge=0)
    noise_w: float = Field(default=0.8, ge=0)


VOICE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class VoiceTensor(Strict):
    """A tensor a voice feeds the blocks: a literal value, or an ``.npy`` file in the addon folder."""

    dtype: Literal["float32", "int64", "int32"] = "float32"
    value: Any = None
    """Nested lists (e.g. ``[3]`` for a speaker id ``sid`` of shape ``[1]``)."""
    file: str | None = None
    """A ``.npy`` file inside the addon folder (e.g. a style table)."""

    @model_validator(mode="after")
    def _one_source(self) -> VoiceTensor:
        if (self.value is None) == (self.file is None):
            raise ValueError("give value or file, exactly one")
        return self


class VoiceConfig(Strict):
    """One voice of an addon: what a request's ``voice`` picks, and what it feeds the networks."""

    name: str = Field(pattern=VOICE_NAME)
    language: str | None = None
    """The language it speaks (BCP 47, e.g. ``en-US``, ``de-DE``); default: the frontend's voice."""
    description: str = ""
    speaker: str | None = None
    """The model's own name for this speaker (e.g. a piper ``speaker_id_map`` key)."""
    tensors: dict[str, VoiceTensor] = Field(default_factory=dict)
    """Utterance tensors this voice adds (e.g. ``sid``, a speaker id; a style table): every voice of an
    addon gives the same names and dtypes."""


class AddonConfig(Strict):
    """Everything an addon declares: audio parameters, networks, the stack, the backend."""

    name: str
    version: str
    description: str = ""
    sample_rate: int = Field(gt=0)
    hop_length: int = Field(gt=0)
    """Audio samples per acoustic frame."""
    frontend: FrontendConfig = Field(default_factory=FrontendConfig)
    defaults: SynthesisDefaults = Field(default_factory=SynthesisDefaults)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    backend: BackendConfig = Field(default_factory=BackendConfig)
    networks: dict[str, NetworkConfig]
    fixed_profile: FixedProfile | None = None
    stack: Any
    """The block graph: a list of StreamableBlocks (see ``blocks.spec``)."""
    voices: list[VoiceConfig] = Field(default_factory=lambda: [VoiceConfig(name="default")], min_length=1)
    """The voices a request may pick (the first is the default); a bare name is a voice with nothing to feed."""
    build: str | None = None
    """Command that builds missing network files, shown in errors."""
    source: dict[str, str] | None = None
    """Where the networks came from, as an importer recorded it (e.g. the piper voice file and its sha256)."""

    @field_validator("voices", mode="before")
    @classmethod
    def _named(cls, voices: Any) -> Any:
        return [{"name": v} if isinstance(v, str) else v for v in voices] if isinstance(voices, list) else voices

    @model_validator(mode="after")
    def _voices_agree(self) -> AddonConfig:
        names = [v.name for v in self.voices]
        if len(set(names)) != len(names):
            raise ValueError(f"voices: each name may be given once, got {names}")
        shapes = {v.name: {k: t.dtype for k, t in v.tensors.items()} for v in self.voices}
        first = next(iter(shapes.values()))
        if any(found != first for found in shapes.values()):
            raise ValueError(f"voices: every voice must give the same tensors and dtypes, got {shapes}")
        return self

    def language(self, voice: VoiceConfig) -> str:
        """The language ``voice`` speaks: its own, else the frontend's (an espeak voice such as ``en-us``)."""
        return voice.language or self.frontend.voice

    def voice(self, name: str | None) -> VoiceConfig:
        """The voice called ``name`` (the first when None); an unknown name is refused naming the voices."""
        if name is None:
            return self.voices[0]
        for voice in self.voices:
            if voice.name == name:
                return voice
        raise InputError(f"voice {name!r} is not one of {[v.name for v in self.voices]}", "voice")


NetworkConfig.model_rebuild()
