"""Shipped serve configs through ``voxstack serve``: the two-application config serves both applications;
a config asking for hardware no node has fails in time, naming the stages and the missing resource.

Each runs as a subprocess with its own Ray (never the suite's shared cluster), on free ports.
"""

from __future__ import annotations

import subprocess

from tests.own_ray.cli_service import CliService, ndjson_stream


def test_two_application_config_serves_both() -> None:
    with CliService("serve_configs/two_apps.yaml") as service:
        service.start()
        print(f"\ntwo_apps.yaml served in {service.ready_s:.1f} s (Ray start included)")
        output = service.output()
        assert "11 of 11 replicas ready, 11 of 11 stages ready" in output, output
        for prefix, model in (("", "hibari"), ("", "piper-joe"), ("/fixed", "piper-joe")):
            result = ndjson_stream(service.url + prefix, "two-apps", "Two applications, one Ray.", model=model)
            assert result["status"] == 200 and result["error"] is None, result
            assert result["end"] is not None and result["end"]["samples"] == result["samples"] > 0, result


def test_config_for_missing_hardware_fails_naming_stage_and_resource() -> None:
    with CliService("serve_configs/inferentia.yaml", "--timeout", "15") as service:
        process = service.launch()
        try:
            process.wait(timeout=180)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"voxstack serve did not give up:\n{service.output()}") from None
    output = service.output()
    assert process.returncode == 1, output
    assert "error: not ready after 15 s" in output, output
    for stage in ("Encoders", "Upsampler-Decoder", "Vocoder"):
        assert f"voxstack/{stage}: 0 of 1 replicas running" in output, output
    assert "waiting for resource neuron_cores that no node has" in output, output


def test_kuberay_pods_export_metrics_at_the_serve_port() -> None:
    import yaml

    from deployments.run import DEFAULT_METRICS_PORT
    from tests.own_ray.cli_service import ROOT

    manifest = yaml.safe_load((ROOT / "k8s" / "rayservice.yaml").read_text())
    cluster = manifest["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for group in groups:
        assert group["rayStartParams"]["metrics-export-port"] == str(DEFAULT_METRICS_PORT)
        ports = group["template"]["spec"]["containers"][0]["ports"]
        assert {"containerPort": DEFAULT_METRICS_PORT, "name": "metrics"} in ports


def test_kuberay_rollout_drains_as_voxstack_deploy_does() -> None:
    import yaml

    from deployments.config import validate_config
    from deployments.rollout import drain_timeout_s
    from tests.own_ray.cli_service import ROOT

    manifest = yaml.safe_load((ROOT / "k8s" / "rayservice.yaml").read_text())
    spec = manifest["spec"]
    embedded = validate_config(yaml.safe_load(spec["serveConfigV2"]))
    for application in embedded.applications:
        drain = drain_timeout_s(application)
        assert all(d.graceful_shutdown_timeout_s == drain for d in application.deployments)
        assert spec["rayClusterDeletionDelaySeconds"] >= drain  # the old cluster outlives its streams
    assert spec["upgradeStrategy"]["type"] == "NewCluster"
    groups = {g["groupName"]: g for g in spec["rayClusterConfig"]["workerGroupSpecs"]}
    assert groups["gpu"]["minReplicas"] == groups["inferentia"]["minReplicas"] == 0
    assert all(0 <= g["minReplicas"] <= g["maxReplicas"] for g in groups.values())
