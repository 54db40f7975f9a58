"""Build legacy-ar's networks: export the shipped weights, link piper-joe's networks beside them.

- ``memory.pt2`` (torch.export): ``m_p`` -> attention memory and keys, once per utterance.
- ``step.pt2`` (torch.export): one decoder step with explicit state in and out.
- ``encoders.onnx``, ``flow.onnx``, ``vocoder.onnx``, ``voice.json``: piper-joe's, hard-linked
  (copied across file systems) so that the addon never reads outside its folder.

Run after piper-joe's build: ``python addons/legacy-ar/build.py`` (idempotent; ``--force`` rebuilds).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
PIPER = HERE.parent / "piper-joe" / "networks"
SHARED = ["encoders.onnx", "flow.onnx", "vocoder.onnx", "voice.json"]
WEIGHTS = HERE / "weights" / "legacy-ar.pt"
sys.path.insert(0, str(HERE))

from model import LegacyAR, Memory, Step  # noqa: E402


def link(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` (a copy where links are impossible)."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def export(out: Path) -> None:
    """Export the decoder's networks from the shipped state dict, any number of tokens (3 or more)."""
    model = LegacyAR()
    model.load_state_dict(torch.load(WEIGHTS, weights_only=True, map_location="cpu"))
    model.eval()
    tokens = torch.export.Dim("phonemes", min=3, max=4096)
    m_p = torch.randn(1, 192, 40)
    memory, keys = Memory(model)(m_p)
    program = torch.export.export(Memory(model), (m_p,), dynamic_shapes={"m_p": {2: tokens}})
    torch.export.save(program, out / "memory.pt2")
    state = (torch.zeros(1, 192), torch.zeros(1, model.rnn.hidden_size), torch.zeros(1, 40), torch.zeros(1, 40),
             torch.zeros(1, dtype=torch.long), m_p, memory, keys)
    dims = {"frame": None, "h": None, "cum": {1: tokens}, "previous": {1: tokens}, "position": None,
            "m_p": {2: tokens}, "memory": {1: tokens}, "keys": {1: tokens}}
    torch.export.save(torch.export.export(Step(model).eval(), state, dynamic_shapes=dims), out / "step.pt2")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "networks")
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    out: Path = args.out
    if missing := [name for name in SHARED if not (PIPER / name).is_file()]:
        print(f"piper-joe's networks {missing} are missing: run python addons/piper-joe/build.py", file=sys.stderr)
        return 1
    wanted = [*SHARED, "memory.pt2", "step.pt2"]
    fresh = all((out / n).is_file() and (out / n).stat().st_mtime >= WEIGHTS.stat().st_mtime for n in wanted)
    if fresh and not args.force:
        print(f"legacy-ar networks already built in {out}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for name in SHARED:
        link(PIPER / name, out / name)
    export(out)
    print(f"built legacy-ar networks in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
