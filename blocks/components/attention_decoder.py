"""AttentionDecoder: the autoregressive loop of an attention-based (Tacotron-style) acoustic model.

The addon's step network takes the previous frame and explicit state tensors and returns
a few frames, a stop probability and the next state. State is carried by name: an input
``x`` is fed the output ``x_next`` of the previous step (zeros at the first step), the input
``frame`` the last frame produced, and every other input is read from the utterance's
tensors (e.g. the encoder's memory).

Speech marks: the encoder's predicted ``durations`` (if any) do not time this model's speech.
Instead, as it decodes, the block writes ``token_starts`` in the utterance's tensors, which time the
marks wherever they exist:
the first frame whose attention argmax reached each token (attention only moves forward), so
word marks follow the decoding, a little ahead of the audio. When decoding ends, the frames each
token got are left as ``attention_durations``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from blocks.components.network_block import bind_shapes
from blocks.components.windowed import chunk_sizes
from blocks.config import AddonConfig, ScheduleConfig
from blocks.context import BlockContext
from blocks.contracts import Contract, TensorSpec, network_contract
from blocks.core import Chunk, ChunkMeta, Request, StreamableBlock, Tensors, needs_context


class AttentionDecoderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    network: str = "step"
    """The per-step network."""
    frame_input: str = "frame"
    frames_output: str = "frames"
    """Output ``[1, channels, r]``: the step's frames."""
    stop_output: str = "stop"
    """Output: probability that this step is the last."""
    tokens_output: str | None = "tokens"
    """Output: the token each frame attended most (for ``attention_durations``)."""
    length_input: str = "m_p"
    """Input whose last dimension is the number of tokens attended over."""
    stop_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    max_steps: int = Field(default=1500, ge=1)
    """Hard cap on decoder steps per utterance."""
    max_steps_per_token: float = Field(default=4.0, gt=0.0)
    """Cap relative to the input length (whichever cap is lower applies)."""
    schedule: ScheduleConfig | None = None
    """Frames per chunk (default: the addon's)."""


class AttentionDecoder(StreamableBlock):
    """Runs the step network until its stop token (or a step cap), yielding frames as they come."""

    Options = AttentionDecoderOptions

    @classmethod
    def contract(cls, options: Any, config: AddonConfig, path: str) -> Contract:
        """Reads the step network's fixed inputs (not its carried state) and the attended length."""
        network = network_contract(options.network, config, path)
        outputs = {spec.name for spec in network.writes}
        carried = {spec.name for spec in network.reads if f"{spec.name}_next" in outputs} | {options.frame_input}
        reads = tuple(spec for spec in network.reads if spec.name not in carried)
        if options.length_input not in {spec.name for spec in reads}:
            reads += (TensorSpec(options.length_input),)
        writes = (TensorSpec("token_starts", "int64", 1), TensorSpec("attention_durations", "int64", 1))
        return Contract(reads, writes)

    def __init__(self, context: BlockContext | None = None, options: BaseModel | None = None) -> None:
        super().__init__(context, options)
        self.network = needs_context(self, context).network(self.options.network)
        outputs = set(self.network.output_names)
        self.carried = [n for n in self.network.input_names if f"{n}_next" in outputs]

    def initial_state(self, inputs: Tensors) -> Tensors:
        """Zeros for every carried input and the first frame, shaped from the declared specs."""
        bound = bind_shapes(self.network.config.inputs, inputs)
        state: Tensors = {}
        for spec in self.network.config.inputs:
            if spec.name in self.carried or spec.name == self.options.frame_input:
                shape = tuple(bound[d] if isinstance(d, str) else d for d in spec.shape)
                state[spec.name] = np.zeros(shape, dtype=spec.dtype)
        return state

    def stream(
        self, upstream: Iterator[Chunk] | None, inputs: Tensors, request: Request
    ) -> Iterator[Chunk]:
        opts = self.options
        state = self.initial_state(inputs)
        fixed = {n: inputs[n] for n in self.network.input_names if n not in state}
        schedule = self.schedule_for(request, opts.schedule)
        sizes = chunk_sizes(schedule)
        wanted, position, pending, tokens = next(sizes), 0, [], []
        starts: list[int] = []
        decoded = 0
        length = int(np.shape(inputs[opts.length_input])[-1])
        cap = max(1, min(opts.max_steps, int(length * opts.max_steps_per_token)))
        for step in range(1, cap + 1):
            if request.cancelled():
                return
            out = self.network.run({**fixed, **state})
            frames = out[opts.frames_output].astype(np.float32, copy=False)
            pending.append(frames)
            if opts.tokens_output:
                attended = np.asarray(out[opts.tokens_output]).reshape(-1)
                tokens.append(attended)
                for offset, token in enumerate(attended.tolist()):
                    starts.extend([decoded + offset] * max(0, min(int(token), length - 1) + 1 - len(starts)))
                inputs["token_starts"] = np.asarray(starts, dtype=np.int64)
            decoded += int(frames.shape[-1])
            state = {n: out[f"{n}_next"] for n in self.carried}
            state[opts.frame_input] = frames[..., -1]
            stopped = float(np.asarray(out[opts.stop_output]).reshape(-1)[0]) > opts.stop_threshold
            last = stopped or step == cap
            if last and not stopped:
                warnings.warn(
                    f"AttentionDecoder: no stop token after {cap} steps; the utterance is cut at "
                    f"{position + sum(p.shape[-1] for p in pending)} frames",
                    RuntimeWarning,
                    stacklevel=2,
                )
            count = sum(p.shape[-1] for p in pending)
            if last or count >= wanted:
                data = np.concatenate(pending, axis=-1)
                meta = ChunkMeta(steps=step, stopped=stopped)
                if last and tokens:
                    inputs["attention_durations"] = np.bincount(np.concatenate(tokens), minlength=length)
                yield Chunk(data, position, last, meta)
                if last:
                    return
                position += count
                pending, wanted = [], next(sizes)
