"""What a frontend makes of a piece of text: an utterance's phoneme ids and the words they belong to."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blocks.components.text import Span


@dataclass(frozen=True)
class Word:
    """One word of an utterance: where it is in the text, its first id, and its phonemes."""

    span: Span
    first_id: int
    """Index of the word's first phoneme id in the utterance's ids."""
    phonemes: str


@dataclass(frozen=True)
class Utterance:
    """One complete utterance: its place in the input text, its phoneme ids and its words."""

    span: Span
    ids: tuple[int, ...]
    words: tuple[Word, ...] = ()
    id_stride: int = 2
    """Ids per phoneme (2 where a pad id follows each phoneme)."""

    def tensors(self) -> dict[str, np.ndarray]:
        """What the utterance starts the block chain with: ``input`` [1, ids] and ``input_lengths`` [1]."""
        return {
            "input": np.asarray([self.ids], dtype=np.int64),
            "input_lengths": np.asarray([len(self.ids)], dtype=np.int64),
        }
