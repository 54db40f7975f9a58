"""Containers: blocks made of blocks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel

from blocks.contracts import scoped
from blocks.core import Block, Chunk, Request, SequenceBlock, StreamableBlock, Tensors
from blocks.errors import AddonError

if TYPE_CHECKING:
    from blocks.context import BlockContext


class SequenceBlockContainer(SequenceBlock):
    """Nested SequenceBlocks run in order; each sees the tensors produced before it."""

    slots = {"blocks": (SequenceBlock, True)}

    def __init__(
        self,
        context: BlockContext | None = None,
        options: BaseModel | None = None,
        blocks: list[SequenceBlock] | None = None,
    ) -> None:
        super().__init__(context, options)
        self.blocks: list[SequenceBlock] = list(blocks or [])

    def children(self) -> list[Block]:
        return list(self.blocks)

    def run(self, inputs: Tensors, request: Request) -> dict[str, np.ndarray]:
        tensors = dict(inputs)
        produced: dict[str, np.ndarray] = {}
        for block in self.blocks:
            outputs = block.run(scoped(tensors, block.declared, block.path), request)
            tensors.update(outputs)
            produced.update(outputs)
        return produced


class StreamableStack(StreamableBlock):
    """StreamableBlocks chained: each pulls chunks from the one before it."""

    slots = {"stack": (StreamableBlock, True)}

    def __init__(
        self,
        context: BlockContext | None = None,
        options: BaseModel | None = None,
        stack: list[StreamableBlock] | None = None,
    ) -> None:
        super().__init__(context, options)
        self.stack: list[StreamableBlock] = list(stack or [])

    def children(self) -> list[Block]:
        return list(self.stack)

    def stream(
        self, upstream: Iterator[Chunk] | None, inputs: Tensors, request: Request
    ) -> Iterator[Chunk]:
        for block in self.stack:
            upstream = block.stream(upstream, scoped(inputs, block.declared, block.path), request)
        if upstream is None:
            raise AddonError("a StreamableStack needs at least one block")
        return upstream


class StreamablePipeline(StreamableBlock):
    """Exactly one SequenceBlock, then one StreamableBlock fed by its tensors.

    The sequence block's outputs are merged into the utterance's tensors, so
    later blocks (and the caller, for speech marks) can read them.
    """

    slots = {"sequence_block": (SequenceBlock, False), "streamable_block": (StreamableBlock, False)}

    def __init__(
        self,
        context: BlockContext | None = None,
        options: BaseModel | None = None,
        sequence_block: SequenceBlock | None = None,
        streamable_block: StreamableBlock | None = None,
    ) -> None:
        super().__init__(context, options)
        if sequence_block is None or streamable_block is None:
            raise AddonError("StreamablePipeline needs a sequence_block and a streamable_block")
        self.sequence_block = sequence_block
        self.streamable_block = streamable_block

    def children(self) -> list[Block]:
        return [self.sequence_block, self.streamable_block]

    def stream(
        self, upstream: Iterator[Chunk] | None, inputs: Tensors, request: Request
    ) -> Iterator[Chunk]:
        sequence, streamable = self.sequence_block, self.streamable_block
        inputs.update(sequence.run(scoped(inputs, sequence.declared, sequence.path), request))
        yield from streamable.stream(upstream, scoped(inputs, streamable.declared, streamable.path), request)
