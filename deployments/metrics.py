"""Prometheus metrics of the service (exported by Ray; deployment and replica tags are added)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray.serve.metrics import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from blocks.admission import Admission

_LATENCY = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4,
            0.5, 0.75, 1.0, 2.0, 5.0]
"""Fine below 200 ms, where first audio lies: A/B reports compare variants bucket by bucket."""
_RATIO = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0]


class ServiceMetrics:
    """First-audio latency, real-time factor, inter-chunk gap, requests and cancellations."""

    def __init__(self) -> None:
        tags = ("variant", "endpoint")
        self.first_audio = Histogram(
            "voxstack_first_audio_seconds", description="Request arrival to the first audio chunk.",
            boundaries=_LATENCY, tag_keys=tags)
        self.rtf = Histogram(
            "voxstack_real_time_factor", description="Wall time over audio time, per finished stream.",
            boundaries=_RATIO, tag_keys=tags)
        self.gap = Histogram(
            "voxstack_inter_chunk_gap_seconds", description="Time between consecutive audio chunks.",
            boundaries=_LATENCY, tag_keys=tags)
        self.requests = Counter(
            "voxstack_requests", description="Synthesis requests by variant, endpoint and outcome.",
            tag_keys=(*tags, "outcome"))
        self.cancellations = Counter(
            "voxstack_cancellations", description="Streams cancelled by the client going away.",
            tag_keys=tags)
        self.admissions = Counter(
            "voxstack_admission_decisions", description="Admission decisions by addon, outcome and reason.",
            tag_keys=("addon", "outcome", "reason"))
        self.margin = Gauge(
            "voxstack_admission_margin", description="The learned share of the machine admission plans.")
        self.planned = Gauge(
            "voxstack_admission_load", description="Machine share the held streams need, over the learned margin.")

    def admission(self, record: dict[str, Any], admission: Admission) -> None:
        """One admission decision (``Admission.note``'s record) and the model's state after it."""
        self.admissions.inc(tags={"addon": record["addon"], "outcome": "admitted" if record["admitted"] else "refused",
                                  "reason": record["reason"] or "fits"})
        self.admission_state(admission)

    def admission_state(self, admission: Admission) -> None:
        self.margin.set(admission.learned)
        if (load := admission.load()) is not None:
            self.planned.set(load)

    def outcome(self, variant: str, endpoint: str, outcome: str) -> None:
        self.requests.inc(tags={"variant": variant, "endpoint": endpoint, "outcome": outcome})
        if outcome == "cancelled":
            self.cancellations.inc(tags={"variant": variant, "endpoint": endpoint})
