"""Addon loading is safe: files stay inside the addon, bad files fail at load with their name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from blocks import load_addon
from blocks.addon import addon_path
from blocks.errors import AddonError, NetworkLoadError


@pytest.fixture
def addons_root(tmp_path: Path) -> Path:
    """A private addons folder holding a copy of piper-joe's config, pointing at copied networks."""
    source = addon_path("piper-joe")
    target = tmp_path / "addons" / "copy"
    (target / "networks").mkdir(parents=True)
    for name in ("encoders.onnx", "flow.onnx", "vocoder.onnx", "voice.json"):
        shutil.copyfile(source / "networks" / name, target / "networks" / name)
    shutil.copyfile(source / "addon.json", target / "addon.json")
    return tmp_path / "addons"


def edit(root: Path, change) -> None:
    path = root / "copy" / "addon.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


def test_the_copy_loads_and_speaks(addons_root):
    voice = load_addon("copy", addons_root)
    assert voice.synthesize("Fine.", noise_scale=0.0, noise_w=0.0).audio.shape[0] > 0


def test_network_path_leaving_the_addon_is_refused(addons_root):
    edit(addons_root, lambda c: c["networks"]["flow"].update(file="../../outside.onnx"))
    with pytest.raises(AddonError, match="outside the addon folder"):
        load_addon("copy", addons_root)


def test_symlink_leaving_the_addon_is_refused(addons_root, tmp_path):
    outside = tmp_path / "elsewhere.onnx"
    shutil.copyfile(addons_root / "copy" / "networks" / "flow.onnx", outside)
    (addons_root / "copy" / "networks" / "link.onnx").symlink_to(outside)
    edit(addons_root, lambda c: c["networks"]["flow"].update(file="networks/link.onnx"))
    with pytest.raises(AddonError, match="outside the addon folder"):
        load_addon("copy", addons_root)


def test_missing_network_names_the_file(addons_root):
    (addons_root / "copy" / "networks" / "vocoder.onnx").unlink()
    with pytest.raises(AddonError, match=r"vocoder\.onnx is missing"):
        load_addon("copy", addons_root)


def test_truncated_network_fails_at_load_with_its_name(addons_root):
    path = addons_root / "copy" / "networks" / "flow.onnx"
    path.write_bytes(path.read_bytes()[:50_000])
    with pytest.raises(NetworkLoadError, match=r"network 'flow' \(flow.onnx\): not a loadable ONNX model"):
        load_addon("copy", addons_root)


def test_declared_inputs_must_match_the_file(addons_root):
    edit(addons_root, lambda c: c["networks"]["flow"]["inputs"][1].update(name="frame_mask"))
    with pytest.raises(NetworkLoadError, match="declared"):
        load_addon("copy", addons_root)


def test_backend_must_fit_the_format(addons_root):
    edit(addons_root, lambda c: c["backend"].update(kind="torch"))
    with pytest.raises(NetworkLoadError, match="needs backend onnxruntime"):
        load_addon("copy", addons_root)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda c: c.update(colour="blue"), "$.colour: Extra inputs"),
        (lambda c: c.pop("sample_rate"), "$.sample_rate: Field required"),
        (lambda c: c["networks"]["flow"].update(format="pickle"), "$.networks.flow.format"),
        (lambda c: c["stack"][0].update(type="Import:os.system"), "$.stack[0].type: unknown type"),
        (lambda c: c["frontend"].update(type="Nope"), "frontend.type"),
    ],
)
def test_bad_config_names_the_path(addons_root, change, words):
    edit(addons_root, change)
    with pytest.raises((AddonError, ValueError), match=None) as caught:
        load_addon("copy", addons_root)
    assert words in str(caught.value)


def test_unreadable_config(addons_root):
    (addons_root / "copy" / "addon.json").write_text("{not json")
    with pytest.raises(AddonError, match="cannot read addon config"):
        load_addon("copy", addons_root)
