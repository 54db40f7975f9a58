"""Shared fixtures: the default voice, loaded once per test session."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from blocks import load_addon
from blocks.addon import addon_path
from blocks.voice import Voice

NOISE_OFF = {"noise_scale": 0.0, "noise_w": 0.0}


def snr_db(test: np.ndarray, reference: np.ndarray) -> float:
    """Signal-to-noise ratio of ``test`` against ``reference`` (same length required)."""
    assert test.shape == reference.shape, (test.shape, reference.shape)
    error = np.sum((test.astype(np.float64) - reference) ** 2)
    return float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / max(error, 1e-30)))


def voice_with_stack(name: str, stack: list, warm_up: bool = True) -> Voice:
    """The addon ``name`` rebuilt with another stack (same networks and config); ``warm_up=False`` leaves
    its blocks untouched until the test runs them (e.g. statistics that count from zero)."""
    return Voice.load(name, overrides={"stack": stack}, warm_up=warm_up)


def bare_stack(name: str) -> list:
    """The addon's stack without effects or diagnostics: networks only."""
    stack = json.loads((addon_path(name) / "addon.json").read_text())["stack"]
    return [b for b in stack if b["type"] not in ("Fade", "Gain", "ChunkStats")]


@pytest.fixture(scope="session")
def voice() -> Voice:
    return load_addon("piper-joe")


@pytest.fixture(scope="session")
def bare_voice() -> Voice:
    return voice_with_stack("piper-joe", bare_stack("piper-joe"))


@pytest.fixture(scope="session")
def reference_model():
    import onnxruntime as ort

    path = Path(addon_path("piper-joe")) / "networks" / "reference.onnx"
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
