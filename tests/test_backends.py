"""Backends: onnxruntime and torch (TorchScript and torch.export) behind the same ``run``."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from blocks.backends import load_network
from blocks.config import BackendConfig, NetworkConfig, TensorSpec
from blocks.errors import DeviceUnavailable, NetworkLoadError


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


def export_onnx(module: torch.nn.Module, frames: np.ndarray, folder: Path) -> Path:
    """``module`` as an ONNX file with a dynamic frame axis."""
    path = folder / "net.onnx"
    torch.onnx.export(module, (torch.from_numpy(frames),), path, input_names=["frames"],
                      output_names=["out"], dynamic_axes={"frames": {2: "n"}}, dynamo=False)
    return path


def test_onnxruntime_runs_an_exported_network(tmp_path: Path, frames):
    module = Smooth().eval()
    network = load_network("smooth", config("net.onnx", "onnx"), export_onnx(module, frames, tmp_path),
                           BackendConfig())
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
        with pytest.raises(DeviceUnavailable, match="no CUDA device"):
            load_network("smooth", config("net.pt", "torchscript"), path, cuda)


def test_a_call_made_while_another_runs_uses_the_busy_threads_session(tmp_path: Path, frames):
    network = load_network("smooth", config("net.onnx", "onnx"), export_onnx(Smooth().eval(), frames, tmp_path),
                           BackendConfig(busy_threads=1))
    assert network.busy_session is not None
    used: list[str] = []
    entered, release = threading.Event(), threading.Event()
    lone, busy = network.session, network.busy_session

    class Held:
        """The lone session, holding its call open until released."""

        def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            used.append("lone")
            entered.set()
            assert release.wait(10)
            return lone.run(names, feeds)

    class Counted:
        def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            used.append("busy")
            return busy.run(names, feeds)

    network.session, network.busy_session = Held(), Counted()
    results: list[np.ndarray] = []
    first = threading.Thread(target=lambda: results.append(network.run({"frames": frames})["out"]))
    first.start()
    assert entered.wait(10)
    second = network.run({"frames": frames})["out"]  # made while the first call runs
    release.set()
    first.join(10)
    assert used == ["lone", "busy"]
    np.testing.assert_allclose(second, results[0], rtol=1e-5, atol=1e-6)
    network.session = lone
    network.run({"frames": frames})  # nothing else in flight now: the lone session again
    assert used[-1] == "busy" and len(used) == 2


def test_busy_threads_are_refused_for_other_backends():
    with pytest.raises(ValueError, match="busy_threads applies to the onnxruntime backend only"):
        BackendConfig(kind="torch", busy_threads=1)
