"""A/B tooling without a cluster: weight shares in a config, and the report's reading of Prometheus text."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from deployments.ab import parse_shares, weights_of, with_shares
from deployments.ab_report import Histogram, mann_whitney, parse, report, table
from deployments.config import ConfigError
from deployments.routing import WeightedRouter

AB = Path(__file__).resolve().parents[1] / "serve_configs" / "ab.yaml"
BOUNDS = [0.05, 0.1, 0.2, 0.5, float("inf")]


def test_a_share_moves_only_the_slice_that_changes_hands() -> None:
    raw = yaml.safe_load(AB.read_text())
    changed = with_shares(raw, parse_shares(["piper-joe.CustomizedEncoders=0.5"]))
    weights = weights_of(changed)["voxstack"]
    assert weights["piper-joe.Encoders"] == pytest.approx(0.5) and weights["piper-joe.CustomizedEncoders"] == 0.5
    assert weights["hibari.Encoders"] == weights["hibari.CustomizedEncoders"] == 0.5  # another addon untouched
    assert list(weights) == list(weights_of(raw)["voxstack"])  # the order, hence the slices, holds
    before = WeightedRouter({k: v for k, v in weights_of(raw)["voxstack"].items() if k.startswith("piper")})
    after = WeightedRouter({k: v for k, v in weights.items() if k.startswith("piper")})
    clients = [f"c{i}" for i in range(2000)]
    moved = [c for c in clients if before.choose(c) != after.choose(c)]
    assert all(before.choose(c) == "piper-joe.Encoders" for c in moved)
    assert 0.35 < len(moved) / len(clients) < 0.45  # the slice from 0.5 to 0.9


def test_an_addon_without_weights_gets_them_and_bad_shares_are_refused() -> None:
    raw = yaml.safe_load(AB.read_text())
    weights = weights_of(with_shares(raw, parse_shares(["legacy-ar.Encoders=1"])))["voxstack"]
    assert weights["legacy-ar.Encoders"] == 1.0
    for bad in (["piper-joe.CustomizedEncoders"], ["piper-joe.CustomizedEncoders=1.5"], ["x=abc"]):
        with pytest.raises(ConfigError, match="ENCODER=SHARE"):
            parse_shares(bad)
    with pytest.raises(ConfigError, match="not all in"):
        with_shares(raw, {"nope.Encoders": 0.5})
    with pytest.raises(ConfigError, match="more than 1"):
        with_shares(raw, {"piper-joe.Encoders": 0.7, "piper-joe.CustomizedEncoders": 0.6})


def _exposition(times: dict[str, list[float]], failed: dict[str, int]) -> str:
    """Prometheus text as Ray exports the service's metrics (``ray_`` prefix, replica tags)."""
    lines = ["# TYPE ray_voxstack_requests_total counter", "# TYPE ray_voxstack_first_audio_seconds histogram"]
    for variant, values in times.items():
        tags = f'variant="piper-joe.{variant}",endpoint="stream",replica="r1"'
        lines.append(f'ray_voxstack_requests_total{{{tags},outcome="ok"}} {len(values)}')
        lines.append(f'ray_voxstack_requests_total{{{tags},outcome="failed"}} {failed.get(variant, 0)}')
        for bound in BOUNDS:
            le = "+Inf" if bound == float("inf") else str(bound)
            lines.append(f'ray_voxstack_first_audio_seconds_bucket{{{tags},le="{le}"}} '
                         f'{sum(v <= bound for v in values)}')
        lines.append(f"ray_voxstack_first_audio_seconds_count{{{tags}}} {len(values)}")
        lines.append(f"ray_voxstack_first_audio_seconds_sum{{{tags}}} {sum(values)}")
    return "\n".join(lines) + "\n"


def test_report_counts_percentiles_and_a_significant_difference() -> None:
    rng = random.Random(1)
    fast = [rng.uniform(0.05, 0.1) for _ in range(200)]
    slow = [rng.uniform(0.1, 0.2) for _ in range(200)]
    result = report(parse([_exposition({"Encoders": slow, "CustomizedEncoders": fast}, {"Encoders": 2})]))
    rows = {r["variant"]: r for r in result["variants"]}
    assert rows["Encoders"]["requests"] == 202 and rows["Encoders"]["error_rate"] == pytest.approx(2 / 202, abs=1e-4)
    assert rows["CustomizedEncoders"]["requests"] == 200
    assert 100 <= rows["Encoders"]["first_audio_p50_ms"] <= 200
    assert rows["CustomizedEncoders"]["first_audio_p50_ms"] <= 100
    test = result["first_audio_tests"][0]
    assert test["variant"] == "CustomizedEncoders" and test["baseline"] == "Encoders"
    assert test["significant"] and test["p"] < 1e-6 and test["p_faster"] == 1.0
    assert "significant at 5%" in table(result)


def test_same_distribution_is_not_significant() -> None:
    a, b = Histogram(), Histogram()
    for histogram in (a, b):
        for bound, count in zip(BOUNDS, (10, 30, 60, 80, 80), strict=True):
            histogram.add(bound, count)
    result = mann_whitney(a, b)
    assert result is not None and result["p"] == 1.0 and result["p_faster"] == 0.5
    assert a.quantile(0.5) == pytest.approx(0.1 + 0.1 * (40 - 30) / 30)
    assert mann_whitney(a, Histogram()) is None
