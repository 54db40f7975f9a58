"""Compare A/B variants from the service's own Prometheus metrics (``voxstack ab report``).

Per addon and variant: requests, error rate, first-audio p50/p99 and real-time factor, read from
``voxstack_requests``, ``voxstack_first_audio_seconds`` and ``voxstack_real_time_factor`` as Ray
exports them (summed over every replica and endpoint, and over every node's endpoint given).
Percentiles interpolate within histogram buckets, as Prometheus's ``histogram_quantile`` does.

Whether two variants' first audio differs is tested with a two-sided Mann-Whitney U test on the
histogram's buckets (observations in one bucket count as ties, with the tie-corrected variance and a
normal approximation), each variant against its addon's stack encoder. ``P(faster)`` is the
probability that a request of the variant gets its first audio sooner than one of the baseline.
"""

from __future__ import annotations

import math
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

SEPARATOR = "."
ALPHA = 0.05


@dataclass
class Histogram:
    """Cumulative bucket counts by upper bound (the last bound is +Inf), with the sum."""

    buckets: dict[float, float] = field(default_factory=dict)
    total: float = 0.0

    def add(self, le: float, count: float) -> None:
        self.buckets[le] = self.buckets.get(le, 0.0) + count

    @property
    def count(self) -> float:
        return max(self.buckets.values(), default=0.0)

    def per_bucket(self) -> list[tuple[float, float, float]]:
        """(lower bound, upper bound, observations) for every bucket in order."""
        out, lower, below = [], 0.0, 0.0
        for upper in sorted(self.buckets):
            out.append((lower, upper, self.buckets[upper] - below))
            lower, below = upper, self.buckets[upper]
        return out

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile, linear within its bucket (the last finite bound past the largest)."""
        if self.count <= 0:
            return None
        rank = q * self.count
        bins = self.per_bucket()
        for lower, upper, n in bins:
            if n > 0 and rank <= n:
                if math.isinf(upper):
                    return lower
                return lower + (upper - lower) * rank / n
            rank -= n
        return bins[-1][0]


@dataclass
class Variant:
    addon: str
    name: str
    outcomes: dict[str, float] = field(default_factory=dict)
    first_audio: Histogram = field(default_factory=Histogram)
    rtf: Histogram = field(default_factory=Histogram)

    @property
    def requests(self) -> int:
        return round(sum(self.outcomes.values()))

    @property
    def errors(self) -> int:
        return round(self.outcomes.get("failed", 0.0))

    def row(self) -> dict[str, Any]:
        def ms(value: float | None) -> float | None:
            return None if value is None else round(value * 1000, 1)

        return {"addon": self.addon, "variant": self.name, "requests": self.requests,
                "outcomes": {k: round(v) for k, v in sorted(self.outcomes.items())},
                "error_rate": round(self.errors / self.requests, 4) if self.requests else None,
                "first_audio_p50_ms": ms(self.first_audio.quantile(0.5)),
                "first_audio_p99_ms": ms(self.first_audio.quantile(0.99)),
                "rtf_p50": _round(self.rtf.quantile(0.5)),
                "rtf_mean": _round(self.rtf.total / self.rtf.count if self.rtf.count else None)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _is(sample: str, metric: str, suffix: str = "") -> bool:
    """Ray prefixes exported metric names (``ray_voxstack_requests_total``)."""
    name = metric + suffix
    return sample == name or sample.endswith("_" + name)


def parse(texts: list[str]) -> dict[tuple[str, str], Variant]:
    """Variants from Prometheus exposition texts (one per node), keyed by (addon, variant)."""
    variants: dict[tuple[str, str], Variant] = {}

    def variant(labels: dict[str, str]) -> Variant:
        addon, _, name = labels.get("variant", "?").rpartition(SEPARATOR)
        key = (addon or "(default)", name)
        return variants.setdefault(key, Variant(*key))

    for text in texts:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if _is(s.name, "voxstack_requests", "_total") or _is(s.name, "voxstack_requests"):
                    v = variant(s.labels)
                    outcome = s.labels.get("outcome", "?")
                    v.outcomes[outcome] = v.outcomes.get(outcome, 0.0) + s.value
                    continue
                for metric, attribute in (("voxstack_first_audio_seconds", "first_audio"),
                                          ("voxstack_real_time_factor", "rtf")):
                    if _is(s.name, metric, "_bucket"):
                        getattr(variant(s.labels), attribute).add(float(s.labels["le"]), s.value)
                    elif _is(s.name, metric, "_sum"):
                        getattr(variant(s.labels), attribute).total += s.value
    return variants


def mann_whitney(a: Histogram, b: Histogram) -> dict[str, float] | None:
    """Two-sided Mann-Whitney U of ``a`` against ``b`` on shared buckets: z, p and P(a < b)."""
    if a.count == 0 or b.count == 0:
        return None
    edges = sorted(set(a.buckets) | set(b.buckets))
    na, nb = a.count, b.count
    counts_a = dict((upper, n) for _, upper, n in a.per_bucket())
    counts_b = dict((upper, n) for _, upper, n in b.per_bucket())
    u, below_b, ties = 0.0, 0.0, 0.0
    for edge in edges:
        ca, cb = counts_a.get(edge, 0.0), counts_b.get(edge, 0.0)
        u += ca * ((nb - below_b - cb) + 0.5 * cb)  # pairs where a is sooner, ties count half
        below_b += cb
        t = ca + cb
        ties += t**3 - t
    n = na + nb
    variance = na * nb / 12.0 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:
        return {"z": 0.0, "p": 1.0, "p_faster": u / (na * nb)}
    z = (u - na * nb / 2.0) / math.sqrt(variance)
    return {"z": round(z, 3), "p": round(math.erfc(abs(z) / math.sqrt(2.0)), 4), "p_faster": round(u / (na * nb), 3)}


def _baseline(variants: list[Variant]) -> Variant:
    """The addon's stack encoder (``Encoders``), else its busiest variant."""
    named = [v for v in variants if v.name == "Encoders"]
    return named[0] if named else max(variants, key=lambda v: v.requests)


