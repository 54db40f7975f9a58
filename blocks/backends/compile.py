"""The prepare step of the fixed profile: static-shape artefacts, built once, recorded in a manifest.

- ONNX networks: a copy with the profile dim fixed to each size, saved after onnxruntime's graph
  optimisation (constant folding and fusions resolved for that shape).
- torch networks: traced and frozen per size (TorchScript), or compiled with ``torch_neuronx.trace``
  when the backend kind is ``neuron``.
Loading reads the manifest; it never compiles on the request path.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from blocks.backends.manifest import Artefacts, profile_key, write_manifest
from blocks.config import FixedNetworkProfile, NetworkConfig
from blocks.errors import AddonError

if TYPE_CHECKING:
    from blocks.addon import Addon

def artefact_folder(addon: Addon) -> Path:
    if addon.config.fixed_profile is None:
        raise AddonError(f"addon {addon.name!r} has no fixed_profile")
    return addon.resolve(addon.config.fixed_profile.artefacts)


def is_current(addon: Addon) -> bool:
    """True when the artefacts on disk were compiled for the addon's present profile."""
    try:
        addon.fixed_artefacts()
    except AddonError:
        return False
    return True


def compile_fixed(addon: Addon) -> Artefacts:
    """Write every static artefact of the addon's fixed profile and the manifest; return the manifest."""
    profile = addon.config.fixed_profile
    if profile is None:
        raise AddonError(f"addon {addon.name!r} has no fixed_profile to compile")
    folder = artefact_folder(addon)
    folder.mkdir(parents=True, exist_ok=True)
    manifest: Artefacts = {}
    for name, shapes in profile.networks.items():
        config = addon.config.networks[name]
        source = addon.resolve(config.file)
        manifest[name] = {}
        for size in shapes.sizes:
            if config.format == "onnx":
                target = folder / f"{name}.{size}.onnx"
                _static_onnx(source, target, config, shapes, size, addon.config.backend.threads)
            else:
                target = folder / f"{name}.{size}.pt"
                _static_torch(addon, name, target, config, shapes, size)
            manifest[name][str(size)] = str(target.relative_to(addon.folder))
    write_manifest(folder, profile_key(profile, addon.config.backend.kind), manifest)
    return manifest


def _static_onnx(source: Path, target: Path, config: NetworkConfig, shapes: FixedNetworkProfile,
                 size: int, threads: int | None) -> None:
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(source))
    fixed = {s.name for s in config.inputs if s.shape and s.shape[-1] == shapes.dim}
    for value in model.graph.input:
        if value.name in fixed:
            value.type.tensor_type.shape.dim[-1].dim_value = size
    static = target.with_suffix(".static.onnx")
    onnx.save(model, str(static))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(target)
    if threads:
        options.intra_op_num_threads = threads
    ort.InferenceSession(str(static), sess_options=options, providers=["CPUExecutionProvider"])
    static.unlink()


def _static_torch(addon: Addon, name: str, target: Path, config: NetworkConfig,
                  shapes: FixedNetworkProfile, size: int) -> None:
    import torch

    from blocks.backends.torch import TorchNetwork

    module = TorchNetwork(name, config, addon.resolve(config.file), addon.config.backend.model_copy(
        update={"kind": "torch", "device": "cpu"})).module
    example = tuple(
        torch.from_numpy(np.ones([size if d == shapes.dim else (d if isinstance(d, int) else 1) for d in s.shape],
                                 dtype=s.dtype))
        for s in config.inputs
    )
    if addon.config.backend.kind == "neuron":
        from blocks.backends.neuron import neuron_trace

        neuron_trace(module, example, target)
        return
    with torch.inference_mode():
        traced = torch.jit.freeze(torch.jit.trace(module, example).eval())
    torch.jit.save(traced, str(target))
