"""Nodes follow load: a load ramp on an autoscaling Ray cluster, with a timeline of replicas, nodes, streams
and first audio.

The cluster is Ray's own autoscaler driving its fake multi-node provider (``bench/fake_cluster.py``): a
CPU-only head and worker types ``gpu`` and ``inf2``, in a Ray session of its own that stops without touching
any other Ray on the machine.

piper-joe is served with its vocoder stage (``Vocoder-Fade-ChunkStats``) pinned to ``neuron_cores: 2`` and
autoscaled from one to two replicas: a burst of streams adds a replica, the autoscaler brings up an inf2 node
for it, and after the burst the replica and then the node go. The encoder and decoder stages stay on the head.

Run: ``python -m bench.cluster_scaling`` (ramp 1, 2, 4, 6 streams) or ``--quick`` (one burst of 4, as the
test does). Writes ``bench/results/cluster_scaling.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.fake_cluster import FakeAutoscalingCluster, node_type
from bench.output import figure, write_json
from deployments.run import free_port

ROOT = Path(__file__).resolve().parent.parent
PINNED = "Vocoder-Fade-ChunkStats"
STAGES = ["Ingress", "Encoders", "Upsampler-Decoder", PINNED]
TEXT = " ".join(f"Sentence number {i} keeps the vocoder busy for a few seconds of audio." for i in range(4))


def serve_config(port: int) -> dict[str, Any]:
    def stage(name: str, **options: Any) -> dict[str, Any]:
        return {"name": name, "max_ongoing_requests": 16, "max_queued_requests": 32, **options}

    return {"proxy_location": "HeadOnly", "http_options": {"host": "127.0.0.1", "port": port,
                                                           "request_timeout_s": 600},
            "logging_config": {"enable_access_log": False},
            "applications": [{"name": "voxstack", "route_prefix": "/", "import_path": "deployments.app:build",
                              "args": {"addon": "piper-joe", "groups": [[0], [1, 2, 3]]},
                              "deployments": [
                                  stage("Ingress", ray_actor_options={"num_cpus": 0},
                                        user_config={"max_streams": 16, "deadline_s": 120, "lookahead": 4}),
                                  stage("Encoders", ray_actor_options={"num_cpus": 0.2}),
                                  stage("Upsampler-Decoder", ray_actor_options={"num_cpus": 0.5}),
                                  stage(PINNED, ray_actor_options={"num_cpus": 0, "resources": {"neuron_cores": 2}},
                                        autoscaling_config={"min_replicas": 1, "max_replicas": 2,
                                                            "target_ongoing_requests": 1, "upscale_delay_s": 1,
                                                            "downscale_delay_s": 5, "metrics_interval_s": 0.5,
                                                            "look_back_period_s": 2})]}]}


class Timeline:
    """Samples nodes per type, replicas per stage and where they run, once a second."""

    def __init__(self, started: float, dashboard: str) -> None:
        self.started = started
        self.dashboard = dashboard
        """The cluster's dashboard, which answers the state API (other Rays may run on the machine)."""
        self.samples: list[dict[str, Any]] = []
        self.active = 0
        self.stop = threading.Event()

    def sample(self) -> dict[str, Any]:
        import ray
        from ray import serve
        from ray.util.state import list_actors

        nodes = {n["NodeID"]: node_type(n["Resources"]) for n in ray.nodes() if n.get("Alive")}
        counts = {t: sum(1 for v in nodes.values() if v == t) for t in ("head", "gpu", "inf2")}
        app = serve.status().applications.get("voxstack")
        deployments = app.deployments if app else {}
        replicas = {name: int(d.replica_states.get("RUNNING", 0)) for name, d in deployments.items()}
        placed: dict[str, list[str]] = {}
        for actor in list_actors(address=self.dashboard, filters=[("state", "=", "ALIVE")], limit=1000):
            name = actor.class_name or ""
            if name.startswith("ServeReplica:voxstack:"):
                placed.setdefault(name.split(":", 2)[2], []).append(nodes.get(actor.node_id, "gone"))
        return {"t": round(time.monotonic() - self.started, 2), "nodes": counts, "replicas": replicas,
                "placed": placed, "streams": self.active}

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.samples.append(self.sample())
            except Exception as error:  # the state API may miss a beat while nodes come and go
                self.samples.append({"t": round(time.monotonic() - self.started, 2), "error": str(error)})
            self.stop.wait(1.0)


