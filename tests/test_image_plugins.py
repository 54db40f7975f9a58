"""The image installs the plugin distributions a serve config names: ``make image IMAGE_PLUGINS=...`` passes
them to the Containerfile's build stage, which installs them after the project (building the image itself is
``make image-test``)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_plugins_travel_as_a_build_argument_and_are_installed_after_the_project() -> None:
    sys.path.insert(0, str(ROOT / "k8s"))
    try:
        from image import build_arguments
    finally:
        sys.path.remove(str(ROOT / "k8s"))
    arguments = build_arguments("cpu", None, "acme-voices==0.1.0 other-voices")
    assert arguments[arguments.index("--build-arg", 2) + 1] == "PLUGINS=acme-voices==0.1.0 other-voices"
    assert "PLUGINS" not in " ".join(build_arguments("cpu", None))
    build_stage = (ROOT / "Containerfile").read_text().split("FROM base AS build", 1)[1].split("\nFROM base\n")[0]
    assert "\nARG PLUGINS\n" in build_stage
    project, plugins = build_stage.index("pip install -q -e ."), build_stage.index('pip install -q $PLUGINS')
    assert project < plugins < build_stage.index("make addons VENV=")
    assert re.search(r'if \[ -n "\$\{PLUGINS:-\}" \]', build_stage)
