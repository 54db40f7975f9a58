"""The fixed profile's manifest: which static artefact serves each network at each size.

Written once by ``voxstack addons compile`` (``blocks.backends.compile``), read when an addon loads with
the fixed profile; reading never compiles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from blocks.config import FixedProfile
from blocks.errors import AddonError

MANIFEST = "manifest.json"
Artefacts = dict[str, dict[str, str]]
"""Network -> size -> artefact file (relative to the addon folder)."""


def profile_key(profile: FixedProfile, backend_kind: str) -> dict[str, Any]:
    """What the artefacts were compiled for: a change to either makes them stale."""
    return {"profile": profile.model_dump(), "backend": backend_kind}


def read_manifest(folder: Path, key: dict[str, Any], addon: str, shown: str) -> Artefacts:
    """The artefacts in ``folder`` (shown as ``shown`` in messages) if they were compiled for ``key``."""
    hint = f"build them once with: voxstack addons compile {addon} --profile fixed"
    path = folder / MANIFEST
    if not path.is_file():
        raise AddonError(f"addon {addon!r}: fixed-shape artefacts are missing ({shown}/{MANIFEST}); {hint}")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("profile") != key:
        raise AddonError(f"addon {addon!r}: fixed-shape artefacts are stale (the profile changed); {hint}")
    return dict(manifest["networks"])


def write_manifest(folder: Path, key: dict[str, Any], artefacts: Artefacts) -> None:
    (folder / MANIFEST).write_text(json.dumps({"profile": key, "networks": artefacts}, indent=1), encoding="utf-8")
