"""A short soak on the session's service: 3 streams for 15 s with disconnects and bad requests mixed in."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.soak import growth_violations, soak, table, write
from tests.serve.conftest import Service

MAX_GROWTH_MB = 100.0
"""Per-replica RSS growth allowed between the end of the warm-up and the end of the soak."""


def test_short_soak(service: Service, tmp_path: Path) -> None:
    result = asyncio.run(soak(service.url, streams=3, seconds=15, seed=1, windows=3, warmup_s=5))
    print("\n" + table(result))
    json_path, png_path = write(result, tmp_path)
    assert json_path.stat().st_size > 0 and png_path.read_bytes()[:4] == b"\x89PNG"
    outcomes = result["outcomes"]
    assert result["errors"] == {}, outcomes
    assert result["completed"] >= 5 and outcomes.get("disconnected", 0) >= 1 and outcomes.get("rejected", 0) >= 1
    assert all(w["n"] > 0 for w in result["windows"]), result["windows"]
    assert result["first_audio"]["p99"] < 10, result["first_audio"]
    stages = {"Ingress", "Encoders", "CustomizedEncoders", "Upsampler-Decoder", "Vocoder", "Fade", "ChunkStats"}
    measured = {name.split("#")[1] for name in result["replicas"] if name.startswith("SERVE_REPLICA::voxstack#")}
    assert stages <= measured, measured
    assert sum(r["checked"] for r in result["replicas"].values()) >= len(stages), result["replicas"]
    assert not growth_violations(result, MAX_GROWTH_MB), result["replicas"]
