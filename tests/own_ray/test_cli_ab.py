"""A/B as a user runs it: ``voxstack serve --config serve_configs/ab.yaml``, ``voxstack ab weights``, ``ab report``;
then a rollout (``voxstack deploy``) that restarts piper-joe's vocoder stage under four long streams.

The service runs as a subprocess with its own Ray (never the suite's shared cluster), on free HTTP and
metrics ports (``--port``, ``--metrics-port``; the metrics default is 8080).
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.own_ray.cli_service import ROOT, CliService, ndjson_stream
from tests.serve.conftest import LONG_TEXT

CLIENTS = [f"ab-client-{i}" for i in range(60)]
BASE, VARIANT = "piper-joe.Encoders", "piper-joe.CustomizedEncoders"
ROLLOUT_TEXT = LONG_TEXT + " " + LONG_TEXT
"""Sixteen sentences: long enough to outlast a rollout on a busy two-core machine."""
CONFIG = {"path": "serve_configs/ab.yaml"}
"""The config the service runs (a rollout replaces it): a later change starts from it, as a user's would."""
SENT: Counter[str] = Counter()
"""Streams sent per variant, for the report to match."""


@pytest.fixture(scope="module")
def ab() -> Iterator[CliService]:
    with CliService("serve_configs/ab.yaml") as service:
        service.start()
        print(f"\nab.yaml served in {service.ready_s:.1f} s (Ray start included)")
        yield service


def _routes(service: CliService, clients: list[str] = CLIENTS) -> dict[str, str]:
    with httpx.Client(base_url=service.url, timeout=30) as http:
        return {c: http.get("/v1/route", params={"model": "piper-joe"}, headers={"x-voxstack-client": c}).json()
                ["variant"] for c in clients}


def _count(results: list[dict[str, Any]]) -> None:
    for r in results:
        SENT[r["variant"]] += 1


def _long_streams(service: CliService, clients: list[str], text: str = LONG_TEXT,
                  ) -> tuple[list[threading.Thread], dict[str, Any]]:
    results: dict[str, Any] = {c: {} for c in clients}
    threads = [threading.Thread(target=ndjson_stream, args=(service.url, c, text), kwargs={"result": results[c]})
               for c in clients]
    for t in threads:
        t.start()
    return threads, results


def test_rollout_restarting_the_vocoder_stage_drops_no_stream(ab: CliService) -> None:
    stage = "piper-joe.Upsampler-Decoder-Vocoder-Fade-ChunkStats"  # piper-joe's vocoder, with its neighbours
    clients = [f"rollout-{i}" for i in range(4)]
    routes = _routes(ab, clients)
    threads, reference = _long_streams(ab, sorted({routes[c]: c for c in clients}.values()), ROLLOUT_TEXT)
    for t in threads:  # each variant's full length (seeded), before any change: one stream per variant
        t.join(timeout=300)
    _count(list(reference.values()))
    full = {routes[c]: r["samples"] for c, r in reference.items()}
    old = ab.replicas().get(stage, set())
    assert old
    raw = yaml.safe_load((ROOT / "serve_configs" / "ab.yaml").read_text())
    entry = next(d for d in raw["applications"][0]["deployments"] if d["name"] == stage)
    entry["ray_actor_options"]["num_cpus"] = 0.2  # a changed actor option (that fits beside the old replica)
    changed = Path(tempfile.mkdtemp(prefix="vxrollout")) / "ab-rollout.yaml"
    changed.write_text(yaml.safe_dump(raw, sort_keys=False))

    threads, results = _long_streams(ab, clients, ROLLOUT_TEXT)
    deadline = time.monotonic() + 120
    while not all(r.get("first_at") for r in results.values()):  # every stream has begun
        assert time.monotonic() < deadline, results
        time.sleep(0.2)
    started = time.monotonic()
    done = ab.command("deploy", str(changed), "--address", ab.address)
    assert done.returncode == 0, done.stdout + done.stderr
    applied = time.monotonic()
    CONFIG["path"] = str(changed)
    while ab.replicas().get(stage, set()) & old:  # the old replicas drain, then exit
        assert time.monotonic() - applied < 300, "the old replicas never left"
        time.sleep(0.5)
    after = ndjson_stream(ab.url, "rollout-after", "Served after the rollout.")
    for t in threads:
        t.join(timeout=300)
    _count([*results.values(), after])
    new = ab.replicas().get(stage, set())
    print(f"rollout: deploy took {applied - started:.1f} s; old replicas {sorted(old)}, new {sorted(new)}")
    assert new and not new & old
    assert after["error"] is None and after["end"] is not None and after["samples"] > 0, after
    running = sum(r["ended_at"] > applied for r in results.values())
    print(f"rollout: 4 streams running when applied, {running} still running when the new replicas served")
    for c in clients:
        r = results[c]
        assert r["first_at"] < started, r  # running when the change was applied
        assert r["error"] is None and r["end"] is not None, r
        assert r["end"]["samples"] == r["samples"] == full[routes[c]] > 0, (r, full)


