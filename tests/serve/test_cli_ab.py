"""A/B as a user runs it: ``voxstack serve --config serve_configs/ab.yaml``, ``voxstack ab weights``, ``ab report``.

The service runs as a subprocess with its own Ray (never the suite's shared cluster), on free HTTP and
metrics ports (``--port``, ``--metrics-port``; the metrics default is 8080).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.serve.cli_service import CliService, ndjson_stream
from tests.serve.conftest import LONG_TEXT

CLIENTS = [f"ab-client-{i}" for i in range(60)]
BASE, VARIANT = "piper-joe.Encoders", "piper-joe.CustomizedEncoders"
SENT: Counter[str] = Counter()
"""Streams sent per variant, for the report to match."""


@pytest.fixture(scope="module")
def ab() -> Iterator[CliService]:
    with CliService("serve_configs/ab.yaml") as service:
        service.start()
        print(f"\nab.yaml served in {service.ready_s:.1f} s (Ray start included)")
        yield service


def _routes(service: CliService) -> dict[str, str]:
    with httpx.Client(base_url=service.url, timeout=30) as http:
        return {c: http.get("/v1/route", params={"model": "piper-joe"}, headers={"x-voxstack-client": c}).json()
                ["variant"] for c in CLIENTS}


def _count(results: list[dict[str, Any]]) -> None:
    for r in results:
        SENT[r["variant"]] += 1


def test_sixty_clients_split_near_the_weights_and_stick(ab: CliService) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: ndjson_stream(ab.url, c, "Hello there."), CLIENTS + CLIENTS))
    _count(results)
    assert all(r["status"] == 200 and r["end"] is not None and r["error"] is None for r in results)
    assert all(r["variant"] == r["start_variant"] for r in results)
    by_client: dict[str, set[str]] = {}
    for r in results:
        by_client.setdefault(r["client"], set()).add(r["variant"])
    assert all(len(v) == 1 for v in by_client.values()), by_client  # each client stays on its variant
    on_variant = sum(v == {VARIANT} for v in by_client.values())
    print(f"ab.yaml split at 90/10: {60 - on_variant} / {on_variant} of 60 clients")
    assert 1 <= on_variant <= 13  # 6 expected; three binomial standard deviations either side
    assert _routes(ab) == {c: next(iter(v)) for c, v in by_client.items()}


def test_weights_move_live_without_restarts_or_broken_streams(ab: CliService) -> None:
    before = _routes(ab)
    pids = ab.replica_pids()
    assert len(pids) >= 10, pids  # ab.yaml's ten stages (autoscaling may have added some)
    long_clients = CLIENTS[:4]
    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda c=c: results.append(ndjson_stream(ab.url, c, LONG_TEXT)))
               for c in long_clients]
    for t in threads:
        t.start()
    time.sleep(3)  # every stream has begun
    moved_at = time.monotonic()
    done = ab.command("ab", "weights", "--config", "serve_configs/ab.yaml", "--address", ab.address,
                      f"{VARIANT}=0.5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "piper-joe.CustomizedEncoders': 0.5" in done.stdout
    for t in threads:
        t.join(timeout=180)
    _count(results)
    after = _routes(ab)
    on_variant = sum(v == VARIANT for v in after.values())
    print(f"after moving to 50/50: {60 - on_variant} / {on_variant} of 60 clients")
    assert 19 <= on_variant <= 41  # 30 expected; three binomial standard deviations either side
    assert all(after[c] == VARIANT for c in CLIENTS if before[c] == VARIANT)  # stayed
    assert all(before[c] == BASE for c in CLIENTS if after[c] != before[c])  # only the moved bucket changed
    assert pids <= ab.replica_pids()  # no replica restarted
    assert len(results) == 4
    for r in results:  # streams in flight across the change end complete
        assert r["first_at"] < moved_at < r["ended_at"], r
        assert r["error"] is None and r["end"] is not None and r["end"]["samples"] == r["samples"] > 0, r


def test_report_counts_every_request_per_variant(ab: CliService) -> None:
    deadline = time.monotonic() + 60
    while True:  # Ray exports metrics every few seconds
        done = ab.command("ab", "report", "--metrics", ab.metrics_url, "--json", timeout_s=60)
        if done.returncode == 0:
            report = json.loads(done.stdout)
            rows = {f"{r['addon']}.{r['variant']}": r for r in report["variants"]}
            if all(rows.get(v, {}).get("requests") == n for v, n in SENT.items()):
                break
        assert time.monotonic() < deadline, (dict(SENT), done.stdout, done.stderr)
        time.sleep(2)
    assert set(SENT) == {BASE, VARIANT}
    for name, n in SENT.items():
        assert rows[name]["outcomes"] == {"ok": n} and rows[name]["error_rate"] == 0.0
        assert 0 < rows[name]["first_audio_p50_ms"] <= rows[name]["first_audio_p99_ms"]
        assert rows[name]["rtf_p50"] > 0
    test = next(t for t in report["first_audio_tests"] if t["addon"] == "piper-joe")
    assert test["test"] == "Mann-Whitney U" and 0.0 <= test["p"] <= 1.0 and test["baseline"] == "Encoders"
    table = ab.command("ab", "report", "--metrics", ab.metrics_url)
    assert table.returncode == 0 and "CustomizedEncoders vs Encoders first audio" in table.stdout
    print(table.stdout)


def test_metrics_at_the_documented_port_tag_requests_by_variant(ab: CliService) -> None:
    text = httpx.get(ab.metrics_url, timeout=30).text
    lines = [line for line in text.splitlines() if "voxstack_requests" in line and not line.startswith("#")]
    assert any(f'variant="{BASE}"' in line for line in lines)
    assert any(f'variant="{VARIANT}"' in line for line in lines)
