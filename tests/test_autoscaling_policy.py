"""The stage autoscaling policy on Serve's own AutoscalingContext: load against target, and the fallback."""

from __future__ import annotations

from typing import Any

import pytest
from ray.serve.config import AutoscalingConfig, AutoscalingContext

from deployments.autoscaling import METRIC, StreamLoadPolicy


def _context(replicas: list[str], loads: dict[str, float], ongoing: float = 0.0) -> AutoscalingContext:
    config = AutoscalingConfig(min_replicas=1, max_replicas=8, target_ongoing_requests=2)
    metrics: dict[str, Any] = {METRIC: loads} if loads else {}
    return AutoscalingContext(
        deployment_id=None, deployment_name="piper-joe.Vocoder", app_name="voxstack",
        current_num_replicas=len(replicas), target_num_replicas=len(replicas), running_replicas=replicas,
        total_num_requests=ongoing, total_queued_requests=0.0, aggregated_metrics=metrics, raw_metrics={},
        capacity_adjusted_min_replicas=1, capacity_adjusted_max_replicas=8, policy_state={},
        last_scale_up_time=None, last_scale_down_time=None, current_time=0.0, config=config)


def test_a_crowded_stage_scales_out_before_it_is_full() -> None:
    policy = StreamLoadPolicy(target_load=0.8)
    desired, state = policy(_context(["a"], {"a": 0.9}))  # 90% of what it holds without a stall
    assert desired == 2 and state[METRIC] == pytest.approx(0.9)
    assert policy(_context(["a", "b"], {"a": 1.2, "b": 1.0}))[0] == 3


def test_a_quiet_stage_scales_in_and_keeps_one() -> None:
    policy = StreamLoadPolicy(target_load=0.8)
    assert policy(_context(["a", "b", "c"], {"a": 0.2, "b": 0.1, "c": 0.0}))[0] == 1
    assert policy(_context(["a", "b"], {"a": 0.0, "b": 0.0}))[0] == 1
    assert policy(_context(["a", "b"], {"a": 0.4, "b": 0.4}))[0] == 1  # exactly the target: no more


def test_replicas_that_left_do_not_count() -> None:
    policy = StreamLoadPolicy(target_load=0.5)
    assert policy(_context(["b"], {"a": 3.0, "b": 0.25}))[0] == 1


def test_before_any_measure_serve_s_own_policy_decides() -> None:
    policy = StreamLoadPolicy()
    desired, _ = policy(_context(["a"], {}, ongoing=6.0))  # 6 ongoing against target 2 per replica
    assert desired == 3


def test_a_target_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="target_load"):
        StreamLoadPolicy(target_load=0.0)
