"""Kokoro's two blocks: the encoders (one SequenceBlock) and the decoder (one StreamableBlock).

``KokoroEncoders`` runs, once per utterance, what the package's graph computes before its decoder: the
voice's style row for the utterance's length, the ``text`` network (durations, text and prosody encodings),
the encodings repeated by the durations, the ``prosody`` network (F0 and energy over the whole utterance:
an LSTM and instance norms) and the ``source`` network (the harmonic source, a phase summed over the whole
utterance).

``KokoroDecoder`` runs the ``decoder`` network on the whole utterance and yields its audio in chunks. It
cannot start earlier and stay faithful: its instance norms and int8 quantisers take statistics over the whole
utterance, so decoding a part gives another sound (-1 to 15 dB against the whole graph). Utterances are
sentences, so a text's first audio comes after its first sentence.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from blocks.config import AddonConfig
from blocks.contracts import Contract, TensorSpec
from blocks.core import Chunk, ChunkMeta, NoOptions, Request, SequenceBlock, StreamableBlock, Tensors, needs_context
from voxstack_kokoro_ja.graph import STYLE_SIZE

STYLE_TABLE = "style_table"
"""The voice's style table [rows, 1, 256], one row per utterance length (a voice tensor)."""
FRAME_TENSORS = (TensorSpec("text_frames", "float32", 3), TensorSpec("f0", "float32", 2),
                 TensorSpec("energy", "float32", 2), TensorSpec("source", "float32", 3),
                 TensorSpec("style", "float32", 2))


def style_row(table: np.ndarray, ids: int) -> np.ndarray:
    """The style [1, 256] of an utterance of ``ids`` ids with its two pads: row ``ids - 3``, clamped (the
    package's ``style[min(tokens, rows) - 1]``)."""
    tokens = max(ids - 2, 1)
    return np.ascontiguousarray(table[min(tokens, table.shape[0]) - 1].reshape(1, STYLE_SIZE), np.float32)


def repeat(encoding: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """``encoding`` [1, C, ids] with each id's column repeated its duration's times: [1, C, frames]."""
    return np.ascontiguousarray(encoding[..., np.repeat(np.arange(durations.shape[0]), durations)])


class KokoroEncoders(SequenceBlock):
    """Style row, text network, repetition by durations, prosody and source networks: once per utterance."""

    Options = NoOptions

    @classmethod
    def contract(cls, options: Any, config: AddonConfig, path: str) -> Contract:
        return Contract(
            reads=(TensorSpec("input", "int64", 2), TensorSpec("scales", "float32", 1), TensorSpec(STYLE_TABLE)),
            writes=(TensorSpec("durations", "int64", 1), TensorSpec("text_enc", "float32", 3),
                    TensorSpec("prosody_enc", "float32", 3), *FRAME_TENSORS))

    def warm_up(self) -> None:
        context = needs_context(self, self.context)
        for name in ("text", "prosody", "source"):
            context.network(name).warm_up()

    def run(self, inputs: Tensors, request: Request) -> dict[str, np.ndarray]:
        context = needs_context(self, self.context)
        ids = np.asarray(inputs["input"], np.int64)
        style = style_row(np.asarray(inputs[STYLE_TABLE], np.float32), ids.shape[1])
        text = context.network("text").run({"input": ids, "style": style, "scales": inputs["scales"]}, request.tally)
        durations = np.asarray(text["durations"], np.int64)
        prosody_frames = repeat(text["prosody_enc"], durations)
        prosody = context.network("prosody").run({"prosody_frames": prosody_frames, "style": style}, request.tally)
        source = context.network("source").run({"f0": prosody["f0"]}, request.tally)
        return {"style": style, "durations": durations, "text_enc": text["text_enc"],
                "prosody_enc": text["prosody_enc"], "text_frames": repeat(text["text_enc"], durations),
                "f0": prosody["f0"], "energy": prosody["energy"], "source": source["source"]}


class KokoroDecoderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chunk_ms: float = Field(default=200.0, gt=0.0, le=10000.0)
    """Audio per chunk yielded (the whole utterance is decoded in one call before the first)."""


class KokoroDecoder(StreamableBlock):
    """The decoder and generator over the whole utterance, its audio yielded in chunks."""

    Options = KokoroDecoderOptions

    @classmethod
    def contract(cls, options: Any, config: AddonConfig, path: str) -> Contract:
        return Contract(reads=FRAME_TENSORS)

    def warm_up(self) -> None:
        needs_context(self, self.context).network("decoder").warm_up()

    def stream(self, upstream: Iterator[Chunk] | None, inputs: Tensors, request: Request) -> Iterator[Chunk]:
        context = needs_context(self, self.context)
        feeds = {spec.name: np.asarray(inputs[spec.name], np.float32) for spec in FRAME_TENSORS}
        audio = context.network("decoder").run(feeds, request.tally)["audio"].reshape(-1).astype(np.float32)
        step = max(1, round(self.options.chunk_ms * context.sample_rate / 1000))
        total = int(audio.shape[0])
        for start in range(0, max(total, 1), step):
            piece = audio[start:start + step]
            yield Chunk(piece, start, start + step >= total, ChunkMeta(frames=total))
