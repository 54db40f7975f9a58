"""Hostile configs: the stack and addon parsers reject anything malformed with a path, never crash."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blocks import load_addon, parse_stack
from blocks.addon import Addon, addon_path
from blocks.errors import AddonError, NetworkLoadError, StackError
from blocks.registry import names

TYPES = [*names(), "Import", "os.system", "__class__", ""]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                    st.text(max_size=12))
keys = st.sampled_from(["type", "stack", "sequence_block", "streamable_block", "blocks", "context", "network",
                        "schedule", "db", "label", "first", "__proto__"])


def specs() -> st.SearchStrategy:
    """JSON values shaped like stack entries, often close to valid ones."""
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(keys, children, max_size=4),
            st.builds(lambda t, rest: {"type": t, **rest}, st.sampled_from(TYPES),
                      st.dictionaries(keys, children, max_size=3)),
        ),
        max_leaves=12,
    )


JSON_PATH = re.compile(r"^\$\.stack(\[\d+\]|\.[A-Za-z_]+)*")


@settings(max_examples=400, deadline=None)
@given(specs())
def test_stack_parser_accepts_or_names_the_path(spec):
    try:
        parse_stack(spec)
    except StackError as error:
        assert JSON_PATH.match(error.path), error.path
        assert error.message


mutations = st.one_of(
    st.builds(lambda k, v: (k, v), st.sampled_from(
        ["name", "version", "sample_rate", "hop_length", "frontend", "defaults", "schedule", "backend",
         "networks", "stack", "voices", "fixed_profile", "extra_key"]), specs()),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations)
def test_addon_config_rejects_with_a_path_or_loads(tmp_path_factory, mutation):
    root = tmp_path_factory.mktemp("addons")
    source = addon_path("piper-joe")
    target = root / "fuzzed"
    target.mkdir()
    config = json.loads((source / "addon.json").read_text())
    key, value = mutation
    config[key] = value
    (target / "addon.json").write_text(json.dumps(config))
    try:
        Addon(target)
    except AddonError as error:
        assert str(target / "addon.json") in str(error) and "$" in str(error)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=4096), st.sampled_from(["encoders.onnx", "flow.onnx", "vocoder.onnx"]))
def test_garbage_network_files_fail_at_load_with_their_name(tmp_path_factory, garbage, victim):
    root = tmp_path_factory.mktemp("addons")
    source = addon_path("piper-joe")
    target = root / "garbage"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("fixed", "reference.onnx", "*.onnx"))
    for name in ("encoders.onnx", "flow.onnx", "vocoder.onnx"):
        path = Path(target / "networks" / name)
        if name == victim:
            path.write_bytes(garbage)
        else:
            try:
                os.link(source / "networks" / name, path)  # a hard link stays inside the folder
            except OSError:
                shutil.copyfile(source / "networks" / name, path)
    try:
        load_addon("garbage", root)
    except NetworkLoadError as error:
        assert victim in str(error)
    else:
        raise AssertionError(f"{len(garbage)} random bytes loaded as {victim}")
