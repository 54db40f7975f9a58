"""Build hibari's networks by splitting the hibari-tts ONNX graph (int8 dynamic-quantised MatMuls).

The graph is cut where it separates cleanly:

- ``encoders.onnx``: both text encoders and the duration head. Its inputs become ``input`` (the
  phoneme ids, 0 at both ends) and ``scales`` (``[noise_scale, length_scale, noise_w]``, as every
  addon gets); ``speed = 1 / length_scale`` is computed inside. Outputs: ``text_enc`` [1, 128, L]
  (for the decoder), ``prosody_enc`` [1, 192, L] and ``durations`` [L] (frames of 25 ms).
- ``frames.onnx``: the upsampled encodings ``text_frames`` [1, 128, T] and ``prosody_frames``
  [1, 192, T] -> ``lh``, ``theta``, ``ln``, ``lr``, ``phi`` [1, 601, 2T] and ``f0`` [1, 2T]
  (the graph doubles the frames: 12.5 ms each, hop 300 at 24 kHz).

The repetition by the durations in between is the Upsampler block's; the spectral parts become
audio in the HarmonicVocoder block. The phoneme vocabulary is copied beside them as ``vocab.json``
(``{"phoneme_id_map": {phoneme: [id]}}``, the frontend's format).

Run: ``python addons/hibari/build.py`` (idempotent; rebuilds only when missing).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

from blocks.backends.onnx_split import split_graph

HERE = Path(__file__).resolve().parent

RENAMES = {
    "ids": "input",
    "/Transpose_22_output_0": "text_enc",
    "/Transpose_55_output_0": "prosody_enc",
    "/Cast_32_output_0": "durations",
    "/Gather_32_output_0": "text_frames",
    "/Gather_33_output_0": "prosody_frames",
}

CUTS = {
    "encoders.onnx": (
        ["ids", "speed"],
        ["/Transpose_22_output_0", "/Transpose_55_output_0", "/Cast_32_output_0"],
    ),
    "frames.onnx": (
        ["/Gather_32_output_0", "/Gather_33_output_0"],
        ["lh", "theta", "ln", "lr", "phi", "f0"],
    ),
}


def speed_from_scales(model: onnx.ModelProto) -> None:
    """Replace the ``speed`` input by ``scales`` [3]: ``speed = 1 / scales[1]`` (the length scale)."""
    graph = model.graph
    kept = [value for value in graph.input if value.name != "speed"]
    del graph.input[:]
    graph.input.extend([*kept, helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3])])
    graph.initializer.append(helper.make_tensor("length_scale_index", TensorProto.INT64, [1], [1]))
    graph.node.insert(0, helper.make_node("Gather", ["scales", "length_scale_index"], ["length_scale"], axis=0))
    graph.node.insert(1, helper.make_node("Reciprocal", ["length_scale"], ["speed"]))


def split(source: Path, out_dir: Path) -> None:
    """Write the split networks of ``source`` into ``out_dir``."""

    def edit(file_name: str, model: onnx.ModelProto) -> None:
        if "speed" in CUTS[file_name][0]:
            speed_from_scales(model)

    split_graph(source, out_dir, CUTS, RENAMES, edit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "networks")
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    try:
        import hibari
    except ImportError:
        print("hibari-tts is not installed: pip install hibari-tts==0.2.1", file=sys.stderr)
        return 1
    assets = Path(hibari.__file__).resolve().parent / "assets"
    out: Path = args.out
    wanted = [*CUTS, "vocab.json"]
    if not args.force and all((out / name).is_file() for name in wanted):
        print(f"hibari networks already built in {out}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    split(assets / "hibari.onnx", out)
    vocab = json.loads((assets / "vocab.json").read_text(encoding="utf-8"))
    id_map = {"phoneme_id_map": {char: [index] for char, index in vocab.items()}}
    (out / "vocab.json").write_text(json.dumps(id_map, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"built hibari networks in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
