"""A/B routing between Encoders and CustomizedEncoders: split, stickiness, live weight change."""

from __future__ import annotations

import time
from typing import Any

from tests.serve.conftest import Service


def _variants(service: Service, clients: list[str]) -> list[str]:
    return [service.http.get("/v1/route", headers={"x-voxstack-client": c}).json()["variant"] for c in clients]


def test_weighted_split_within_tolerance(service: Service) -> None:
    clients = [f"client-{i}" for i in range(400)]
    share = _variants(service, clients).count("CustomizedEncoders") / len(clients)
    assert abs(share - 0.3) < 0.07, share


def test_sticky_per_client_and_the_variant_serves_the_audio(service: Service) -> None:
    for client in ("alice", "bob", "carol"):
        assert len(set(_variants(service, [client] * 15))) == 1
    before = service.stats("CustomizedEncoders")["completed"]
    client = next(c for c in (f"probe-{i}" for i in range(200)) if _variants(service, [c]) == ["CustomizedEncoders"])
    r = service.http.post("/v1/audio/speech", headers={"x-voxstack-client": client},
                          json={"model": "piper-joe", "input": "Which encoder spoke?", "response_format": "pcm"})
    assert r.status_code == 200 and r.headers["x-voxstack-variant"] == "CustomizedEncoders"
    assert service.stats("CustomizedEncoders")["completed"] > before


def test_live_weight_change(service: Service) -> None:
    clients = [f"live-{i}" for i in range(60)]
    assert set(_variants(service, clients)) == {"Encoders", "CustomizedEncoders"}
    encoders_before = service.stats("Encoders")["replicas"]

    def move(weights: dict[str, float]) -> Any:
        def change(config: dict[str, Any]) -> None:
            config["applications"][0]["deployments"][0]["user_config"]["weights"] = weights
        return change

    service.redeploy(move({"Encoders": 0.0, "CustomizedEncoders": 1.0}))
    deadline = time.time() + 20
    while set(_variants(service, clients)) != {"CustomizedEncoders"}:
        assert time.time() < deadline, "weights never moved"
        time.sleep(0.2)
    assert service.stats("Encoders")["replicas"] == encoders_before  # reconfigured, not restarted
    service.redeploy(move({"Encoders": 0.7, "CustomizedEncoders": 0.3}))
    deadline = time.time() + 20
    while len(set(_variants(service, clients))) != 2:
        assert time.time() < deadline, "weights never moved back"
        time.sleep(0.2)
