"""The reference docs against the code: HTTP examples use real request fields and every request field is
documented; every ``user_config`` key shown exists and every one is documented; every environment variable
the code reads is documented; the request models' field docstrings reach the OpenAPI schema; shell blocks
marked runnable run."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployments.api import SpeechRequest, StreamRequest
from deployments.settings import IngressConfig, StageConfig

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", ROOT / "deployments" / "README.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
RUNNABLE = re.compile(r"<!-- runnable -->\s*\n```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
BODIES = {"/v1/audio/speech": SpeechRequest, "/v1/stream": StreamRequest}
ENV_NAME = re.compile(r"\b(VOXSTACK_[A-Z0-9_]+|CHROMIUM)\b")
RAY_ENV = re.compile(r"[\"'](RAY_[A-Z0-9_]+)[\"']")


def blocks(kind: str) -> list[tuple[str, str]]:
    """(doc, text) of every fenced block of ``kind`` (``sh``, ``yaml``, ...) in the docs."""
    return [(path.relative_to(ROOT).as_posix(), body) for path in DOCS
            for lang, body in FENCE.findall(path.read_text()) if lang == kind]


def curl_bodies() -> list[tuple[str, str, dict[str, Any]]]:
    """(doc, path, JSON body) of every ``curl ... -d '{...}'`` shown against a request model's endpoint."""
    found = []
    for doc, body in blocks("sh"):
        for command in body.replace("\\\n", " ").splitlines():
            if "curl " not in command or " -d " not in command:
                continue
            words = shlex.split(command.split(" #", 1)[0])
            data = words[words.index("-d") + 1]
            url = next((w for w in words if "://" in w), "")
            path = "/" + url.split("://", 1)[1].split("/", 1)[1].split("?")[0] if url.count("/") >= 3 else ""
            endpoint = next((e for e in BODIES if path.endswith(e)), None)
            if endpoint is not None:
                found.append((doc, endpoint, json.loads(data)))
    return found


CURLS = curl_bodies()


def test_the_docs_show_http_examples_for_both_request_models() -> None:
    assert {endpoint for _, endpoint, _ in CURLS} == set(BODIES), CURLS


@pytest.mark.parametrize(("doc", "endpoint", "body"), CURLS, ids=[f"{d}:{e}" for d, e, _ in CURLS])
def test_each_http_example_uses_real_request_fields(doc: str, endpoint: str, body: dict[str, Any]) -> None:
    model = BODIES[endpoint]
    unknown = set(body) - set(model.model_fields)
    assert not unknown, f"{doc}: {endpoint} has no field {sorted(unknown)}; it has {sorted(model.model_fields)}"
    model.model_validate(body)


def test_every_request_field_is_documented() -> None:
    text = (ROOT / "docs" / "http-api.md").read_text()
    missing = [f"{model.__name__}.{name}" for model in BODIES.values() for name in model.model_fields
               if f"`{name}`" not in text]
    assert not missing, f"docs/http-api.md does not document {missing}"


def test_request_field_docstrings_reach_the_openapi_schema() -> None:
    from deployments.ingress import app

    schemas = app.openapi()["components"]["schemas"]
    bare = [f"{model.__name__}.{name}" for model in BODIES.values()
            for name, spec in schemas[model.__name__]["properties"].items() if not spec.get("description")]
    assert not bare, f"fields without a description in /openapi.json: {bare}"


def user_configs(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return [*([node["user_config"]] if isinstance(node.get("user_config"), dict) else []),
                *(c for value in node.values() for c in user_configs(value))]
    if isinstance(node, list):
        return [c for value in node for c in user_configs(value)]
    return []


def test_user_config_keys_shown_exist() -> None:
    keys = set(IngressConfig.model_fields) | set(StageConfig.model_fields)
    shown = [(doc, key) for doc, body in blocks("yaml") for document in yaml.safe_load_all(body)
             for config in user_configs(document) for key in config]
    assert shown, "no user_config shown in any yaml block"
    unknown = [(doc, key) for doc, key in shown if key not in keys]
    assert not unknown, f"user_config keys that no deployment takes: {unknown}"


def test_every_user_config_key_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [f"{model.__name__}.{name}" for model in (IngressConfig, StageConfig) for name in model.model_fields
               if f"`{name}`" not in text]
    assert not missing, f"docs/configuration.md does not document {missing}"


def read_environment_variables() -> set[str]:
    """Every VOXSTACK_* (and CHROMIUM) the repository's code and build mention, and every RAY_* variable
    the product reads or sets by name."""
    names: set[str] = set()
    sources = [ROOT / "Makefile", *(ROOT / ".ci").glob("*")]
    for folder in ("blocks", "deployments", "addons", "bench", "tests", "k8s"):
        sources += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".sh", ".yaml")]
    for source in sources:
        if not source.is_file() or source.name == Path(__file__).name:
            continue
        text = source.read_text(errors="replace")
        names |= set(ENV_NAME.findall(text))
        if source.parts[len(ROOT.parts)] in ("blocks", "deployments"):
            names |= set(RAY_ENV.findall(text))
    return names


def test_every_environment_variable_is_documented() -> None:
    names = read_environment_variables()
    assert "VOXSTACK_ADDONS" in names and "RAY_DASHBOARD_ADDRESS" in names, names
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(name for name in names if f"`{name}`" not in text)
    assert not missing, f"docs/configuration.md does not document the environment variables {missing}"


RUNS = [(path.relative_to(ROOT).as_posix(), body) for path in DOCS for body in RUNNABLE.findall(path.read_text())]


@pytest.mark.parametrize(("doc", "script"), RUNS, ids=[f"{d}:{s.splitlines()[0][:50]}" for d, s in RUNS])
def test_runnable_shell_blocks_run(doc: str, script: str, tmp_path: Path) -> None:
    """A block marked ``<!-- runnable -->`` runs as shown, in a scratch folder, with the project's ``voxstack``."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"{doc}: {script!r} failed:\n{done.stdout}\n{done.stderr}"


def test_some_blocks_are_runnable() -> None:
    assert RUNS, "no shell block is marked <!-- runnable -->"


LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a markdown file's headings: lower case, punctuation dropped, spaces to hyphens."""
    text = FENCE.sub("", path.read_text())
    return {re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            for line in text.splitlines() if line.startswith("#")}


def test_every_relative_link_and_anchor_resolves() -> None:
    broken, checked = [], 0
    for doc in DOCS:
        for target in LINK.findall(FENCE.sub("", doc.read_text())):
            if "://" in target or target.startswith("mailto:"):
                continue
            checked += 1
            file, _, anchor = target.partition("#")
            where = (doc.parent / file).resolve() if file else doc
            if not where.exists() or (anchor and where.suffix == ".md" and anchor not in anchors(where)):
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert checked > 50 and not broken, broken
