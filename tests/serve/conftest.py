"""One Ray cluster for the whole serve test session: a CPU head plus fake Inferentia and GPU nodes.

Three applications run on it from one serve config (deployed through the strict validator):
``voxstack`` (piper-joe alone: every stage, both encoder variants, small limits and short autoscaling
delays), ``placed`` (every addon behind one ingress, stages named ``<addon>.<stage>`` and grouped,
piper-joe's pinned to the fake accelerators, hibari with its own encoder variant, and a multi-speaker
German piper voice made and imported at the session's start, found through ``$VOXSTACK_ADDONS`` in the
application's ``runtime_env``, as a cluster is told where imported addons live) and
``fixed`` (piper-joe on its fixed-shape profile, its encoder part and whole stream part in one stage).
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from blocks.addon import list_addons
from deployments.run import free_port

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

EXTRA_ADDONS = [name for name in list_addons() if name not in ("piper-joe", "hibari")]
"""Addons beyond the two the tests know, served too in ``placed`` (every addon of the tree)."""
FIXED_PROFILE = {"backend": {"profile": "fixed"}}
"""piper-joe's fixed-shape profile (the ``fixed`` application)."""
MULTI_SPEAKER = "test-speakers"
FIXED_STAGE = "Encoders-Upsampler-Decoder-Vocoder-Fade-ChunkStats"
"""The ``fixed`` app's one stage: piper-joe's encoder part and its whole stream part (``colocate_encoder``)."""
"""The imported multi-speaker voice (x_low, German, random weights) served in ``placed``."""
SPEAKERS = ("ana", "ben", "chloe")
LONG_TEXT = " ".join(f"This is sentence number {i} of a longer text, spoken one utterance at a time." for i in range(8))


COUNTERS = ("streams", "completed", "cancelled", "failed", "active", "encoded")
"""A stage's counters (``StageBase.stats``): its streams, and the encodings it completed."""


def admitted(send: Callable[[], httpx.Response], timeout_s: float = 180) -> httpx.Response:
    """``send()``'s response, sent again after each 429's Retry-After as a client should (a busy service
    refuses streams its measured capacity cannot hold), until admitted or ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while (response := send()).status_code == 429 and time.monotonic() < deadline:
        time.sleep(float(response.headers.get("retry-after", "1")))
    return response


def _stage(name: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "ray_actor_options": {"num_cpus": 0}, "max_ongoing_requests": 16,
            "max_queued_requests": 16, **options}


def _all_blocks(addon: str, root: Path | None = None) -> list[int]:
    """One stream stage for the whole stack (the fewest replicas)."""
    from blocks.addon import Addon

    return list(range(len(Addon.open(addon, root).stack_nodes)))


def serve_config(port: int, imported: Path) -> dict[str, Any]:
    """The session's serve config; ``imported``: the folder holding the imported multi-speaker voice."""
    # The Vocoder scales by the streams it holds against its measured capacity (deployments/autoscaling.py),
    # not by ongoing requests: 100 of them per replica is a target three streams never reach.
    fast_scaling = {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 100, "upscale_delay_s": 0.5,
                    "downscale_delay_s": 2, "metrics_interval_s": 0.5, "look_back_period_s": 1,
                    "policy": {"policy_function": "deployments.autoscaling:StreamLoadPolicy",
                               "policy_kwargs": {"target_load": 0.25}}}
    return {
        "http_options": {"host": "127.0.0.1", "port": port, "request_timeout_s": 120},
        "applications": [
            {"name": "voxstack", "route_prefix": "/", "import_path": "deployments.app:build",
             "args": {"addon": "piper-joe", "variants": {"CustomizedEncoders": "CustomizedEncoders"}},
             "deployments": [
                 _stage("Ingress", max_ongoing_requests=64, max_queued_requests=64,
                        user_config={"weights": {"Encoders": 0.7, "CustomizedEncoders": 0.3}, "max_streams": 3,
                                     "measured_admission": False,
                                     "retry_after_s": 2, "deadline_s": 60, "lookahead": 2}),
                 _stage("Encoders"), _stage("CustomizedEncoders"), _stage("Upsampler-Decoder"),
                 _stage("Vocoder", autoscaling_config=fast_scaling), _stage("Fade"), _stage("ChunkStats"),
             ]},
            {"name": "placed", "route_prefix": "/placed", "import_path": "deployments.app:build",
             "runtime_env": {"env_vars": {"VOXSTACK_ADDONS": str(imported)}},
             "args": {"addons": [
                 {"name": "piper-joe", "groups": [[0], [1, 2, 3]]},
                 {"name": "hibari", "groups": [_all_blocks("hibari")],
                  "variants": {"CustomizedEncoders": "CustomizedEncoders"}},
                 *({"name": name, "groups": [_all_blocks(name)]} for name in EXTRA_ADDONS),
                 {"name": MULTI_SPEAKER, "groups": [_all_blocks(MULTI_SPEAKER, imported)]},
             ]},
             "deployments": [
                 _stage("Ingress", user_config={"weights": {"hibari.CustomizedEncoders": 1.0}}),
                 _stage("piper-joe.Encoders", ray_actor_options={"num_cpus": 0, "resources": {"neuron_cores": 1}}),
                 _stage("piper-joe.Upsampler-Decoder", ray_actor_options={"num_cpus": 0, "num_gpus": 1}),
                 _stage("piper-joe.Vocoder-Fade-ChunkStats", ray_actor_options={"num_cpus": 0.5}),
             ]},
            {"name": "fixed", "route_prefix": "/fixed", "import_path": "deployments.app:build",
             "args": {"addon": "piper-joe", "groups": [_all_blocks("piper-joe")], "colocate_encoder": True,
                      "overrides": FIXED_PROFILE},
             "deployments": [_stage("Ingress"),
                             _stage(FIXED_STAGE, max_ongoing_requests=32)]},
        ],
    }


