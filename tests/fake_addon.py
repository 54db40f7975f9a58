"""A tiny addon whose networks are numpy functions: block, container, contract and session logic in milliseconds.

Its encoder, decoder and vocoder are pointwise per phoneme or frame, so chunked output equals
whole-utterance output exactly, and every value can be checked by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from blocks.addon import Addon
from blocks.backends.base import Network, Tally
from blocks.config import BackendConfig

CHANNELS = 4
HOP = 8
SAMPLE_RATE = 8000
SYMBOLS = ("_^$ !'(),-.:;?abcdefhijklmnopqrstuvwxyzæçðøħŋœǀǁǂǃɐɑɒɓɔɕɖɗɘəɚɛɜɞɟɠɡɢɣɤɥɦɧɨɪɫɬɭɮɯɰɱ"
           "ɲɳɴɵɶɸɹɺɻɽɾʀʁʂʃʄʈʉʊʋʌʍʎʏʐʑʒʔʕʘʙʛʜʝʟʡʢʲˈˌːˑ˞βθχᵻⱱ")
"""Every IPA symbol the fake voice has an id for (index in this string + 1; others are dropped)."""


def _tensor(name: str, dtype: str, shape: list[Any], random: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "dtype": dtype, "shape": shape}
    if random:
        spec["random"] = random
    return spec


def fake_config(stack: list[dict[str, Any]] | None = None, limit: int | None = None) -> dict[str, Any]:
    """``addon.json`` of the fake voice; ``limit`` gives it a fixed profile whose largest encoder input is that."""
    config: dict[str, Any] = {
        "name": "fake", "version": "0.0.1", "sample_rate": SAMPLE_RATE, "hop_length": HOP,
        "frontend": {"type": "EspeakFrontend", "voice": "en-us",
                     "phoneme_id_map": {c: [i + 1] for i, c in enumerate(SYMBOLS)}},
        "schedule": {"first": 4, "growth": 2.0, "max": 16},
        "networks": {
            "encoders": {"file": "encoders.onnx", "format": "onnx", "role": "encoder",
                         "inputs": [_tensor("input", "int64", [1, "phonemes"]), _tensor("input_lengths", "int64", [1]),
                                    _tensor("scales", "float32", [3]),
                                    _tensor("dp_noise", "float32", [1, 2, "phonemes"], "normal")],
                         "outputs": ["m_p", "logs_p", "durations"]},
            "flow": {"file": "flow.onnx", "format": "onnx", "role": "decoder",
                     "inputs": [_tensor("z_p", "float32", [1, CHANNELS, "frames"]),
                                _tensor("mask", "float32", [1, 1, "frames"])], "outputs": ["z"]},
            "vocoder": {"file": "vocoder.onnx", "format": "onnx", "role": "vocoder",
                        "inputs": [_tensor("z", "float32", [1, CHANNELS, "frames"])], "outputs": ["audio"]},
        },
        "stack": stack or [
            {"type": "StreamablePipeline", "sequence_block": {"type": "Encoders"},
             "streamable_block": {"type": "StreamableStack", "stack": [{"type": "Upsampler"},
                                                                        {"type": "Decoder", "context": 2}]}},
            {"type": "Vocoder", "context": 2},
            {"type": "ChunkStats", "label": "audio"},
        ],
    }
    if limit is not None:
        config["fixed_profile"] = {"networks": {"encoders": {"dim": "phonemes", "sizes": [limit]}}}
        config["networks"]["encoders"]["backend"] = {"profile": "fixed"}
    return config


def encode(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each id becomes a short tone pattern; its duration is 2 to 4 frames, stretched by length_scale."""
    ids = feeds["input"].astype(np.float32)  # [1, T]
    _, length_scale, noise_w = (float(x) for x in feeds["scales"])
    channel = np.arange(1, CHANNELS + 1, dtype=np.float32)[None, :, None]
    m_p = np.sin(ids[:, None, :] * channel * 0.37).astype(np.float32)
    logs_p = np.full_like(m_p, -2.0)
    base = 2 + feeds["input"] % 3 + noise_w * np.clip(feeds["dp_noise"][:, :1, :][0], -0.4, 0.4)
    durations = np.maximum(1, np.round(base * length_scale))[None].astype(np.float32)  # [1, 1, T]
    return {"m_p": m_p, "logs_p": logs_p, "durations": durations}


def flow(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"z": np.tanh(feeds["z_p"]) * feeds["mask"]}


def vocode(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each frame becomes ``HOP`` samples of a sine scaled by the frame's mean."""
    level = feeds["z"].mean(axis=1)  # [1, F]
    wave = np.sin(2 * np.pi * np.arange(HOP, dtype=np.float32) / HOP)
    return {"audio": (0.5 * level[..., None] * wave).reshape(1, 1, -1).astype(np.float32)}


FUNCTIONS: dict[str, Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]] = {
    "encoders": encode, "flow": flow, "vocoder": vocode}


class NumpyNetwork(Network):
    """A declared network computed by a numpy function (counts its calls like a real backend)."""

    def __init__(self, addon: Addon, name: str) -> None:
        config = addon.config.networks[name]
        super().__init__(name, config, addon.folder / config.file, BackendConfig())
        self.function = FUNCTIONS[name]
        self.calls = 0

    def run(self, feeds: dict[str, np.ndarray], tally: Tally | None = None) -> dict[str, np.ndarray]:
        assert sorted(feeds) == sorted(s.name for s in self.config.inputs), sorted(feeds)
        self.calls += 1
        if tally is not None:
            size = sum(int(v.size) for v in feeds.values())
            tally.add(size, 0)
        return self.function(feeds)


def fake_addon(folder: Path, stack: list[dict[str, Any]] | None = None, limit: int | None = None) -> Addon:
    """The fake voice in ``folder``, its networks provided as numpy functions."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "addon.json").write_text(json.dumps(fake_config(stack, limit)))
    addon = Addon(folder)
    for name in addon.config.networks:
        addon.provide_network(NumpyNetwork(addon, name))
    return addon
