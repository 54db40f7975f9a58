"""The one engine: an addon's stack cut into parts, every block scoped to its contract.

Every runtime runs an utterance through the same parts of the stack:

- the *encoder part*: the sequence block of the stack's first StreamablePipeline, run once per
  utterance on its ids and controls (``encode``);
- the *stream parts*: the top-level blocks in order, the pipeline's streamable block in its place,
  each pulling chunks from the one before it (``stream``).

The in-process ``Voice`` builds every part in one Engine; a Serve stage builds the encoder part (or an
A/B variant of it) or a group of stream parts, and is fed the same tensors and chunks over Ray. Either
way a stream part holds exactly the tensors its blocks declare, each block sees exactly its own
contract (``blocks.contracts.Scoped``), what a block learns that times the marks travels in its chunks'
metadata, and each part counts its own network calls into the chunks' tally. So a block cannot
behave differently when served: a read it did not declare fails in both, at the warm-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from blocks.backends.base import Tally, TallyCounts
from blocks.contracts import Contract, check_stack, scoped, utterance_tensors
from blocks.core import Chunk, Request, SequenceBlock, StreamableBlock
from blocks.errors import AddonError, ContractError, StackError
from blocks.marks import TIMING_KEYS
from blocks.spec import Node, parse_stack

if TYPE_CHECKING:
    from blocks.addon import Addon
    from blocks.config import AddonConfig
    from blocks.session import Job

Address = tuple[int | str, ...]
"""Where a part sits in the stack: a top-level index, then child slot names."""
ENCODER_SLOT, STREAM_SLOT = "sequence_block", "streamable_block"


@dataclass(frozen=True)
class Part:
    """One part of the stack: its address and its parsed (and contract-checked) entry."""

    address: Address
    node: Node

    @property
    def contract(self) -> Contract:
        if self.node.contract is None:
            raise AddonError(f"{self.node.path}: the stack was not checked against its addon")
        return self.node.contract


@dataclass(frozen=True)
class Layout:
    """The stack cut into its encoder part (if the first entry is a StreamablePipeline) and stream parts."""

    encoder: Part | None
    streams: tuple[Part, ...]

    @classmethod
    def of(cls, nodes: Sequence[Node], config: AddonConfig) -> Layout:
        first = nodes[0]
        if ENCODER_SLOT in first.children and STREAM_SLOT in first.children:
            encoder = Part((0, ENCODER_SLOT), _single(first, ENCODER_SLOT))
            streams = [Part((0, STREAM_SLOT), _single(first, STREAM_SLOT))]
        else:
            encoder, streams = None, [Part((0,), first)]
        streams += [Part((index,), node) for index, node in enumerate(nodes[1:], start=1)]
        layout = cls(encoder, tuple(streams))
        layout.check_boundaries(set(utterance_tensors(config)))
        return layout

    def stream_reads(self, indices: Iterable[int]) -> frozenset[str]:
        """The utterance tensors a group of stream parts reads (what it writes itself it need not be sent)."""
        reads: set[str] = set()
        written: set[str] = set()
        for index in sorted(indices):
            contract = self.streams[index].contract
            reads |= contract.read_names - written
            written |= contract.write_names
        return frozenset(reads)

    def check_boundaries(self, available: set[str]) -> None:
        """A stream part reads only the utterance's tensors (``available``), the encoder's, and its own
        blocks' writes: a stage is sent nothing else, so the in-process chain must not rely on more."""
        if self.encoder is not None:
            available |= self.encoder.contract.write_names
        for part in self.streams:
            if missing := part.contract.read_names - available:
                raise ContractError(part.node.path, f"reads {sorted(missing)}, written by another stream part: "
                                                    f"a stream part may read only the utterance's tensors and "
                                                    f"the encoders' ({sorted(available)})")


def _single(node: Node, slot: str) -> Node:
    child = node.children[slot]
    if not isinstance(child, Node):
        raise AddonError(f"{node.path}.{slot}: expected one block")
    return child


def variant_node(addon: Addon, block_type: str) -> Node:
    """The stack's encoder part replaced by the registered SequenceBlock ``block_type`` (an A/B variant),
    parsed and checked against the addon exactly as its own stack is."""
    spec = addon.config.stack if isinstance(addon.config.stack, list) else [addon.config.stack]
    first = spec[0] if spec and isinstance(spec[0], dict) else {}
    if ENCODER_SLOT not in first:
        raise AddonError(f"addon {addon.name!r}: variants replace the encoders, and the stack's first entry "
                         f"has no {ENCODER_SLOT!r}")
    varied = [{**first, ENCODER_SLOT: {"type": block_type}}, *spec[1:]]
    try:
        nodes = parse_stack(varied)
        check_stack(nodes, addon.config)
    except StackError as error:
        raise AddonError(f"addon {addon.name!r}, variant {block_type!r}: {error}") from None
    encoder = Layout.of(nodes, addon.config).encoder
    assert encoder is not None
    return encoder.node


@dataclass(frozen=True)
class Encoded:
    """An utterance after the encoder part: every tensor so far, and what its network calls carried."""

    tensors: dict[str, np.ndarray]
    tally: TallyCounts