def one_stream(url: str, client: str, started: float, timeline: Timeline) -> dict[str, Any]:
    begun = time.monotonic()
    record: dict[str, Any] = {"client": client, "t": round(begun - started, 2), "first_s": None, "ok": False}
    timeline.active += 1
    try:
        with httpx.stream("POST", f"{url}/v1/stream", json={"model": "piper-joe", "input": TEXT},
                          headers={"x-voxstack-client": client}, timeout=180) as response:
            record["status"] = response.status_code
            if response.status_code != 200:  # 429: the ingress's admission refused it (retried by the client)
                record["error"] = response.read().decode(errors="replace")
                record["retry_after_s"] = float(response.headers.get("retry-after", "1"))
                return record
            samples = 0
            for line in response.iter_lines():
                if not line:
                    continue
                item = json.loads(line)
                if item["type"] == "audio":
                    if record["first_s"] is None:
                        record["first_s"] = round(time.monotonic() - begun, 3)
                    samples += item["samples"]
                elif item["type"] == "end":
                    record["ok"] = item["samples"] == samples > 0
                elif item["type"] == "error":
                    record["error"] = item["error"]["message"]
    except httpx.HTTPError as error:
        record["error"] = f"{type(error).__name__}: {error}"
    finally:
        timeline.active -= 1
        record["end_t"] = round(time.monotonic() - started, 2)
    return record


def load(url: str, streams: int, seconds: float, started: float, timeline: Timeline,
         done: Callable[[list[dict[str, Any]]], bool] = lambda records: False) -> list[dict[str, Any]]:
    """``streams`` clients, each sending one stream after another, for ``seconds`` or until ``done(records)``."""
    records: list[dict[str, Any]] = []
    until = time.monotonic() + seconds

    def client(i: int) -> None:
        n = 0
        while time.monotonic() < until and not done(records):
            record = one_stream(url, f"c{streams}-{i}-{n}", started, timeline)
            records.append(record)
            n += 1
            if record.get("status") == 429:
                time.sleep(record["retry_after_s"])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return records


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def events(samples: list[dict[str, Any]], streams: list[dict[str, Any]], burst_t: float) -> dict[str, Any]:
    """Seconds from the burst to a new inf2 node, to a pinned replica RUNNING there, to the first stream begun
    after it, and to the node gone again."""
    good = [s for s in samples if "nodes" in s]
    base = good[0]["nodes"]["inf2"] if good else 0
    node_t = next((s["t"] for s in good if s["t"] >= burst_t and s["nodes"]["inf2"] > base), None)
    replica_t = next((s["t"] for s in good if node_t is not None and s["t"] >= node_t
                      and s["placed"].get(PINNED, []).count("inf2") > base and s["replicas"].get(PINNED, 0) > base),
                     None)
    stream_t = next((r["t"] + (r["first_s"] or 0) for r in sorted(streams, key=lambda r: r["t"])
                     if replica_t is not None and r["t"] >= replica_t and r["ok"]), None)
    gone_t = next((s["t"] for s in good if replica_t is not None and s["t"] > replica_t
                   and s["nodes"]["inf2"] == base), None)

    def since(t: float | None) -> float | None:
        return None if t is None else round(t - burst_t, 1)

    return {"inf2_nodes_before": base, "burst_t": burst_t, "node_up_s": since(node_t),
            "replica_running_s": since(replica_t), "first_stream_after_s": since(stream_t),
            "node_gone_s": since(gone_t)}


