"""The adding-a-model guide's plugin served as a user serves it: ``voxstack serve --config acme.yaml`` with the
wheel installed by pip (outside the repository), its addon streamed over HTTP equal to the guide's in-process
file, its encoder variant A/B-tested beside the stack's own encoders and then given every client, live."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import soundfile

from tests.guide_runner import GuideRun
from tests.own_ray.cli_service import CliService, ndjson_stream

ADDON = "acme-tremolo"
VARIANT = "CappedEncoders"
TEXT = "Hello from my imported voice."
"""The guide's sentence: its ``tremolo.wav`` (seed 1) is the in-process reference."""
CLIENTS = [f"plugin-client-{i}" for i in range(16)]


@pytest.fixture(scope="module")
def served(guide: GuideRun) -> Iterator[CliService]:
    assert guide.returncode == 0, guide.output[-4000:]
    env = {"PYTHONPATH": guide.env["PYTHONPATH"], "VOXSTACK_ADDONS": guide.env["VOXSTACK_ADDONS"]}
    with CliService(str(guide.folder / "acme.yaml"), env=env) as service:
        service.start()
        yield service


def _samples(url: str, client: str) -> tuple[str | None, np.ndarray]:
    """The variant that served ``TEXT`` (seed 1) for ``client``, and its 16-bit samples."""
    with httpx.stream("POST", f"{url}/v1/stream", headers={"x-voxstack-client": client}, timeout=120,
                      json={"model": ADDON, "input": TEXT, "seed": 1}) as response:
        assert response.status_code == 200, response.read()
        records = [httpx.Response(200, content=line).json() for line in response.iter_lines() if line]
    assert records[-1]["type"] == "end", records[-1]
    audio = b"".join(base64.b64decode(r["audio"]) for r in records if r["type"] == "audio")
    return response.headers.get("x-voxstack-variant"), np.frombuffer(audio, "<i2")


def test_the_plugin_addon_streams_over_http_as_in_process(served: CliService, guide: GuideRun) -> None:
    reference, _ = soundfile.read(guide.folder / "tremolo.wav", dtype="int16")
    by_variant: dict[str, np.ndarray] = {}
    for client in CLIENTS:
        variant, samples = _samples(served.url, client)
        assert variant is not None
        by_variant.setdefault(variant, samples)
    assert set(by_variant) == {"Encoders", VARIANT}, sorted(by_variant)  # 16 clients at 50/50
    assert by_variant["Encoders"].shape == reference.shape
    assert np.abs(by_variant["Encoders"].astype(np.int32) - reference).max() <= 1
    # the variant caps long phonemes: never longer than the voice's own encoders
    assert 0 < by_variant[VARIANT].shape[0] <= reference.shape[0]


def test_every_client_moves_to_the_plugin_variant_live(served: CliService, guide: GuideRun) -> None:
    replicas = served.replicas()
    done = served.command("ab", "weights", "--config", str(guide.folder / "acme.yaml"), "--address", served.address,
                          f"{VARIANT}=1.0")
    assert done.returncode == 0, done.stdout + done.stderr
    results = [ndjson_stream(served.url, client, TEXT, model=ADDON) for client in CLIENTS]
    assert all(r["status"] == 200 and r["error"] is None and r["end"] is not None for r in results), results
    assert {r["variant"] for r in results} == {VARIANT}
    assert served.replicas() == replicas  # weights move without restarting a replica
