"""Stage autoscaling from the admission signal: replicas follow the machine share the held streams need.

Each stream stage reports ``stream_load`` (``StreamStage.record_autoscaling_stats``): the machine share its
utterances need (each one's measured cost per audio second) over the admission margin, the steady part of
the test the ingress admits by (1: a full plan). This policy asks for enough replicas to bring the mean load
down to ``target_load``, so a crowded stage scales out while its streams still keep up, before the ingress
refuses any. Until a replica has measured its capacity it
reports nothing, and Serve's own policy (ongoing requests against ``target_ongoing_requests``) decides.
Serve applies the config's bounds, scaling factors and delays to the answer.

In a serve config::

    autoscaling_config:
      min_replicas: 1
      max_replicas: 4
      policy:
        policy_function: deployments.autoscaling:StreamLoadPolicy
        policy_kwargs: {target_load: 0.8}

Serve ships this module to its controller by value; it imports nothing of voxstack.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ray.serve.config import AutoscalingContext

METRIC = "stream_load"
"""The custom metric's name, as ``StreamStage.record_autoscaling_stats`` reports it."""


class StreamLoadPolicy:
    """Serve autoscaling policy: replicas = ceil(replicas x mean stream_load / target_load)."""

    def __init__(self, target_load: float = 0.8) -> None:
        if not 0.0 < target_load <= 1.0:
            raise ValueError(f"target_load must be in (0, 1], got {target_load}")  # the config check's message
        self.target_load = target_load

    def __call__(self, ctx: AutoscalingContext) -> tuple[int | float, dict[str, Any]]:
        loads = (ctx.aggregated_metrics or {}).get(METRIC, {})
        running = set(ctx.running_replicas)
        measured = [load for replica, load in loads.items() if replica in running]
        if not measured or ctx.current_num_replicas == 0:
            from ray.serve.autoscaling_policy import replica_queue_length_autoscaling_policy  # Serve's own, in Serve

            return replica_queue_length_autoscaling_policy(ctx)
        mean = sum(measured) / len(measured)
        desired = math.ceil(ctx.current_num_replicas * mean / self.target_load - 1e-9)
        return max(1, desired), {METRIC: mean}
