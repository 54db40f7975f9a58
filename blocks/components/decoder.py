"""Decoder and vocoder blocks: a frame network run on context windows of the upstream frames."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from blocks.components.windowed import windowed
from blocks.config import AddonConfig, NetworkConfig, ScheduleConfig
from blocks.context import BlockContext
from blocks.contracts import Contract, TensorSpec
from blocks.core import Chunk, Request, StreamableBlock, Tensors, needs_context, needs_upstream
from blocks.errors import AddonError


def is_frames(spec: Any) -> bool:
    """Whether a network input runs along the frames: its last dim is symbolic (``frames``)."""
    return bool(spec.shape) and isinstance(spec.shape[-1], str)


class FrameNetworkOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    network: str | None = None
    """Network to run (default: the addon's only network with this block's role)."""
    context: int = Field(default=32, ge=0)
    """Frames of context on each side of a chunk, cropped from the output."""
    mask_input: str | None = "mask"
    """Input fed an all-ones frame mask, if the network declares it."""
    schedule: ScheduleConfig | None = None
    """Chunk schedule (default: the addon's)."""
    frames_per_input: int = Field(default=1, ge=1)
    """Output frames per input frame (Decoder; a Vocoder gives ``hop_length`` samples per frame)."""
    outputs: list[str] | None = None
    """Outputs stacked along the channels, ``[1, F]`` ones as one channel (default: the first only)."""


class FrameNetworkBlock(StreamableBlock):
    """Shared body of Decoder and Vocoder: one network over windows of frames."""

    transforms = True

    Options = FrameNetworkOptions
    role = "decoder"
    samples_per_frame = 1

    @classmethod
    def network_name(cls, options: Any, networks: dict[str, NetworkConfig], addon: str) -> str:
        """The network to run: the ``network`` option, else the addon's only one with this block's role."""
        if options.network:
            return str(options.network)
        found = [name for name, net in networks.items() if net.role == cls.role]
        if len(found) != 1:
            raise AddonError(f"{cls.__name__}: addon {addon!r} has {len(found)} networks with role {cls.role!r} "
                             f"({found}); name one with the 'network' option")
        return found[0]

    @classmethod
    def contract(cls, options: Any, config: AddonConfig, path: str) -> Contract:
        """Reads the network's inputs that do not run along the frames (e.g. a speaker embedding ``g``)."""
        network = config.networks.get(cls.network_name(options, config.networks, config.name))
        if network is None:
            return Contract()
        return Contract(tuple(TensorSpec(s.name, s.dtype, len(s.shape) or None) for s in network.inputs
                              if s.name != options.mask_input and not is_frames(s)))

    def __init__(self, context: BlockContext | None = None, options: BaseModel | None = None) -> None:
        super().__init__(context, options)
        context = needs_context(self, context)
        name = self.network_name(self.options, {n: context.network_config(n) for n in context.network_names()},
                                 context.name)
        self.network = context.network(name)
        specs = [s for s in self.network.config.inputs if s.name != self.options.mask_input]
        self.frame_inputs = [s.name for s in specs if is_frames(s)]
        self.static_inputs = [s.name for s in specs if not is_frames(s)]
        """Per-utterance inputs (e.g. a speaker embedding), read from the utterance's tensors."""
        self.frame_input = self.frame_inputs[0]
        self.output = self.network.output_names[0]
        self.outputs = self.options.outputs or [self.output]
        self.has_mask = self.options.mask_input in self.network.input_names
        self.samples_per_frame = self.options.frames_per_input

    def run_frames(self, frames: np.ndarray, request: Request | None = None,
                   static: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Run the network on ``frames``; several frame inputs take consecutive channel ranges; ``static``:
        the per-utterance inputs."""
        if len(self.frame_inputs) == 1:
            feeds = {self.frame_input: frames}
        else:
            bounds = np.cumsum([0, *(self._channels(name) for name in self.frame_inputs)])
            pieces = zip(self.frame_inputs, bounds[:-1], bounds[1:], strict=True)
            feeds = {name: frames[..., lo:hi, :] for name, lo, hi in pieces}
        if self.has_mask:
            feeds[self.options.mask_input] = np.ones((1, 1, frames.shape[-1]), np.float32)
        feeds.update(static or {})
        results = self.network.run(feeds, request.tally if request is not None else None)
        if len(self.outputs) == 1:
            return results[self.outputs[0]]
        parts = [results[name] for name in self.outputs]
        return np.concatenate([p if p.ndim == 3 else p[:, None, :] for p in parts], axis=1)

    def stream(
        self, upstream: Iterator[Chunk] | None, inputs: Tensors, request: Request
    ) -> Iterator[Chunk]:
        upstream = needs_upstream(self, upstream)
        schedule = self.schedule_for(request, self.options.schedule)
        static = {name: np.asarray(inputs[name], dtype=spec.dtype) for name, spec in self._static_specs().items()}

        def run(frames: np.ndarray) -> np.ndarray:
            return self.run_frames(frames, request, static)

        window = self.network.fixed_window
        room = request.room if schedule.adaptive else None
        for chunk in windowed(upstream, run, schedule, self.options.context, self.samples_per_frame, window, room):
            if request.cancelled():
                return
            yield chunk

    def _static_specs(self) -> dict[str, Any]:
        return {s.name: s for s in self.network.config.inputs if s.name in self.static_inputs}

    def warm_up(self) -> None:
        if self.network.fixed_window is not None:
            self.network.warm_up()  # every fixed size once
            return
        frames = np.zeros((1, sum(self._channels(name) for name in self.frame_inputs), 16), np.float32)
        static = {name: np.zeros([d if isinstance(d, int) else 1 for d in spec.shape], spec.dtype)
                  for name, spec in self._static_specs().items()}
        self.run_frames(frames, None, static)

    def _channels(self, name: str) -> int:
        spec = next(s for s in self.network.config.inputs if s.name == name)
        return next((d for d in spec.shape[1:2] if isinstance(d, int)), 1)


class Decoder(FrameNetworkBlock):
    """Acoustic frames on demand through the addon's decoder network."""

    role = "decoder"


class Vocoder(FrameNetworkBlock):
    """Frames to audio: chunks of float32 samples, ``hop_length`` per frame."""

    role = "vocoder"

    def __init__(self, context: BlockContext | None = None, options: BaseModel | None = None) -> None:
        super().__init__(context, options)
        self.samples_per_frame = needs_context(self, context).hop_length

    def run_frames(self, frames: np.ndarray, request: Request | None = None,
                   static: dict[str, np.ndarray] | None = None) -> np.ndarray:
        return super().run_frames(frames, request, static).reshape(-1).astype(np.float32, copy=False)
