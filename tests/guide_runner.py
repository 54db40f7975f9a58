"""Run docs/adding-a-model.md as a reader would: its blocks in order, in an empty folder.

A fence whose info string names a file (```` ```python file=PATH ````) is written to PATH; a ```` ```sh ````
fence is run by bash (``-euo pipefail``, one shell for the whole guide, so exports carry over); any other
fence is only shown. The reader's piper voice is ``$PIPER_VOICE``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "adding-a-model.md"
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
MARK = "voxstack-guide-end-of-file"


@dataclass(frozen=True)
class Block:
    language: str
    file: str | None
    body: str


@dataclass(frozen=True)
class GuideRun:
    folder: Path
    output: str
    returncode: int
    env: dict[str, str]
    """What the guide's shell exported that later commands need (``PYTHONPATH``, ``VOXSTACK_ADDONS``)."""


def blocks(text: str) -> list[Block]:
    found = []
    for match in FENCE.finditer(text):
        words = match["info"].split()
        language = words[0] if words else ""
        file = next((w.removeprefix("file=") for w in words[1:] if w.startswith("file=")), None)
        found.append(Block(language, file, match["body"]))
    return found


def script(guide: list[Block]) -> str:
    """The guide as one bash script; at its end it prints the variables later steps need."""
    lines = []
    for block in guide:
        if block.file is not None:
            path = shlex.quote(block.file)
            lines += [f"mkdir -p \"$(dirname {path})\"", f"cat > {path} <<'{MARK}'", block.body.rstrip("\n"), MARK]
        elif block.language == "sh":
            lines.append(block.body)
    lines += ['echo "GUIDE PYTHONPATH=${PYTHONPATH:-}"', 'echo "GUIDE VOXSTACK_ADDONS=${VOXSTACK_ADDONS:-}"']
    return "\n".join(lines) + "\n"


def run_guide(folder: Path, piper_voice: Path, timeout_s: float = 900) -> GuideRun:
    """Every block of the guide in ``folder`` (empty), with voxstack's environment first on ``PATH``."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VOXSTACK_ADDONS", "RAY_ADDRESS")}
    env.update({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "PIPER_VOICE": str(piper_voice), "XDG_DATA_HOME": str(folder / "user-data")})
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script(blocks(GUIDE.read_text(encoding="utf-8")))],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=timeout_s)
    exported = dict(re.findall(r"^GUIDE (\w+)=(.*)$", done.stdout, re.MULTILINE))
    return GuideRun(folder, done.stdout + done.stderr, done.returncode, exported)
