"""Access control on the live service: API key from a file, 413 past the body limit, CORS opt-in."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deployments.security import load_api_key
from tests.serve.conftest import Service

KEY = "k3y-for-tests-0123456789"
ORIGIN = "https://voice.example"
GOOD = {"model": "piper-joe", "input": "Access granted."}


def _ingress(config: dict[str, Any]) -> dict[str, Any]:
    return next(d for d in config["applications"][0]["deployments"] if d["name"] == "Ingress")


@pytest.fixture(scope="module")
def locked(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The service with a key (read by the ingress from ``$VOXSTACK_API_KEY_FILE``), a small body limit, CORS."""
    key_file = tmp_path_factory.mktemp("secret") / "api-key"
    key_file.write_text(KEY + "\n")
    original = copy.deepcopy(_ingress(service.config))

    def lock(config: dict[str, Any]) -> None:
        entry = _ingress(config)
        entry["ray_actor_options"] = {"num_cpus": 0, "runtime_env": {"env_vars": {
            "VOXSTACK_API_KEY_FILE": str(key_file)}}}
        entry["user_config"] = {**entry["user_config"], "max_body_bytes": 4096, "cors_origins": [ORIGIN]}

    service.redeploy(lock)
    try:
        yield service
    finally:
        service.redeploy(lambda config: _ingress(config).update(copy.deepcopy(original)))
        assert service.http.post("/v1/stream", json=GOOD).status_code == 200


def _auth(key: str = KEY) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_defaults_are_open_without_cors(service: Service) -> None:
    """Before the module locks the service: no key, no CORS headers, the default body limit."""
    r = service.http.get("/v1/models", headers={"origin": ORIGIN})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    r = service.http.options("/v1/stream", headers={"origin": ORIGIN, "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in r.headers
    big = json.dumps({**GOOD, "input": "\u0001" * 20000})  # 120 kB escaped, under the default 256 KiB
    r = service.http.post("/v1/stream", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/stream"), ("POST", "/v1/audio/speech"), ("GET", "/v1/models"), ("GET", "/v1/route"),
    ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/no/such/path"),
])
@pytest.mark.parametrize("headers", [{}, _auth("wrong"), {"authorization": KEY}, {"authorization": f"Basic {KEY}"}])
def test_every_endpoint_needs_the_key(locked: Service, method: str, path: str, headers: dict[str, str]) -> None:
    r = locked.http.request(method, path, json=GOOD if method == "POST" else None, headers=headers)
    assert r.status_code == 401, (path, r.status_code)
    assert r.headers["www-authenticate"] == "Bearer" and r.json()["error"]["type"] == "authentication_error"


def test_the_key_opens_every_endpoint(locked: Service) -> None:
    assert locked.http.get("/v1/models", headers=_auth()).json()["data"][0]["id"] == "piper-joe"
    assert "/v1/stream" in locked.http.get("/openapi.json", headers=_auth()).json()["paths"]
    lines = locked.http.post("/v1/stream", json=GOOD, headers=_auth()).text.splitlines()
    records = [json.loads(line) for line in lines]
    assert records[0]["type"] == "start" and records[-1]["type"] == "end"
    r = locked.http.post("/v1/audio/speech", json={**GOOD, "response_format": "pcm"}, headers=_auth())
    assert r.status_code == 200 and len(r.content) > 22050


def test_health_and_demo_page_stay_public(locked: Service) -> None:
    assert locked.http.get("/healthz").json()["status"] == "ready"
    assert locked.http.get("/").status_code == 200
    static = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "deployments" / "static").iterdir())
    assert static and locked.http.get(f"/static/{static[0]}").status_code == 200


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_limit_is_413_json(locked: Service, chunked: bool) -> None:
    body = json.dumps({**GOOD, "input": "x" * 5000}).encode()
    content: Any = iter([body[:2000], body[2000:]]) if chunked else body
    r = locked.http.post("/v1/stream", content=content, headers={**_auth(), "content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["error"]["param"] == "body" and "4096" in r.json()["error"]["message"]
    assert locked.http.post("/v1/stream", json={**GOOD, "input": "y" * 3000}, headers=_auth()).status_code == 200


def test_cors_only_for_the_configured_origin(locked: Service) -> None:
    preflight = {"origin": ORIGIN, "access-control-request-method": "POST",
                 "access-control-request-headers": "authorization, content-type"}
    r = locked.http.options("/v1/stream", headers=preflight)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    r = locked.http.options("/v1/stream", headers={**preflight, "origin": "https://evil.example"})
    assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
    r = locked.http.get("/v1/models", headers={**_auth(), "origin": ORIGIN})
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-origin" not in locked.http.get("/v1/models", headers={
        **_auth(), "origin": "https://evil.example"}).headers


def test_key_from_env_or_file_never_empty(tmp_path: Path) -> None:
    assert load_api_key({}) is None
    assert load_api_key({"VOXSTACK_API_KEY": " abc \n"}) == "abc"
    (tmp_path / "k").write_text("from-file\n")
    assert load_api_key({"VOXSTACK_API_KEY_FILE": str(tmp_path / "k")}) == "from-file"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        load_api_key({"VOXSTACK_API_KEY_FILE": str(tmp_path / "empty")})
    with pytest.raises(ValueError, match="cannot read"):
        load_api_key({"VOXSTACK_API_KEY_FILE": str(tmp_path / "missing")})