def run(steps: list[int], step_s: float, cool_s: float, until_served: bool = False) -> dict[str, Any]:
    """Load in ``steps``; with ``until_served`` a step ends early once a stream begun after the new pinned
    replica was RUNNING has completed."""
    from deployments.rollout import deploy

    cluster = FakeAutoscalingCluster()
    started = time.monotonic()
    timeline = Timeline(started, f"http://127.0.0.1:{cluster.dashboard_port}")
    sampler = threading.Thread(target=timeline.run, daemon=True)
    try:
        cluster.start()
        os.environ.update({"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"})
        import ray

        ray.init(address=cluster.address, log_to_driver=False)
        port = free_port()
        deploy(serve_config(port), f"http://127.0.0.1:{cluster.dashboard_port}", timeout_s=300,
               progress=lambda line: print(f"deploy: {line}", flush=True))
        url = f"http://127.0.0.1:{port}"
        sampler.start()
        time.sleep(2)  # the quiet baseline
        burst_t = round(time.monotonic() - started, 2)
        streams: list[dict[str, Any]] = []

        def served(records: list[dict[str, Any]]) -> bool:
            return until_served and events(timeline.samples, records, burst_t)["first_stream_after_s"] is not None

        for n in steps:
            print(f"load: {n} streams for up to {step_s:.0f} s", flush=True)
            streams += load(url, n, step_s, started, timeline, served)
        quiet_t = round(time.monotonic() - started, 2)
        base = timeline.samples[0]["nodes"]["inf2"] if timeline.samples and "nodes" in timeline.samples[0] else 1
        deadline = time.monotonic() + cool_s
        while time.monotonic() < deadline:  # replicas, then nodes, go back
            last = timeline.samples[-1] if timeline.samples else {}
            if last.get("nodes", {}).get("inf2") == base and last.get("replicas", {}).get(PINNED) == 1 \
                    and time.monotonic() - started - quiet_t > 5:
                break
            time.sleep(1)
        time.sleep(2)
        timeline.stop.set()
        sampler.join(timeout=30)
        return {"steps": steps, "step_s": step_s, "burst_t": burst_t, "quiet_t": quiet_t,
                "timeline": timeline.samples, "streams": streams,
                "events": events(timeline.samples, streams, burst_t)}
    finally:
        timeline.stop.set()
        try:
            import ray

            ray.shutdown()
        finally:
            cluster.stop()


def windows(result: dict[str, Any], width_s: float = 5.0) -> list[dict[str, Any]]:
    """First audio p50/p99 of the streams begun in each window."""
    out = []
    streams = [s for s in result["streams"] if s["first_s"] is not None]
    if not streams:
        return out
    t = min(s["t"] for s in streams)
    end = max(s["t"] for s in streams)
    while t <= end:
        firsts = [s["first_s"] for s in streams if t <= s["t"] < t + width_s]
        out.append({"t": round(t + width_s / 2, 1), "p50": percentile(firsts, 0.5), "p99": percentile(firsts, 0.99),
                    "n": len(firsts)})
        t += width_s
    return out


def write(result: dict[str, Any], out: Path) -> tuple[Path, Path]:
    json_path = write_json(out, "cluster_scaling", result)
    samples = [s for s in result["timeline"] if "nodes" in s]
    ts = [s["t"] for s in samples]
    with figure(out / "cluster_scaling.png", 4, 1, figsize=(10, 10), sharex=True) as axes:
        for stage in STAGES:
            axes[0].step(ts, [s["replicas"].get(stage, 0) for s in samples], where="post", label=stage)
        axes[0].set(ylabel="replicas", title="Replicas per stage")
        for kind in ("head", "gpu", "inf2"):
            axes[1].step(ts, [s["nodes"][kind] for s in samples], where="post", label=kind)
        axes[1].set(ylabel="nodes", title="Nodes per type")
        axes[2].step(ts, [s["streams"] for s in samples], where="post")
        axes[2].set(ylabel="streams", title="Streams in progress")
        w = result["windows"]
        for key in ("p50", "p99"):
            axes[3].plot([x["t"] for x in w], [None if x[key] is None else x[key] * 1000 for x in w], "o-", label=key)
        axes[3].set(xlabel="time (s)", ylabel="ms", title="First audio (streams begun in each 5 s window)")
        for ax in axes:
            ax.axvline(result["burst_t"], color="grey", linestyle=":")
        for ax in (axes[0], axes[1], axes[3]):
            ax.legend(fontsize=7)
    return json_path, out / "cluster_scaling.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="one burst of 4 streams, until a stream on the new node's replica completes (at most "
                             "40 s; the test's run)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    steps, step_s = ([4], 40.0) if args.quick else ([1, 2, 4, 6], 20.0)
    result = run(steps, step_s, cool_s=90.0, until_served=args.quick)
    result["windows"] = windows(result)
    from bench.machine import machine_info

    result["machine"] = machine_info()
    paths = write(result, args.out)
    ok = sum(s["ok"] for s in result["streams"])
    refused = sum(s.get("status") == 429 for s in result["streams"])
    print(f"streams: {ok} of {len(result['streams'])} complete, {refused} refused as busy (429); "
          f"events (s after the burst): {result['events']}")
    print(f"wrote {paths[0]} and {paths[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
