"""Addon folders cannot reach outside the addons folder, and nothing in the code loads pickles."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from blocks import load_addon
from blocks.addon import Addon, addon_path, list_addons
from blocks.errors import AddonError

ROOT = Path(__file__).resolve().parent.parent


def copy_addon(target: Path) -> Path:
    """A working copy of piper-joe (its config and the networks it serves) at ``target``."""
    source = addon_path("piper-joe")
    (target / "networks").mkdir(parents=True)
    for name in ("encoders.onnx", "flow.onnx", "vocoder.onnx", "voice.json"):
        shutil.copyfile(source / "networks" / name, target / "networks" / name)
    shutil.copyfile(source / "addon.json", target / "addon.json")
    return target


@pytest.fixture
def outside_addon(tmp_path: Path) -> Path:
    """A valid addon outside the (empty) addons folder ``tmp_path/addons``."""
    (tmp_path / "addons").mkdir()
    return copy_addon(tmp_path / "elsewhere" / "evil")


def test_a_symlinked_addon_folder_leaving_the_addons_folder_is_refused(outside_addon: Path, tmp_path: Path) -> None:
    root = tmp_path / "addons"
    (root / "evil").symlink_to(outside_addon, target_is_directory=True)
    with pytest.raises(AddonError, match="outside the addons folder"):
        load_addon("evil", root)
    assert list_addons(root) == []


def test_a_symlinked_addon_config_leaving_the_folder_is_refused(outside_addon: Path, tmp_path: Path) -> None:
    inside = tmp_path / "addons" / "copy"
    inside.mkdir()
    (inside / "addon.json").symlink_to(outside_addon / "addon.json")
    with pytest.raises(AddonError, match=r"addon\.json: points outside the addon folder"):
        Addon(addon_path("copy", tmp_path / "addons"))


def test_a_symlink_inside_the_addons_folder_is_fine(tmp_path: Path) -> None:
    root = tmp_path / "addons"
    copy_addon(root / "real")
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert list_addons(root) == ["alias", "real"]
    assert load_addon("alias", root).synthesize("Fine.", noise_scale=0.0, noise_w=0.0).audio.shape[0] > 0


UNSAFE = re.compile(r"\bimport (c?pickle|dill|joblib|marshal)\b|\bfrom (c?pickle|dill|joblib) import|pickle\.loads?\("
                    r"|allow_pickle\s*=\s*True|yaml\.(unsafe_)?load\(|torch\.load\((?![^)]*weights_only=True)")


def test_no_code_path_loads_a_pickle() -> None:
    sources = [p for folder in ("blocks", "deployments", "addons", "bench") for p in (ROOT / folder).rglob("*.py")]
    assert len(sources) > 20
    found = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in sources
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if UNSAFE.search(line)]
    assert not found, found
    assert UNSAFE.search("state = torch.load(path)") and UNSAFE.search("import pickle")
    assert not UNSAFE.search("torch.load(path, weights_only=True, map_location='cpu')")
