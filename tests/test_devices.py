"""Where a serve config puts each stage's networks (``args.stages``), and a config asking for a device this
machine lacks failing before anything starts, saying what to install."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort
import pytest
import yaml

from blocks.errors import ConfigError
from deployments.config import load_config, stage_backends, validate_config
from deployments.devices import check_devices

ROOT = Path(__file__).resolve().parents[1]
HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


def placement(config: str) -> dict[str, set[str]]:
    """Deployment -> the ``kind/device`` of its networks."""
    _, parsed = load_config(ROOT / "serve_configs" / config)
    return {f"{s.application}/{s.deployment}": {f"{b.kind}/{b.device}" for b in s.networks.values()}
            for s in stage_backends(parsed)}


def test_the_gpu_config_puts_only_the_gpu_stages_networks_on_cuda() -> None:
    assert placement("gpu.yaml") == {
        "voxstack/Encoders": {"onnxruntime/cpu"},
        "voxstack/Upsampler-Decoder": {"onnxruntime/cuda"},
        "voxstack/Vocoder": {"onnxruntime/cuda"},
        "voxstack/Fade": {"onnxruntime/cpu"},
        "voxstack/ChunkStats": {"onnxruntime/cpu"},
    }
    raw = yaml.safe_load((ROOT / "serve_configs" / "gpu.yaml").read_text())
    gpus = {d["name"]: d["ray_actor_options"].get("num_gpus", 0) for d in raw["applications"][0]["deployments"]}
    assert {name for name, n in gpus.items() if n} == {"Upsampler-Decoder", "Vocoder"}  # CUDA where GPUs are held


def test_the_local_config_runs_every_network_where_its_addon_says() -> None:
    found = placement("local.yaml")
    assert found and all(devices <= {"onnxruntime/cpu", "torch/cpu"} for devices in found.values()), found


def test_cuda_is_checked_before_anything_starts() -> None:
    """Where onnxruntime has no CUDA provider (as here), the check names the stage, the network and what to
    install, and ``voxstack serve`` stops before Ray starts; where it has one, the check passes."""
    _, parsed = load_config(ROOT / "serve_configs" / "gpu.yaml")
    if HAS_CUDA:
        assert check_devices(stage_backends(parsed))
        return
    with pytest.raises(ConfigError) as refused:
        check_devices(stage_backends(parsed))
    message = str(refused.value)
    assert "application 'voxstack', deployment 'Upsampler-Decoder', network 'encoders'" in message
    assert "device 'cuda' asked for" in message and "install onnxruntime-gpu" in message
    done = subprocess.run([sys.executable, "-m", "deployments.cli", "serve", "--config", "serve_configs/gpu.yaml"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert message in done.stderr, done.stderr
    assert "Ray dashboard" not in done.stdout + done.stderr  # nothing was started


def test_the_backends_command_prints_each_stage() -> None:
    done = subprocess.run([sys.executable, "-m", "deployments.cli", "backends", "serve_configs/gpu.yaml"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "voxstack/Vocoder: onnxruntime/cuda (encoders, flow, vocoder)" in done.stdout.splitlines()


def _with_stages(stages: dict) -> dict:
    raw = yaml.safe_load((ROOT / "serve_configs" / "gpu.yaml").read_text())
    changed = copy.deepcopy(raw)
    changed["applications"][0]["args"]["stages"] = stages
    return changed


def test_a_stage_the_stack_lacks_or_a_bad_backend_is_refused_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"stages: unknown stages \['Vocodr'\]; the stack has \[.*'Vocoder'"):
        validate_config(_with_stages({"Vocodr": {"backend": {"device": "cuda"}}}))
    with pytest.raises(ConfigError, match=r"stages\.Vocoder: .*device"):
        validate_config(_with_stages({"Vocoder": {"backend": {"device": "tpu"}}}))


def test_a_cuda_stage_without_a_gpu_is_refused() -> None:
    raw = _with_stages({"Encoders": {"backend": {"device": "cuda"}}})
    with pytest.raises(ConfigError, match=r"args\.stages\.Encoders: runs networks on cuda, but deployment "
                                          r"'Encoders' reserves no GPU"):
        validate_config(raw)
