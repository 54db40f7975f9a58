"""Nodes follow load, with Ray's real autoscaler and its fake multi-node provider (``bench.cluster_scaling --quick``).

The bench runs as a subprocess: its Ray (head, autoscaler, fake nodes) is its own, on its own ports and temp
folder, and it stops only that Ray's processes; the suite's shared cluster is never touched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.cluster_scaling import PINNED

ROOT = Path(__file__).resolve().parents[2]


def test_inf2_node_comes_with_the_burst_and_goes_after_it() -> None:
    out = Path(tempfile.mkdtemp(prefix="vxscale"))
    done = subprocess.run([sys.executable, "-m", "bench.cluster_scaling", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    result = json.loads((out / "cluster_scaling.json").read_text())
    samples = [s for s in result["timeline"] if "nodes" in s]
    events = result["events"]
    print(f"\n{done.stdout.splitlines()[-2]}")

    assert samples[0]["nodes"] == {"head": 1, "gpu": 0, "inf2": 1}  # min_replicas 1 brought up one inf2 node
    assert max(s["nodes"]["inf2"] for s in samples) == 2  # the burst brought up another
    assert max(s["replicas"].get(PINNED, 0) for s in samples) == 2
    assert events["node_up_s"] is not None and events["replica_running_s"] is not None, events
    assert events["node_gone_s"] is not None, events  # after the burst the replica, then the node, went
    assert samples[-1]["nodes"]["inf2"] == 1 and samples[-1]["replicas"][PINNED] == 1
    assert all(s["nodes"]["gpu"] == 0 and s["nodes"]["head"] == 1 for s in samples)  # no node of a wrong type
    for s in samples:
        assert set(s["placed"].get(PINNED, [])) <= {"inf2"}, s  # pinned replicas only where neuron_cores are
        for stage in ("Ingress", "Encoders", "Upsampler-Decoder"):  # the other stages stay where they were
            assert s["placed"].get(stage) == ["head"] and s["replicas"].get(stage) == 1, s
    admitted = [r for r in result["streams"] if r.get("status") != 429]  # a busy ingress may refuse some
    assert len(admitted) >= 4 and all(r["ok"] and r.get("error") is None for r in admitted), result["streams"]
