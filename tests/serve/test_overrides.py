"""Addon config overrides in serve configs: the fixed-shape profile and batching, switched by config."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from blocks.addon import Addon
from deployments.config import validate_config
from deployments.plan import AppArgs, plan_app

LOCAL = Path(__file__).resolve().parents[2] / "serve_configs" / "local.yaml"
FIXED = {"backend": {"profile": "fixed", "batch": {"max_size": 8}}, "frontend": {"max_utterance_chars": 200}}


def with_overrides(overrides: dict) -> dict:
    raw = yaml.safe_load(LOCAL.read_text())
    raw = copy.deepcopy(raw)
    for entry in raw["applications"][0]["args"]["addons"]:
        if entry["name"] == "piper-joe":
            entry["overrides"] = overrides
    return raw


def test_a_fixed_profile_with_batching_is_one_config_change():
    validate_config(with_overrides(FIXED))
    args = AppArgs.model_validate(with_overrides(FIXED)["applications"][0]["args"])
    (plan,) = [p for p in plan_app(args) if p.addon == "piper-joe"]
    assert plan.overrides == FIXED
    addon = Addon.open("piper-joe", overrides=plan.overrides)
    assert addon.config.backend.profile == "fixed" and addon.config.backend.batch.max_size == 8
    assert addon.max_sequence_length() == 512


@pytest.mark.parametrize(
    ("overrides", "where"),
    [({"backend": {"profle": "fixed"}}, "$.backend.profle"), ({"backend": {"batch": {"max_size": 0}}},
                                                               "$.backend.batch.max_size")],
)
def test_bad_overrides_are_refused_with_their_path(overrides, where):
    with pytest.raises(ValueError, match=r"\$\.applications\[0\]\.args") as caught:
        validate_config(with_overrides(overrides))
    assert where in str(caught.value)
