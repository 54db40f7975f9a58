"""Faithfulness measures: how far one rendering of audio is from another.

``snr_db`` is the one signal-to-noise ratio the project reports; ``chunked_and_whole`` renders a text in an
addon's chunk schedule and as one chunk per utterance (the same encoding, seed and noise), which a stack whose
contexts cover its networks' receptive fields makes equal. ``voxstack addons check`` runs it on sentences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blocks.options import SynthesisOptions
from blocks.voice import WHOLE, Voice

FLOOR_DB = 60.0
"""Chunked audio at or above this SNR against the whole, at the same length, counts as equal."""

PROBES = (
    "Hello.",
    "The quick brown fox jumps over the lazy dog, and then it runs back into the forest before anyone sees it.",
    "On March 3rd 2024 at 10:45 a.m. Dr. Smith paid $1,234.56 for 17 books (about 72 each).",
    "Is this really what you wanted? No! It is not; but we will make it work anyway.",
    "a long line without any punctuation at all that keeps going and going so the stream must be cut into many "
    "chunks while the voice keeps speaking without a single pause for breath until the very end of it",
)
"""Default sentences for ``voxstack addons check`` (English): short, long, numbers, questions, unpunctuated."""


def snr_db(test: np.ndarray, reference: np.ndarray) -> float:
    """10·log10 of the reference's energy over the difference's (capped where they are identical)."""
    error = float(np.sum((np.asarray(test, np.float64) - np.asarray(reference, np.float64)) ** 2))
    return float(10 * np.log10(float(np.sum(np.asarray(reference, np.float64) ** 2)) / max(error, 1e-30)))


def chunked_and_whole(voice: Voice, text: str, voice_name: str | None = None,
                      seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """``text``'s audio in the addon's chunk schedule and in one chunk per utterance."""
    session = voice.session(text, SynthesisOptions(seed=seed, voice=voice_name))
    chunked, whole = [], []
    for job in session.jobs():
        request = job.request()
        encoded = voice.engine.encode(job.tensors(), request)
        chunked += [c.data for c in voice.engine.stream(encoded.tensors, request)]
        request.schedule = WHOLE
        whole += [c.data for c in voice.engine.stream(encoded.tensors, request)]
    return np.concatenate(chunked), np.concatenate(whole)


@dataclass(frozen=True)
class Compared:
    """One sentence: chunked against whole."""

    text: str
    samples: int
    same_length: bool
    snr_db: float | None
    """None where the lengths differ."""

    @property
    def equal(self) -> bool:
        return self.same_length and self.snr_db is not None and self.snr_db >= FLOOR_DB


def compare(voice: Voice, text: str, voice_name: str | None = None) -> Compared:
    chunked, whole = chunked_and_whole(voice, text, voice_name)
    same = chunked.shape == whole.shape
    return Compared(text, int(whole.shape[0]), same, snr_db(chunked, whole) if same else None)
