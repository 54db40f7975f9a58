"""Decoder and vocoder blocks: a frame network run on context windows of the upstream frames."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from blocks.components.windowed import windowed
from blocks.config import ScheduleConfig
from blocks.context import BlockContext
from blocks.core import Chunk, Request, StreamableBlock, Tensors, needs_context, needs_upstream
from blocks.errors import AddonError


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

    def __init__(self, context: BlockContext | None = None, options: BaseModel | None = None) -> None:
        super().__init__(context, options)
        context = needs_context(self, context)
        name = self.options.network or self._default_network(context)
        self.network = context.network(name)
        self.frame_inputs = [n for n in self.network.input_names if n != self.options.mask_input]
        self.frame_input = self.frame_inputs[0]
        self.output = self.network.output_names[0]
        self.outputs = self.options.outputs or [self.output]
        self.has_mask = self.options.mask_input in self.network.input_names
        self.samples_per_frame = self.options.frames_per_input

    def _default_network(self, context: BlockContext) -> str:
        found = context.networks_with_role(self.role)
        if len(found) != 1:
            raise AddonError(
                f"{type(self).__name__}: addon {context.name!r} has {len(found)} networks with role "
                f"{self.role!r} ({found}); name one with the 'network' option"
            )
        return found[0]

    def run_frames(self, frames: np.ndarray, request: Request | None = None) -> np.ndarray:
        """Run the network on ``frames``; several frame inputs take consecutive channel ranges."""
        if len(self.frame_inputs) == 1:
            feeds = {self.frame_input: frames}
        else:
            bounds = np.cumsum([0, *(self._channels(name) for name in self.frame_inputs)])
            pieces = zip(self.frame_inputs, bounds[:-1], bounds[1:], strict=True)
            feeds = {name: frames[..., lo:hi, :] for name, lo, hi in pieces}
        if self.has_mask:
            feeds[self.options.mask_input] = np.ones((1, 1, frames.shape[-1]), np.float32)
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

        def run(frames: np.ndarray) -> np.ndarray:
            return self.run_frames(frames, request)

        window = self.network.fixed_window
        room = request.room if schedule.adaptive else None
        for chunk in windowed(upstream, run, schedule, self.options.context, self.samples_per_frame, window, room):
            if request.cancelled():
                return
            yield chunk

    def warm_up(self) -> None:
        if self.network.fixed_window is not None:
            self.network.warm_up()  # every fixed size once
            return
        frames = np.zeros((1, sum(self._channels(name) for name in self.frame_inputs), 16), np.float32)
        self.run_frames(frames)

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

    def run_frames(self, frames: np.ndarray, request: Request | None = None) -> np.ndarray:
        return super().run_frames(frames, request).reshape(-1).astype(np.float32, copy=False)
