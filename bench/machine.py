"""What a benchmark ran on (CPU, cores, runtime versions, load, the commit measured), and its tables."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent


def machine_info() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": model,
        "cores": os.cpu_count(),
        "onnxruntime": ort.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": load_average(),
        "revision": revision(),
    }
    info["summary"] = f"{model}, {info['cores']} cores, onnxruntime {ort.__version__}, load {info['load_average']}"
    return info


def revision() -> str:
    """The commit measured, with ``+dirty`` when the code under test has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "blocks", "addons"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: other work on the machine skews every timing."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Rows of equal keys as a markdown table, keys as the header."""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)
