"""The settings of the served deployments (their ``user_config``), importable without Ray or FastAPI:
a serve config is validated against them before anything starts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from blocks.admission import MARGIN

DEFAULT_MAX_BODY_BYTES = 256 * 1024
"""Room for the 20,000-character input limit even when every character is JSON-escaped (six bytes each)."""


class Settings(BaseModel):
    """A deployment's ``user_config``: unknown keys are errors; each field's docstring is its documentation."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")


class OpenAINames(Settings):
    """OpenAI's model and voice names, as ``POST /v1/audio/speech`` takes them beside the addons' own. A table
    given replaces the default one (every OpenAI name, each to the defaults)."""

    models: dict[str, str | None] = Field(default_factory=lambda: dict.fromkeys(OPENAI_MODELS))
    """OpenAI model name -> the served addon it speaks with (None: the entry's first addon)."""
    voices: dict[str, str | None] = Field(default_factory=lambda: dict.fromkeys(OPENAI_VOICES))
    """OpenAI voice name -> the voice of the request's addon (None: the addon's first voice)."""


class IngressConfig(Settings):
    """The ingress ``user_config``: applied live by ``reconfigure``."""

    weights: dict[str, float] = Field(default_factory=dict)
    """Encoder deployment -> traffic weight, split per addon (an addon none names: all to its own encoders)."""
    max_streams: int = Field(default=16, ge=1)
    """Most streams one replica holds producing at once, whatever the admission test says; before any stream
    has been measured, each is taken to cost this share of the margin."""
    measured_admission: bool = True
    """Admit by the schedulability test on measured costs (False: ``max_streams`` streams, on a machine whose
    capacity is known)."""
    admission_margin: float = Field(default=MARGIN, gt=0.0, le=1.0)
    """Share of the machine the admission test may plan: where the learned margin starts, and the most it grows
    back to after near stalls shrank it. A stream that would not fit answers 429 with Retry-After."""
    queue_s: float = Field(default=0.0, ge=0.0, le=30.0)
    """How long a request may wait for the admission test to pass before the 429 (0: refused at once)."""
    retry_after_s: int = Field(default=1, ge=0)
    """Retry-After of a 503 (synthesis failed before its first audio); a 429's comes from admission."""
    deadline_s: float = Field(default=300.0, gt=0)
    """Longest a request may take, start to end."""
    hold_start: bool = True
    """While other streams are producing, a stream's first audio leaves once its second piece is queued:
    under load the second (longer) chunk takes more than the first one plays, and playback that starts
    at the first byte would stall. Costs first audio under load, never alone."""
    lookahead: int = Field(default=4, ge=1)
    """Chunks the producers may run ahead of the response body."""
    pace_ahead_s: float | None = Field(default=None, gt=0)
    """Audio seconds a stream may run ahead of real-time playback (None: as fast as it can)."""
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024)
    """Larger request bodies answer 413."""
    cors_origins: list[str] = Field(default_factory=list)
    """Origins allowed by CORS (empty: CORS off); ``$VOXSTACK_CORS_ORIGINS`` adds more."""
    max_sockets: int = Field(default=16, ge=1)
    """``/v1/stream/ws`` sockets open at once on one replica; more are closed with 1013."""
    max_frame_bytes: int = Field(default=64 * 1024, ge=1024)
    """Largest client frame on a socket; a larger one closes it with 1009."""
    socket_deadline_s: float = Field(default=3600.0, gt=0)
    """Longest a socket may stay open."""
    socket_pace_ahead_s: float | None = Field(default=30.0, gt=0)
    """Audio seconds a socket may run ahead of real-time playback: a client that never reads is paced."""
    send_timeout_s: float = Field(default=10.0, gt=0)
    """A socket whose client takes no audio frame for this long is closed with 1008."""
    openai: OpenAINames = Field(default_factory=OpenAINames)
    """OpenAI's names for models and voices (``POST /v1/audio/speech`` only)."""


class StageConfig(Settings):
    """A stream stage's ``user_config``."""

    fail_after_chunks: int | None = Field(default=None, ge=0)
    """Fault drill: streams fail after this many chunks (None: off)."""
    fail_seed: int | None = None
    """Limit the drill to requests with this seed (None: every stream)."""
    pace_ahead_s: float | None = Field(default=None, gt=0)
    """Audio seconds a stage producing audio computes ahead of the stream's real-time playback (None: as
    fast as it can). Serve streams have no backpressure: this bounds the work spent ahead of a listener
    (and lost when the listener leaves), and keeps a stream's call running as long as it plays."""
    handoff_s: float = Field(default=0.01, ge=0.0, le=1.0)
    """Pause after a stream's first chunk before computing the next, so that the first chunk's trip
    through the later stages and the proxy is not slowed by the next chunk's compute (0: none)."""
