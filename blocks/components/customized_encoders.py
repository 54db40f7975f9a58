"""CustomizedEncoders: the addon's encoder networks run through their own tuned onnxruntime sessions.

Same networks, same inputs and outputs as ``Encoders``, run another way: each ONNX encoder
gets a session with full graph optimisation (``ORT_ENABLE_ALL``: constant folding, node fusions,
layout changes) whose optimised model is cached next to nothing else, in a cache folder, so
later loads skip the optimisation pass; and a dedicated intra-op thread count (default 1).
Why: a served encoder replica shares a few cores with other stage replicas; one thread per
session avoids oversubscription, and the fused graph wins back single-thread speed.
Non-ONNX networks fall back to the addon's own loaded network.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from blocks.components.encoders import encoder_names, encoders_contract
from blocks.components.network_block import feeds_for
from blocks.config import AddonConfig
from blocks.context import BlockContext
from blocks.contracts import Contract
from blocks.core import Request, SequenceBlock, Tensors, needs_context


class CustomizedEncodersOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    networks: list[str] | None = None
    """Encoder networks to run, in order (default: every network with role ``encoder``)."""
    threads: int = Field(default=1, ge=1)
    """Intra-op threads per session."""
    cache_dir: str | None = None
    """Where optimised models are cached (default: ``$VOXSTACK_CACHE`` or the temp folder)."""


class _TunedSession:
    """One ONNX network in a fully optimised, cached session."""

    def __init__(self, context: BlockContext, name: str, threads: int, cache: Path) -> None:
        import onnxruntime as ort

        from blocks.backends.onnx import session_options

        self.network = context.network(name)  # validated declaration (and fallback runner)
        source = self.network.path
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
        cached = cache / f"{context.name}-{name}-{digest}.opt.onnx"
        options = session_options(threads)  # the backend's rules: quiet, no threads spinning between calls
        options.inter_op_num_threads = 1
        if cached.is_file():
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            path = cached
        else:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            cache.mkdir(parents=True, exist_ok=True)
            options.optimized_model_filepath = str(cached)
            path = source
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        self.outputs = self.network.output_names

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.outputs, self.session.run(self.outputs, feeds), strict=True))


class CustomizedEncoders(SequenceBlock):
    """Runs the encoder networks in order through tuned sessions (drop-in for ``Encoders``)."""

    Options = CustomizedEncodersOptions

    def __init__(self, context: BlockContext | None = None, options: BaseModel | None = None) -> None:
        super().__init__(context, options)
        context = needs_context(self, context)
        names = encoder_names(context, self.options.networks)
        root = self.options.cache_dir or os.environ.get("VOXSTACK_CACHE") or tempfile.gettempdir()
        cache = Path(root) / "voxstack-ort"
        self.runners = [
            _TunedSession(context, n, self.options.threads, cache) if context.network_config(n).format == "onnx"
            else context.network(n)
            for n in names
        ]

    @classmethod
    def contract(cls, options: Any, config: AddonConfig, path: str) -> Contract:
        return encoders_contract(options.networks, config, path)

    def run(self, inputs: Tensors, request: Request) -> Tensors:
        tensors = dict(inputs)
        produced: Tensors = {}
        for runner in self.runners:
            network = runner.network if isinstance(runner, _TunedSession) else runner
            outputs = runner.run(feeds_for(network, tensors, request))
            tensors.update(outputs)
            produced.update(outputs)
        return produced