class Service:
    """The running service: its URL, its config, and a way to redeploy a changed config."""

    def __init__(self, port: int, cluster: Any, dashboard: str, imported: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.dashboard = dashboard
        """Where configs are applied, as ``voxstack deploy --address`` applies them."""
        self.imported = imported
        """The folder of the imported multi-speaker voice (``MULTI_SPEAKER``)."""
        self.config = serve_config(port, imported)
        self.cluster = cluster
        self.http = httpx.Client(base_url=self.url, timeout=60)

    def redeploy(self, change: Callable[[dict[str, Any]], None]) -> None:
        from deployments.rollout import deploy

        config = copy.deepcopy(self.config)
        change(config)
        deploy(config, self.dashboard, progress=lambda _: None)
        self.config = config

    def deployment(self, name: str, app: str = "voxstack") -> dict[str, Any]:
        application = next(a for a in self.config["applications"] if a["name"] == app)
        for entry in application["deployments"]:
            if entry["name"] == name:
                return entry
        raise KeyError(name)

    def stats(self, name: str, app: str = "voxstack") -> dict[str, Any]:
        """A stage's stream counters summed over its running replicas (asked until each one has answered),
        ``replicas``: their ids, and ``nodes``: the nodes they run on."""
        from ray import serve

        handle = serve.get_deployment_handle(name, app_name=app)
        running = serve.status().applications[app].deployments[name].replica_states.get("RUNNING", 0)
        answers: dict[str, dict[str, Any]] = {}
        for _ in range(100):
            answer = handle.stats.remote().result(timeout_s=30)
            answers[answer["replica"]] = answer
            if len(answers) >= running:
                break
        return {**{key: sum(int(a[key]) for a in answers.values()) for key in COUNTERS}, "replicas": sorted(answers),
                "nodes": sorted({str(a["node_id"]) for a in answers.values()})}


def _healthy(service: Service, prefix: str) -> bool:
    try:
        return service.http.get(f"{prefix}/healthz").status_code == 200
    except httpx.HTTPError:  # the proxy is not listening yet
        return False


def import_multi_speaker(folder: Path) -> Path:
    """Make the multi-speaker voice and import it into ``folder/addons`` (returned), as a user would."""
    from blocks.importers.piper import import_piper
    from tests.piper_voices import make_voice

    onnx, config = make_voice(folder / "made", "x_low", "de", list(SPEAKERS), seed=3)
    import_piper(onnx, config, MULTI_SPEAKER, folder / "addons")
    return folder / "addons"


@pytest.fixture(scope="package")
def service() -> Iterator[Service]:
    """The serve tests' service, stopped after the last of them: the tests after it run on idle cores."""
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    from deployments.rollout import deploy

    started = time.perf_counter()
    temp = tempfile.mkdtemp(prefix="vxray")
    imported = import_multi_speaker(Path(temp))
    os.environ["RAY_TMPDIR"] = temp  # the cluster's address file goes here too, not in /tmp/ray
    os.makedirs(os.path.join(temp, "ray"))
    head = {"num_cpus": 2, "include_dashboard": True, "dashboard_port": free_port(),  # for ray.util.state
            "object_store_memory": 200 * 1024**2,
            "temp_dir": os.path.join(temp, "ray")}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    cluster.add_node(num_cpus=0, resources={"neuron_cores": 2}, object_store_memory=100 * 1024**2)
    cluster.add_node(num_cpus=0, num_gpus=1, object_store_memory=100 * 1024**2)
    context = ray.init(address=cluster.address, log_to_driver=False)
    port = free_port()
    svc = Service(port, cluster, context.dashboard_url, imported)
    deploy(svc.config, svc.dashboard, timeout_s=None)  # waited for below, by each route's healthz
    deadline = time.time() + 180
    while not all(_healthy(svc, prefix) for prefix in ("", "/placed", "/fixed")):
        assert time.time() < deadline, "service never became healthy"
        time.sleep(0.5)
    print(f"\nserve session ready in {time.perf_counter() - started:.1f} s")
    try:
        yield svc
    finally:
        svc.http.close()
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()

