"""The two abstractions every component extends, and the records that flow between them."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from blocks.backends.base import Tally, TallyCounts
from blocks.config import ScheduleConfig, SynthesisDefaults
from blocks.contracts import Contract
from blocks.errors import AddonError

if TYPE_CHECKING:
    from blocks.config import AddonConfig
    from blocks.context import BlockContext

Tensors = MutableMapping[str, np.ndarray]
"""Named tensors: what a SequenceBlock takes and returns, and what a StreamableBlock reads."""

_DEFAULTS = SynthesisDefaults()


def never() -> bool:
    """A cancellation check that never fires."""
    return False


@dataclass
class Request:
    """Per-utterance synthesis options, shared by every block of one utterance."""

    seed: int = 0
    """Seed of every random draw: the same seed gives bit-identical audio."""
    length_scale: float = _DEFAULTS.length_scale
    """Speaking time multiplier: above 1 is slower."""
    noise_scale: float = _DEFAULTS.noise_scale
    """Scale of the prior noise added to the upsampled encoding."""
    noise_w: float = _DEFAULTS.noise_w
    """Scale of the duration predictor's noise."""
    utterance_index: int = 0
    """Index of the utterance within the request (offsets the seed)."""
    cancelled: Callable[[], bool] = never
    """True once the consumer has gone away: a block stops at its next chunk."""
    schedule: ScheduleConfig | None = None
    """Chunk schedule override (e.g. one chunk for whole-utterance synthesis)."""
    tally: Tally = field(default_factory=Tally)
    """Elements the network calls of the blocks running here carried, padding included."""
    request_id: str = ""
    """The request's id, for logs in every stage."""
    voice: str = ""
    """The addon's voice (its name; empty: the first), whose tensors every utterance gets."""
    room: Callable[[], bool] | None = None
    """True while chunks may grow (the stream has audio to spare, the process idle compute);
    None: they grow by the schedule alone."""

    def rng(self, salt: int) -> np.random.Generator:
        """A generator private to this utterance and to the block that asks (``salt``)."""
        return np.random.default_rng([self.seed, self.utterance_index, salt])


@dataclass
class ChunkMeta:
    """What travels beside a chunk's data, from block to block and stage to stage."""

    frames: int | None = None
    """Length of the utterance's whole stream, in this chunk's units, once known."""
    timing: dict[str, np.ndarray] = field(default_factory=dict)
    """Tensors that time the utterance's ids, published by a block as it learns them (e.g. an
    autoregressive decoder's ``token_starts``): speech marks are timed by them."""
    tally: TallyCounts | None = None
    """Elements the network calls behind this chunk carried since the previous chunk."""
    steps: int | None = None
    """Decoder steps run so far (autoregressive decoders)."""
    stopped: bool | None = None
    """Whether an autoregressive decoder ended at its stop token (on the last chunk)."""


@dataclass
class Chunk:
    """A piece of a stream: frames ``[channels, n]`` or samples ``[n]``, with its position."""

    data: np.ndarray
    """Frames (channels first) or float32 audio samples."""
    start: int
    """Position of the first frame or sample within the utterance."""
    last: bool = False
    """True on the utterance's final chunk."""
    meta: ChunkMeta = field(default_factory=ChunkMeta)
    """Side information: the stream's length, timing tensors, the network calls' tally."""

    @property
    def length(self) -> int:
        return int(self.data.shape[-1])


class NoOptions(BaseModel):
    """Options of a block that takes none: any key is an error."""

    model_config = ConfigDict(extra="forbid")


class Block(abc.ABC):  # noqa: B024 - abstract through its two subclasses
    """Common base: a block knows its context (networks, audio parameters), its options and its children."""

    type_name: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]] = NoOptions
    """Pydantic model of the block's config keys (besides ``type`` and child slots)."""
    slots: ClassVar[dict[str, tuple[type[Block], bool]]] = {}
    """Child slots of a container: key -> (kind of block, is a list)."""
    streams: ClassVar[bool] = False
    """True for StreamableBlocks (chunks on demand)."""
    transforms: ClassVar[bool] = False
    """True for a StreamableBlock that transforms an upstream stream (one must come before it)."""

    declared: Contract | None = None
    """The contract this block was built with (from its stack entry); None for a block built by hand,
    which then sees every tensor it is given."""
    path: str = ""
    """The JSON path of its stack entry, for messages."""

    def __init__(self, context: BlockContext | None = None, options: BaseModel | None = None) -> None:
        self.context = context
        self.options: Any = options if options is not None else self.Options()

    @classmethod
    def contract(cls, options: Any, config: AddonConfig, path: str) -> Contract:
        """The tensors this block reads and writes, given its options (default: none)."""
        return Contract()

    @classmethod
    def controls(cls, options: Any) -> frozenset[str]:
        """The per-span controls (``blocks.controls.CONTROLS``) this block honours, given its options."""
        return frozenset()

    def children(self) -> list[Block]:
        return []

    def warm_up(self) -> None:
        """Run once before serving so the first request pays no set-up cost."""
        for child in self.children():
            child.warm_up()

    def close(self) -> None:
        """Stop whatever this block started (threads, pools); the default closes its children."""
        for child in self.children():
            child.close()

    def schedule_for(self, request: Request, own: ScheduleConfig | None = None) -> ScheduleConfig:
        """The chunk schedule: the request's override, else the block's own option, else the addon's."""
        if request.schedule is not None:
            return request.schedule
        if own is not None:
            return own
        return self.context.schedule if self.context is not None else ScheduleConfig()


def needs_context(block: Block, context: BlockContext | None) -> BlockContext:
    """``context``, or an error naming the block that cannot run without its addon's networks."""
    if context is None:
        raise AddonError(f"{type(block).__name__} runs an addon's networks: build it from an addon's stack")
    return context


def needs_upstream(block: Block, upstream: Iterator[Chunk] | None) -> Iterator[Chunk]:
    """``upstream``, or an error naming the block that transforms a stream and was given none."""
    if upstream is None:
        raise AddonError(f"{type(block).__name__} needs an upstream StreamableBlock before it")
    return upstream


class SequenceBlock(Block):
    """Tensors in, tensors out: runs once per utterance."""

    @abc.abstractmethod
    def run(self, inputs: Tensors, request: Request) -> dict[str, np.ndarray]:
        """Return new named tensors; the caller merges them with ``inputs``."""


class StreamableBlock(Block):
    """Chunks on demand, from an upstream stream and/or a SequenceBlock's tensors."""

    streams = True

    @abc.abstractmethod
    def stream(
        self, upstream: Iterator[Chunk] | None, inputs: Tensors, request: Request
    ) -> Iterator[Chunk]:
        """Yield chunks in order; the final one has ``last=True``. ``inputs`` holds what the block's
        contract declares; what it writes there (its declared writes) later blocks may read."""