def test_sixty_clients_split_near_the_weights_and_stick(ab: CliService) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: ndjson_stream(ab.url, c, "Hello there."), CLIENTS + CLIENTS))
    _count(results)
    broken = [r for r in results if r["status"] != 200 or r["end"] is None or r["error"] is not None]
    assert not broken, broken
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
    replicas = ab.replicas()
    assert len(replicas) == 10, replicas  # ab.yaml's ten stages
    threads, streams = _long_streams(ab, CLIENTS[:4])
    deadline = time.monotonic() + 90
    while not all(r.get("first_at") for r in streams.values()) and time.monotonic() < deadline:
        time.sleep(0.2)  # every stream admitted has begun (a busy ingress admits the rest later)
    moved_at = time.monotonic()
    done = ab.command("ab", "weights", "--config", CONFIG["path"], "--address", ab.address,
                      f"{VARIANT}=0.5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "piper-joe.CustomizedEncoders': 0.5" in done.stdout
    for t in threads:
        t.join(timeout=300)
    results = list(streams.values())
    _count(results)
    after = _routes(ab)
    on_variant = sum(v == VARIANT for v in after.values())
    print(f"after moving to 50/50: {60 - on_variant} / {on_variant} of 60 clients")
    assert 19 <= on_variant <= 41  # 30 expected; three binomial standard deviations either side
    assert all(after[c] == VARIANT for c in CLIENTS if before[c] == VARIANT)  # stayed
    assert all(before[c] == BASE for c in CLIENTS if after[c] != before[c])  # only the moved bucket changed
    now = ab.replicas()
    for name, pids in replicas.items():  # no replica restarted (autoscaling may add or remove some)
        assert not (pids - now[name] and now[name] - pids), (name, pids, now[name])
    across = [r for r in results if r["first_at"] and r["first_at"] < moved_at < r["ended_at"]]
    print(f"streams in flight across the weight change: {len(across)} of 4")
    assert across  # the change happened under load
    for r in results:  # every stream ends complete
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



def test_a_stream_that_cannot_drain_in_time_ends_with_an_error(ab: CliService) -> None:
    one_utterance = "The quick brown fox jumps over the lazy dog and " * 8 + "then it rests."  # ~25 s of audio
    clients = [f"drain-{i}" for i in range(4)]
    routes = _routes(ab, clients)
    threads, reference = _long_streams(ab, sorted({routes[c]: c for c in clients}.values()), one_utterance)
    for t in threads:
        t.join(timeout=300)
    full = {routes[c]: r["samples"] for c, r in reference.items()}
    stage = "piper-joe.Upsampler-Decoder-Vocoder-Fade-ChunkStats"
    raw = yaml.safe_load(Path(CONFIG["path"]).read_text())
    entry = next(d for d in raw["applications"][0]["deployments"] if d["name"] == stage)
    entry["graceful_shutdown_timeout_s"] = 0.5  # in place: the old replicas' drain shrinks to half a second
    entry["user_config"] = {**(entry.get("user_config") or {}), "pace_ahead_s": 1.0}  # calls last as they play
    short = Path(tempfile.mkdtemp(prefix="vxdrain")) / "ab-short-drain.yaml"
    short.write_text(yaml.safe_dump(raw, sort_keys=False))
    done = ab.command("deploy", str(short), "--address", ab.address)
    assert done.returncode == 0, done.stdout + done.stderr
    entry["ray_actor_options"]["num_cpus"] = 0.1  # then a restart
    restart = short.with_name("ab-restart.yaml")
    restart.write_text(yaml.safe_dump(raw, sort_keys=False))
    threads, results = _long_streams(ab, clients, one_utterance)
    deadline = time.monotonic() + 120
    while not any(r.get("first_at") for r in results.values()):  # a stream plays, paced, on the old replica
        assert time.monotonic() < deadline, results
        time.sleep(0.2)
    done = ab.command("deploy", str(restart), "--address", ab.address)
    applied = time.monotonic()
    assert done.returncode == 0, done.stdout + done.stderr
    for t in threads:
        t.join(timeout=300)
    cut = [r for r in results.values() if r["error"] is not None and r.get("first_at")]  # an error after audio
    print(f"drain of 0.5 s: {len(cut)} of 4 streams cut, each with an error line; streams ended "
          f"{sorted(round(r['ended_at'] - applied, 1) for r in results.values())} s after the deploy returned"
          + (f"; e.g. {cut[0]['error']}" if cut else ""))
    for c, r in results.items():  # an error line, or the whole stream: never a clean end to a short one
        assert (r["error"] is not None and r["end"] is None) or r["samples"] == full[routes[c]] > 0, (r, full)
    assert cut, "no stream was still on the old replica when its drain ran out"


def _logged(ab: CliService, line: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while line not in ab.output():
        assert time.monotonic() < deadline, f"{line!r} not in voxstack serve's output:\n{ab.output()[-3000:]}"
        time.sleep(0.2)


def test_one_request_id_from_the_client_to_every_log_line(ab: CliService) -> None:
    """The client's X-Request-ID is echoed and logged; each request logs open, then end or abort."""
    body = {"model": "piper-joe", "input": "Follow me through every stage."}
    with httpx.Client(base_url=ab.url, timeout=120) as http:
        whole = http.post("/v1/stream", json=body, headers={"X-Request-ID": "trace-whole-1"})
        assert whole.status_code == 200 and whole.headers["x-request-id"] == "trace-whole-1"
        assert json.loads(whole.text.splitlines()[0])["request_id"] == "trace-whole-1"
        with http.stream("POST", "/v1/stream", json={**body, "input": LONG_TEXT},
                         headers={"X-Request-ID": "trace-gone-2"}) as gone:
            next(gone.iter_lines())  # the start line, then the client hangs up
        made = http.post("/v1/audio/speech", json={**body, "response_format": "pcm"})
        assert made.status_code == 200 and len(made.headers["x-request-id"]) >= 16  # one made for it
        refused = http.post("/v1/stream", json={**body, "voice": "nobody"}, headers={"X-Request-ID": "trace-bad-3"})
        assert refused.status_code == 400 and refused.headers["x-request-id"] == "trace-bad-3"
    _logged(ab, "voxstack request trace-whole-1 open endpoint=stream model=piper-joe")
    _logged(ab, "voxstack request trace-whole-1 end audio_s=")
    _logged(ab, "voxstack request trace-gone-2 abort reason=client_gone")
    _logged(ab, f"voxstack request {made.headers['x-request-id']} end audio_s=")
    _logged(ab, "voxstack request trace-bad-3 abort reason=invalid")
    assert "trace-whole-1 abort" not in ab.output() and "trace-gone-2 end" not in ab.output()
