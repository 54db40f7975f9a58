"""Random-weight piper voices made at test time: ``NAME.onnx`` + ``NAME.onnx.json`` as piper-tts publishes them.

A voice is piper's own ``SynthesizerTrn`` built for a quality preset, with the weights VITS zero-initialises
made non-zero (seeded), exported the way ``piper.train.export_onnx`` does and described by a config in the
layout of the published voices. Nothing is downloaded and nothing outside the installed packages is read.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

NUM_SYMBOLS = 256
"""The published voices' ``num_symbols`` (piper's phoneme ids use the first 166)."""
SPEAKER_NAMES = ("ana", "ben", "chloe", "dmitri", "eve", "farid", "gita", "hugo")
FRAMES_PER_ID = 3.0
"""Noise-off duration that a sentence's ids average, in frames (about what trained voices give)."""
LANGUAGES = {
    "de": ("de_DE", "Deutsch", "German", "Germany"),
    "en-us": ("en_US", "English", "English", "United States"),
    "es": ("es_ES", "Español", "Spanish", "Spain"),
    "fr": ("fr_FR", "Français", "French", "France"),
}
"""espeak-ng voice -> (code, native name, English name, country) of the config's ``language``."""


@dataclass(frozen=True)
class Preset:
    """Sizes of one piper quality: text encoder and flow channels, and which vocoder."""

    sample_rate: int
    hidden_channels: int
    inter_channels: int
    filter_channels: int
    high_vocoder: bool
    """piper's ``high_quality`` vocoder (resblock "1", upsample 8 8 2 2, 512 channels), else ``low_quality``
    (resblock "2", upsample 8 8 4, 256 channels)."""


PRESETS = {
    "x_low": Preset(16000, 96, 96, 384, high_vocoder=False),
    "low": Preset(16000, 192, 192, 768, high_vocoder=False),
    "medium": Preset(22050, 192, 192, 768, high_vocoder=False),
    "high": Preset(22050, 192, 192, 768, high_vocoder=True),
}


def phoneme_id_map() -> dict[str, list[int]]:
    """The phoneme ids piper-tts uses when a voice gives none (those of the published espeak voices)."""
    from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP

    return {phoneme: list(ids) for phoneme, ids in DEFAULT_PHONEME_ID_MAP.items()}


def build(preset: Preset, num_speakers: int) -> torch.nn.Module:
    """A ``SynthesizerTrn`` of ``preset`` at torch's current random state, in eval mode, built as piper's
    training builds it from its ``ModelConfig``."""
    from piper.train.vits.config import ModelAudioConfig, ModelConfig
    from piper.train.vits.models import SynthesizerTrn

    audio = ModelAudioConfig.high_quality() if preset.high_vocoder else ModelAudioConfig.low_quality()
    config = ModelConfig(num_symbols=NUM_SYMBOLS, n_speakers=num_speakers, audio=audio,
                         inter_channels=preset.inter_channels, hidden_channels=preset.hidden_channels,
                         filter_channels=preset.filter_channels)
    model = SynthesizerTrn(
        n_vocab=config.num_symbols, spec_channels=config.mel.filter_length // 2 + 1,
        segment_size=config.segment_size // config.mel.hop_length, inter_channels=config.inter_channels,
        hidden_channels=config.hidden_channels, filter_channels=config.filter_channels, n_heads=config.n_heads,
        n_layers=config.n_layers, kernel_size=config.kernel_size, p_dropout=config.p_dropout,
        resblock=config.resblock, resblock_kernel_sizes=config.resblock_kernel_sizes,
        resblock_dilation_sizes=config.resblock_dilation_sizes, upsample_rates=config.upsample_rates,
        upsample_initial_channel=config.upsample_initial_channel,
        upsample_kernel_sizes=config.upsample_kernel_sizes, n_speakers=config.n_speakers,
        gin_channels=config.gin_channels, use_sdp=config.use_sdp,
    )
    return model.eval()


def sentence_like_ids(generator: torch.Generator, count: int = 32) -> torch.Tensor:
    """``[1, ids]`` laid out as piper lays out a sentence's: BOS, pad, ``count`` random phonemes each followed
    by the pad, EOS."""
    id_map = phoneme_id_map()
    pad, bos, eos = id_map["_"][0], id_map["^"][0], id_map["$"][0]
    phonemes = [ids[0] for key, ids in id_map.items() if key not in {"_", "^", "$"}]
    picks = torch.randint(len(phonemes), (count,), generator=generator).tolist()
    return torch.LongTensor([[bos, pad, *(x for i in picks for x in (phonemes[i], pad)), eos]])


