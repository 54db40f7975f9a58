"""Offline checks of serve_configs/ and k8s/: the strict validator, and KubeRay CRD schemas."""

from __future__ import annotations

import copy
import functools
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from blocks.addon import list_addons
from blocks.errors import ConfigError
from deployments.config import load_config, validate_config
from deployments.plan import AppArgs, deployment_names, plan_app

ROOT = Path(__file__).resolve().parents[2]
CRDS = Path(os.environ.get("VOXSTACK_KUBERAY_CRDS", ROOT / "k8s" / "crds"))
CONFIGS = sorted((ROOT / "serve_configs").glob("*.yaml"))
MANIFESTS = sorted((ROOT / "k8s").glob("*.yaml"))


def _strict(schema: Any) -> Any:
    """Reject unknown fields wherever the CRD lists an object's properties (as the API server prunes them)."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@functools.cache
def _schema(kind: str) -> dict[str, Any]:
    for path in CRDS.glob("*.yaml"):
        crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        if crd["spec"]["names"]["kind"] == kind:
            version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
            return _strict(version["schema"]["openAPIV3Schema"])
    raise FileNotFoundError(f"no CRD for {kind} in {CRDS} (set VOXSTACK_KUBERAY_CRDS)")


def _check(document: dict[str, Any], kind: str) -> None:
    jsonschema.Draft7Validator(_schema(kind)).validate(document)


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def test_there_are_configs_and_manifests() -> None:
    assert {p.stem for p in CONFIGS} >= {"local", "gpu", "inferentia", "ab"}
    assert MANIFESTS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_serve_configs_are_valid(path: Path) -> None:
    _, config = load_config(path)
    for deployment in config.applications[0].deployments:
        assert deployment.autoscaling_config and deployment.max_ongoing_requests and deployment.max_queued_requests


def _set(raw: dict[str, Any], path: list[Any], value: Any) -> None:
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@pytest.mark.parametrize(("path", "value", "error"), [
    (["applications", 0, "deployments", 1, "max_ongoing_request"], 3,
     "$.applications[0].deployments[1].max_ongoing_request"),
    (["applications", 0, "deployments", 1, "autoscaling_config", "upscale_dely_s"], 1,
     "$.applications[0].deployments[1].autoscaling_config.upscale_dely_s"),
    (["applications", 0, "deployments", 2, "ray_actor_options", "num_gpu"], 1,
     "$.applications[0].deployments[2].ray_actor_options.num_gpu"),
    (["applications", 0, "deployments", 0, "user_config", "max_stream"], 1,
     "$.applications[0].deployments[0].user_config.max_stream"),
    (["applications", 0, "deployments", 0, "user_config", "weights"], {"Nope": 1.0},
     "$.applications[0].deployments[0].user_config.weights"),
    (["applications", 0, "deployments", 0, "user_config", "openai", "models"], {"tts-1": "nope"},
     "$.applications[0].deployments[0].user_config.openai.models"),
    (["applications", 0, "deployments", 0, "user_config", "openai", "voice"], {},
     "$.applications[0].deployments[0].user_config.openai.voice"),
    (["applications", 0, "deployments", 1, "name"], "Vocodr", "$.applications[0].deployments[1].name"),
    (["applications", 0, "args", "adon"], "piper-joe", "$.applications[0].args.adon"),
    (["applications", 0, "import_path"], "elsewhere:build", "$.applications[0].import_path"),
    (["http_options", "prot"], 80, "$.http_options.prot"),
    (["applications", 0, "args", "addon"], "piper-joe", "$.applications[0].args"),
    (["applications", 0, "args", "addons", 1, "name"], "piper-joe", "$.applications[0].args"),
    (["applications", 0, "args", "addons", 1, "name"], "nope", "$.applications[0].args"),
    (["applications", 0, "args", "addons", 1, "varients"], {}, "$.applications[0].args.addons[1].varients"),
    (["applications", 0, "deployments", 1, "name"], "Encoders", "$.applications[0].deployments[1].name"),
    (["applications", 0, "deployments", 1, "user_config"], {"fail_seed": 1},  # piper-joe.Encoders
     "$.applications[0].deployments[1].user_config: encoder deployments take no user_config"),
    (["applications", 0, "deployments", 0, "user_config", "weights"], {"hibari.Encoders": 0.0},
     "$.applications[0].deployments[0].user_config.weights"),
    (["applications", 0, "deployments", 2, "autoscaling_config", "policy", "policy_kwargs"], {"target_load": 0},
     "$.applications[0].deployments[2].autoscaling_config.policy"),
    (["applications", 0, "deployments", 2, "autoscaling_config", "policy", "policy_function"],
     "deployments.autoscaling:Nope", "$.applications[0].deployments[2].autoscaling_config.policy"),
    (["applications", 0, "deployments", 2, "max_ongoing_requests"], 8,  # below the ingress's max_streams (16)
     "$.applications[0].deployments[2].max_ongoing_requests: 'piper-joe.Upsampler-Decoder-Vocoder-Fade-ChunkStats' "
     "holds 8 calls per replica, but the ingress admits up to max_streams (16)"),
])
def test_validator_names_the_bad_key(path: list[Any], value: Any, error: str) -> None:
    raw = _load(ROOT / "serve_configs" / "local.yaml")
    _set(raw, path, value)
    with pytest.raises(ConfigError) as caught:
        validate_config(raw)
    assert str(caught.value).startswith(error), caught.value


def test_local_config_serves_every_addon_with_its_own_stages() -> None:
    _, config = load_config(ROOT / "serve_configs" / "local.yaml")
    args = config.applications[0].args
    assert sorted(a.name for a in args.addons) == list_addons()
    assert {d.name for d in config.applications[0].deployments} == set(deployment_names(args))


def test_stage_names_are_prefixed_per_addon_and_bare_for_one() -> None:
    multi = AppArgs.model_validate({"addons": [
        {"name": "piper-joe", "variants": {"Tuned": "CustomizedEncoders"}},
        {"name": "hibari", "groups": [[0], [1, 2, 3]]}]})
    assert deployment_names(multi) == [
        "Ingress", "piper-joe.Encoders", "piper-joe.Tuned", "piper-joe.Upsampler-Decoder", "piper-joe.Vocoder",
        "piper-joe.Fade", "piper-joe.ChunkStats",
        "hibari.Encoders", "hibari.Upsampler-Decoder", "hibari.HarmonicVocoder-Fade-ChunkStats"]
    assert deployment_names(AppArgs()) == deployment_names(AppArgs(addon="piper-joe")) == [
        "Ingress", "Encoders", "Upsampler-Decoder", "Vocoder", "Fade", "ChunkStats"]


def test_a_colocated_encoder_runs_in_the_first_stream_stage_and_variants_keep_their_own() -> None:
    args = AppArgs.model_validate({"addons": [
        {"name": "piper-joe", "groups": [[0, 1], [2, 3]], "colocate_encoder": True,
         "variants": {"Tuned": "CustomizedEncoders"}}]})
    assert deployment_names(args) == [
        "Ingress", "piper-joe.Tuned", "piper-joe.Encoders-Upsampler-Decoder-Vocoder", "piper-joe.Fade-ChunkStats"]
    (plan,) = plan_app(args)
    assert plan.encoder == "piper-joe.Encoders-Upsampler-Decoder-Vocoder"
    assert plan.encoders == ["piper-joe.Encoders-Upsampler-Decoder-Vocoder", "piper-joe.Tuned"]
    assert plan.encoder_stages == ["piper-joe.Tuned"]


def test_a_colocated_stage_needs_room_for_each_stream_and_its_next_encoding() -> None:
    raw = _load(ROOT / "serve_configs" / "local.yaml")
    app = raw["applications"][0]
    app["args"]["addons"][0]["colocate_encoder"] = True  # piper-joe, its whole stream part in one stage
    joined = "piper-joe.Encoders-Upsampler-Decoder-Vocoder-Fade-ChunkStats"
    app["deployments"] = [d for d in app["deployments"] if d["name"] != "piper-joe.Encoders"]
    stage = next(d for d in app["deployments"] if d["name"] == "piper-joe.Upsampler-Decoder-Vocoder-Fade-ChunkStats")
    stage["name"], stage["max_ongoing_requests"] = joined, 16  # the ingress admits 16: each holds two calls here
    with pytest.raises(ConfigError, match=r"each with 2 call\(s\) here.*give it at least 32"):
        validate_config(raw)
    stage["max_ongoing_requests"] = 32
    validate_config(raw)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.stem)
def test_manifests_match_the_kuberay_crds(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        _check(document, document["kind"])
        if document["kind"] != "RayService":
            continue
        cluster = document["spec"]["rayClusterConfig"]
        assert cluster["enableInTreeAutoscaling"] is True
        containers = [c for g in cluster["workerGroupSpecs"] for c in g["template"]["spec"]["containers"]]
        limits = [c["resources"]["limits"] for c in containers]
        assert any("nvidia.com/gpu" in limit for limit in limits)
        assert any("aws.amazon.com/neuroncore" in limit for limit in limits)
        embedded = validate_config(yaml.safe_load(document["spec"]["serveConfigV2"]))
        local = validate_config(_load(ROOT / "serve_configs" / "local.yaml"))
        assert embedded.applications == local.applications


def test_a_typo_in_a_manifest_is_caught() -> None:
    document = next(yaml.safe_load_all(MANIFESTS[0].read_text()))
    broken = copy.deepcopy(document)
    broken["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["minReplica"] = 1
    with pytest.raises(jsonschema.ValidationError):
        _check(broken, "RayService")
    broken = copy.deepcopy(document)
    broken["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplicas"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        _check(broken, "RayService")


def _image_make_builds(variant: str) -> str:
    """The name ``make image IMAGE_VARIANT=variant`` gives its image (read from make's dry run)."""
    dry = subprocess.run(["make", "--no-print-directory", "-n", "image", f"IMAGE_VARIANT={variant}"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    tag = re.search(r"--tag (\S+)", dry)
    assert tag, dry
    return tag[1]


def test_manifests_run_the_images_make_image_builds() -> None:
    built = {variant: _image_make_builds(variant) for variant in ("cpu", "gpu", "neuron")}
    assert built["cpu"] == "voxstack:" + re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(),
                                                   re.MULTILINE)[1]
    seen = set()
    for path in MANIFESTS:
        for document in yaml.safe_load_all(path.read_text()):
            if document["kind"] != "RayService":
                continue
            cluster = document["spec"]["rayClusterConfig"]
            groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
            for container in (c for g in groups for c in g["template"]["spec"]["containers"]):
                limits = container.get("resources", {}).get("limits", {})
                variant = ("gpu" if "nvidia.com/gpu" in limits else
                           "neuron" if "aws.amazon.com/neuroncore" in limits else "cpu")
                assert container["image"] == built[variant], (path.name, container["name"], variant)
                seen.add(variant)
    assert seen == set(built)


def test_the_image_pins_torch_as_the_makefile_does() -> None:
    makefile = set(re.findall(r"pip install -q (torch==\S+)", (ROOT / "Makefile").read_text()))
    containerfile = re.search(r"^ARG TORCH=(\S+)$", (ROOT / "Containerfile").read_text(), re.MULTILINE)
    assert containerfile and makefile == {containerfile[1]}, (makefile, containerfile)


def test_the_image_installs_every_distribution_the_makefile_does() -> None:
    """The image builds the addons as ``make addons`` does, so it installs what the set-up installs first."""
    makefile = {re.sub(r"\[\w+\]", "", w).strip('"') for w in
                re.findall(r"pip install -q -e (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)}
    containerfile = set(re.findall(r"pip install -q -e (\S+?);", (ROOT / "Containerfile").read_text()))
    assert makefile == containerfile == {".", "addons/kokoro-ja"}, (makefile, containerfile)
