"""What a benchmark leaves behind besides its printed tables: its result as JSON and its plot as a PNG."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def write_json(out: Path, name: str, result: dict[str, Any]) -> Path:
    """``result`` as ``out/name.json`` (the folder made if missing); the file's path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    return path


def save(out: Path, name: str, result: dict[str, Any], draw: Callable[[Path], None]) -> tuple[Path, Path]:
    """``result`` as ``out/name.json`` and what ``draw`` plots into ``out/name.png``, both said on stdout; their
    paths."""
    paths = write_json(out, name, result), out / f"{name}.png"
    draw(paths[1])
    print(f"\nwrote {paths[0]} and {paths[1]}")
    return paths


@contextmanager
def figure(path: Path, *grid: int, **options: Any) -> Iterator[Any]:
    """The axes of a matplotlib figure (``plt.subplots(*grid, **options)``), drawn without a display and
    saved to ``path`` when the block ends (``axes.figure`` is the figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(*grid, **options)
    try:
        yield axes
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