def report(variants: dict[tuple[str, str], Variant]) -> dict[str, Any]:
    """Rows per variant, and per addon each variant's first-audio test against the baseline."""
    rows, tests = [], []
    for addon in sorted({a for a, _ in variants}):
        mine = sorted((v for (a, _), v in variants.items() if a == addon), key=lambda v: v.name)
        rows += [v.row() for v in mine]
        base = _baseline(mine)
        for v in mine:
            if v is base:
                continue
            result = mann_whitney(v.first_audio, base.first_audio)
            tests.append({"addon": addon, "variant": v.name, "baseline": base.name, "test": "Mann-Whitney U",
                          "alpha": ALPHA, **(result or {}),
                          "significant": bool(result and result["p"] < ALPHA)})
    return {"variants": rows, "first_audio_tests": tests}


def fetch(urls: list[str], timeout_s: float = 10.0) -> list[str]:
    """The exposition text of every metrics endpoint."""
    texts = []
    for url in urls:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # raises OSError on failure
            texts.append(response.read().decode("utf-8"))
    return texts


def table(result: dict[str, Any]) -> str:
    """The report as aligned text."""
    head = ["addon", "variant", "requests", "errors", "error rate", "first p50 ms", "first p99 ms", "RTF p50",
            "RTF mean"]
    rows = [[r["addon"], r["variant"], r["requests"], r["outcomes"].get("failed", 0),
             "-" if r["error_rate"] is None else f"{r['error_rate']:.1%}",
             *("-" if r[k] is None else f"{r[k]:g}" for k in ("first_audio_p50_ms", "first_audio_p99_ms",
                                                               "rtf_p50", "rtf_mean"))]
            for r in result["variants"]]
    widths = [max(len(str(x)) for x in column) for column in zip(head, *rows, strict=False)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)) for line in [head, *rows]]
    for t in result["first_audio_tests"]:
        if "p" not in t:
            lines.append(f"{t['addon']}: {t['variant']} vs {t['baseline']}: too few requests to test")
            continue
        verdict = "significant" if t["significant"] else "not significant"
        lines.append(f"{t['addon']}: {t['variant']} vs {t['baseline']} first audio: Mann-Whitney U, "
                     f"z = {t['z']:+.2f}, p = {t['p']:.3g} ({verdict} at {t['alpha']:.0%}); "
                     f"P(faster) = {t['p_faster']:.2f}")
    return "\n".join(lines)