@torch.no_grad()
def wake(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Make every stage compute something: VITS zero-initialises the last projection of each flow coupling
    layer (the flow is the identity) and of each spline flow of the duration predictor (every duration
    is one frame). Those get small seeded weights; then the predictor's last affine flow (``logw = z - m``
    in reverse) is shifted so that the noise-off durations of sentence-like ids average about
    ``FRAMES_PER_ID`` (piper rounds each duration up: half a frame more on average)."""
    for layer in model.flow.flows:
        if hasattr(layer, "post"):
            for param in (layer.post.weight, layer.post.bias):
                param.copy_(0.05 * torch.randn(param.shape, generator=generator))
    for flow in model.dp.flows:
        if hasattr(flow, "proj"):
            for param in (flow.proj.weight, flow.proj.bias):
                param.copy_(0.2 * torch.randn(param.shape, generator=generator))
    ids = sentence_like_ids(generator)
    x, _, _, x_mask = model.enc_p(ids, torch.LongTensor([ids.size(1)]))
    g = model.emb_g(torch.LongTensor([0])).unsqueeze(-1) if model.n_speakers > 1 else None
    logw = model.dp(x, x_mask, g=g, reverse=True, noise_scale=0.0)
    model.dp.flows[0].m[0, 0] = math.log(float(logw.exp().mean())) - math.log(FRAMES_PER_ID - 0.5)


@torch.no_grad()
def check_audible(model: torch.nn.Module, generator: torch.Generator) -> None:
    """A ValueError unless sentence-like ids give finite, audible audio of varied durations (noise off)."""
    ids = sentence_like_ids(generator, 10)
    sid = torch.LongTensor([0]) if model.n_speakers > 1 else None
    audio, attention, *_ = model.infer(ids, torch.LongTensor([ids.size(1)]), sid=sid, noise_scale=0.0,
                                       length_scale=1.0, noise_scale_w=0.0)
    frames = attention.sum(dim=2).reshape(-1).numpy()
    samples = audio.reshape(-1).numpy().astype(np.float64)
    rms = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
    if not np.isfinite(samples).all() or rms < 1e-4 or frames.max() < 2 or frames.mean() > 40:
        raise ValueError(f"unusable voice: rms {rms:.2g}, frames per id {frames.min()} to {frames.max()}")


def export(model: torch.nn.Module, path: Path, generator: torch.Generator) -> None:
    """Export as ``piper.train.export_onnx`` does: weight norm removed, ``infer`` as ``forward``, opset 15."""
    with torch.no_grad():
        model.dec.remove_weight_norm()

    def infer(text: torch.Tensor, text_lengths: torch.Tensor, scales: torch.Tensor,
              sid: torch.Tensor | None = None) -> torch.Tensor:
        return model.infer(text, text_lengths, noise_scale=scales[0], length_scale=scales[1],
                           noise_scale_w=scales[2], sid=sid)[0].unsqueeze(1)

    model.forward = infer  # type: ignore[method-assign]
    ids = torch.randint(0, model.n_vocab, (1, 50), generator=generator)
    sid = torch.LongTensor([0]) if model.n_speakers > 1 else None
    with warnings.catch_warnings():  # the tracer's warnings about piper's model code, as piper's export prints
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (ids, torch.LongTensor([ids.size(1)]), torch.FloatTensor([0.667, 1.0, 0.8]), sid), str(path),
            opset_version=15, input_names=["input", "input_lengths", "scales", "sid"], output_names=["output"],
            dynamic_axes={"input": {0: "batch_size", 1: "phonemes"}, "input_lengths": {0: "batch_size"},
                          "output": {0: "batch_size", 2: "time"}},
            dynamo=False,
        )


def voice_config(preset: str, espeak_voice: str, speakers: list[str] | None, dataset: str) -> dict[str, Any]:
    """The voice's ``.onnx.json`` in the layout of the published piper voices."""
    code, native, english, country = LANGUAGES.get(espeak_voice, (espeak_voice.replace("-", "_"),) + ("",) * 3)
    family, _, region = code.partition("_")
    return {
        "audio": {"sample_rate": PRESETS[preset].sample_rate, "quality": preset},
        "espeak": {"voice": espeak_voice},
        "inference": {"noise_scale": 0.667, "length_scale": 1, "noise_w": 0.8},
        "phoneme_type": "espeak",
        "phoneme_map": {},
        "phoneme_id_map": phoneme_id_map(),
        "num_symbols": NUM_SYMBOLS,
        "num_speakers": len(speakers) if speakers else 1,
        "speaker_id_map": {name: sid for sid, name in enumerate(speakers or [])},
        "piper_version": "1.8.0",
        "language": {"code": code, "family": family, "region": region, "name_native": native,
                     "name_english": english, "country_english": country},
        "dataset": dataset,
    }


def make_voice(folder: Path, preset: str, espeak_voice: str, speakers: list[str] | None = None,
               seed: int = 0) -> tuple[Path, Path]:
    """Make voice ``{code}-random-{preset}`` in ``folder``: ``speakers`` (two or more names) for a
    multi-speaker voice, None for a single speaker. Returns its ``.onnx`` and ``.onnx.json``."""
    if speakers is not None and len(speakers) < 2:
        raise ValueError("a multi-speaker voice needs two or more speakers; None makes a single-speaker voice")
    code = LANGUAGES.get(espeak_voice, (espeak_voice,))[0]
    dataset = f"random{len(speakers) if speakers else ''}"
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / f"{code}-{dataset}-{preset}.onnx"
    config_path = onnx_path.with_name(onnx_path.name + ".json")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = build(PRESETS[preset], len(speakers) if speakers else 1)
    wake(model, generator)
    check_audible(model, generator)
    export(model, onnx_path, generator)
    config = voice_config(preset, espeak_voice, speakers, dataset)
    config_path.write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")
    return onnx_path, config_path
