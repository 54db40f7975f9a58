"""Backends: onnxruntime and torch (TorchScript and torch.export) behind the same ``run``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from blocks.backends import NetworkLoadError, load_network
from blocks.config import BackendConfig, NetworkConfig, TensorSpec


class Smooth(torch.nn.Module):
    """A small frame network: 1-D convolution over [batch, channels, frames]."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv1d(4, 4, 3, padding=1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(frames))


def config(file: str, fmt: str) -> NetworkConfig:
    return NetworkConfig(file=file, format=fmt, inputs=[TensorSpec(name="frames", shape=[1, 4, "n"])],
                         outputs=["out"])


@pytest.fixture
def frames() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((1, 4, 20)).astype(np.float32)


def test_torchscript_and_export_match_eager(tmp_path: Path, frames):
    module = Smooth().eval()
    expected = module(torch.from_numpy(frames)).detach().numpy()
    torch.jit.save(torch.jit.script(module), tmp_path / "net.pt")
    dim = torch.export.Dim("n", min=2, max=4096)
    program = torch.export.export(module, (torch.from_numpy(frames),), dynamic_shapes=({2: dim},))
    torch.export.save(program, tmp_path / "net.pt2")
    backend = BackendConfig(kind="torch", device="cpu")
    for file, fmt in (("net.pt", "torchscript"), ("net.pt2", "torch_export")):
        network = load_network("smooth", config(file, fmt), tmp_path / file, backend)
        out = network.run({"frames": frames})["out"]
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
        assert network.device == "cpu"


def test_onnxruntime_runs_an_exported_network(tmp_path: Path, frames):
    module = Smooth().eval()
    torch.onnx.export(module, (torch.from_numpy(frames),), tmp_path / "net.onnx", input_names=["frames"],
                      output_names=["out"], dynamic_axes={"frames": {2: "n"}}, dynamo=False)
    network = load_network("smooth", config("net.onnx", "onnx"), tmp_path / "net.onnx", BackendConfig())
    out = network.run({"frames": frames[..., :7]})["out"]
    expected = module(torch.from_numpy(frames[..., :7])).detach().numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_a_pickle_is_not_a_torch_network(tmp_path: Path):
    path = tmp_path / "evil.pt"
    torch.save({"weights": torch.zeros(2)}, path)  # a plain pickle, not TorchScript
    with pytest.raises(NetworkLoadError, match="not a loadable torchscript file"):
        load_network("evil", config("evil.pt", "torchscript"), path, BackendConfig(kind="torch"))


def test_cuda_is_used_when_present_and_refused_clearly_when_absent(tmp_path: Path):
    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(Smooth()), path)
    cuda = BackendConfig(kind="torch", device="cuda")
    if torch.cuda.is_available():
        assert load_network("smooth", config("net.pt", "torchscript"), path, cuda).device == "cuda"
    else:
        with pytest.raises(RuntimeError, match="no CUDA device"):
            load_network("smooth", config("net.pt", "torchscript"), path, cuda)