class Engine:
    """Built parts of one addon's stack: the encoder part, stream parts, or both.

    ``encoder``: build the encoder part (``variant``: a registered SequenceBlock in its place);
    ``streams``: indices of the stream parts to build, in order (None: all of them).
    """

    def __init__(self, addon: Addon, encoder: bool = True, streams: Sequence[int] | None = None,
                 variant: str | None = None) -> None:
        self.addon = addon
        self.layout = Layout.of(addon.stack_nodes, addon.config)
        context = addon.context()
        self.encoder_node: Node | None = None
        self.encoder: SequenceBlock | None = None
        if encoder and self.layout.encoder is not None:
            self.encoder_node = variant_node(addon, variant) if variant else self.layout.encoder.node
            block = self.encoder_node.build(context)
            if not isinstance(block, SequenceBlock):
                raise AddonError(f"{self.encoder_node.path}: {type(block).__name__} is not a SequenceBlock")
            self.encoder = block
        self.indices = tuple(range(len(self.layout.streams)) if streams is None else streams)
        self.parts = [self.layout.streams[i] for i in self.indices]
        self.blocks: list[StreamableBlock] = []
        for part in self.parts:
            block = part.node.build(context)
            if not isinstance(block, StreamableBlock):
                raise AddonError(f"{part.node.path}: {type(block).__name__} is not a StreamableBlock")
            self.blocks.append(block)
        self.reads = self.layout.stream_reads(self.indices)
        """The utterance tensors this engine's stream parts read: all a stage holding them is sent."""

    @property
    def whole(self) -> bool:
        """Whether this engine runs an utterance from its ids to audio by itself."""
        return (self.encoder is not None or self.layout.encoder is None) and \
            self.indices == tuple(range(len(self.layout.streams)))

    def encode(self, tensors: Mapping[str, np.ndarray], request: Request) -> Encoded:
        """The encoder part on one utterance's tensors and its voice's (unchanged when the stack has none)."""
        board = {**self.addon.voice_tensors(request.voice), **tensors}
        own = Tally()
        if self.encoder is not None and self.encoder_node is not None:
            contract = self.encoder_node.contract
            outputs = self.encoder.run(scoped(board, contract, self.encoder_node.path), replace(request, tally=own))
            if contract is not None and (extra := set(outputs) - contract.write_names):
                raise ContractError(self.encoder_node.path, f"returns tensors its contract does not declare: "
                                                            f"{sorted(extra)}")
            board.update(outputs)
        return Encoded(board, own.counts())

    def stream(self, tensors: Mapping[str, np.ndarray], request: Request,
               upstream: Iterator[Chunk] | None = None) -> Iterator[Chunk]:
        """This engine's stream parts on one utterance: chunks, each carrying the tally of the network calls
        behind it and the timing tensors learned so far (upstream chunks' included)."""
        tensors = {**self.addon.voice_tensors(request.voice), **tensors}
        missing = self.reads - set(tensors)
        if missing:
            raise ContractError(self.parts[0].node.path if self.parts else "$.stack",
                                f"the utterance lacks tensors these blocks read: {sorted(missing)}")
        board = {name: tensors[name] for name in self.reads}
        own, reported = Tally(), Tally()
        request = replace(request, tally=own)
        carried: dict[str, np.ndarray] = {}
        chunks = self._absorb(upstream, own, carried) if upstream is not None else None
        for block, part in zip(self.blocks, self.parts, strict=True):
            chunks = block.stream(chunks, scoped(board, part.contract, part.node.path), request)
        if chunks is None:
            raise AddonError(f"addon {self.addon.name!r}: the engine holds no stream part")
        for chunk in chunks:
            timing = {**carried, **{name: board[name] for name in TIMING_KEYS if name in board}}
            chunk.meta = replace(chunk.meta, timing=timing, tally=own.since(reported))
            yield chunk

    @staticmethod
    def _absorb(upstream: Iterator[Chunk], tally: Tally, carried: dict[str, np.ndarray]) -> Iterator[Chunk]:
        """Upstream chunks, their tally counted into this part's and their timing carried forward."""
        for chunk in upstream:
            if chunk.meta.tally is not None:
                tally.merge(chunk.meta.tally)
            carried.update(chunk.meta.timing)
            yield chunk

    def warm_up(self, probe: Iterable[Job] = ()) -> None:
        """Every block's own warm-up, then the ``probe`` utterances through what this engine holds: encoded,
        and streamed to the end when it holds the whole chain."""
        if self.encoder is not None:
            self.encoder.warm_up()
        for block in self.blocks:
            block.warm_up()
        if self.encoder is None and not self.whole:
            return
        for job in probe:
            request = job.request()
            encoded = self.encode(job.tensors(), request)
            if self.whole:
                for _ in self.stream(encoded.tensors, request):
                    pass

    def close(self) -> None:
        """Stop what the blocks and the addon's networks started."""
        for block in [*([self.encoder] if self.encoder is not None else []), *self.blocks]:
            block.close()
        self.addon.close()
