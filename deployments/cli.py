"""The service's commands of ``voxstack``: ``serve``, ``deploy``, ``ab``, ``backends`` and ``wyoming``, added
to the in-process commands of ``blocks.cli`` (one command line; this module is its entry point). Each command
imports Ray and the service only when it runs, so ``voxstack synthesize`` starts fast."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from blocks.cli import app, fail
from blocks.errors import ConfigError

READY_HELP = "Seconds to wait for every stage to be ready (default 600)."
METRICS_HELP = "Port of Ray's Prometheus metrics, /metrics (default 8080)."
DASHBOARD_HELP = "Port of Ray's dashboard on 127.0.0.1, where voxstack deploy applies configs (default 8265)."
ADDRESS_HELP = "Ray dashboard (default: $RAY_DASHBOARD_ADDRESS, else http://127.0.0.1:8265)."


@app.command()
def serve(
    config: Annotated[Path, typer.Option(help="Serve config file.")] = Path("serve_configs/local.yaml"),
    timeout: Annotated[float | None, typer.Option(help=READY_HELP)] = None,
    metrics_port: Annotated[int | None, typer.Option(help=METRICS_HELP)] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port instead of the config's http_options.port.")] = None,
    dashboard_port: Annotated[int | None, typer.Option(help=DASHBOARD_HELP)] = None,
) -> None:
    """Run the voice service on a local Ray (http://127.0.0.1:8000) until Ctrl-C."""
    from deployments.dashboard import DEFAULT_DASHBOARD_PORT
    from deployments.rollout import DEFAULT_READY_TIMEOUT_S, NotReady
    from deployments.run import DEFAULT_METRICS_PORT, run_local

    try:
        run_local(config, DEFAULT_READY_TIMEOUT_S if timeout is None else timeout,
                  DEFAULT_METRICS_PORT if metrics_port is None else metrics_port, port,
                  DEFAULT_DASHBOARD_PORT if dashboard_port is None else dashboard_port)
    except (ConfigError, NotReady) as error:
        fail(str(error), 1)


def _dashboard(address: str | None) -> str:
    """The dashboard to deploy through: ``--address``, else $RAY_DASHBOARD_ADDRESS, else the local one."""
    import os

    from deployments.dashboard import DEFAULT_DASHBOARD

    return address or os.environ.get("RAY_DASHBOARD_ADDRESS") or DEFAULT_DASHBOARD


def _apply(raw: dict, address: str | None, timeout: float | None) -> None:
    from deployments.dashboard import DashboardError
    from deployments.rollout import DEFAULT_READY_TIMEOUT_S, NotReady, deploy

    try:
        deploy(raw, _dashboard(address), DEFAULT_READY_TIMEOUT_S if timeout is None else timeout,
               progress=lambda line: typer.echo(f"voxstack: {line}"))
    except (ConfigError, NotReady, DashboardError) as error:
        fail(str(error), 1)


@app.command("deploy")
def deploy_command(
    config: Annotated[Path, typer.Argument(help="Serve config file to apply.")],
    address: Annotated[str | None, typer.Option(help=ADDRESS_HELP)] = None,
    timeout: Annotated[float | None, typer.Option(help=READY_HELP)] = None,
) -> None:
    """Apply a serve config to a running service, as `serve deploy` does, and wait until it serves.

    Weights, limits and autoscaling change in place; a changed stage starts new replicas and the old
    ones finish their streams first.
    """
    from deployments.config import load_config

    try:
        raw, _ = load_config(config)
    except ConfigError as error:
        fail(str(error))
    _apply(raw, address, timeout)
    typer.echo(f"voxstack: {config} applied")


ab_app = typer.Typer(no_args_is_help=True, help="A/B tests: move weights live, compare variants.")
app.add_typer(ab_app, name="ab")


@ab_app.command("weights")
def ab_weights(
    shares: Annotated[list[str], typer.Argument(help="ENCODER=SHARE, e.g. piper-joe.CustomizedEncoders=0.5.")],
    config: Annotated[Path, typer.Option(help="The serve config the service runs.")] = Path("serve_configs/ab.yaml"),
    app_name: Annotated[str | None, typer.Option("--app", help="Application (when several have the encoder).")] = None,
    address: Annotated[str | None, typer.Option(help=ADDRESS_HELP)] = None,
    timeout: Annotated[float | None, typer.Option(help=READY_HELP)] = None,
    save: Annotated[bool, typer.Option(help="Also write the new weights into the config file.")] = False,
) -> None:
    """Give encoder variants their share of their addon's clients, live (no replica restarts).

    The addon's other variants split the rest in their old proportions; clients whose bucket does
    not move keep their variant.
    """
    import yaml

    from deployments.ab import parse_shares, weights_of, with_shares
    from deployments.config import load_config

    try:
        raw, _ = load_config(config)
        changed = with_shares(raw, parse_shares(shares), app_name)
    except ConfigError as error:
        fail(str(error))
    _apply(changed, address, timeout)
    for name, weights in weights_of(changed).items():
        typer.echo(f"voxstack: {name} weights now {weights}")
    if save:
        config.write_text(yaml.safe_dump(changed, sort_keys=False), encoding="utf-8")


@ab_app.command("report")
def ab_report(
    metrics: Annotated[list[str] | None, typer.Option(
        help="Prometheus endpoint of each node (repeat for several).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Per addon and variant: requests, errors, first audio p50/p99, real-time factor, and a significance test."""
    from deployments.ab_report import fetch, parse, report, table
    from deployments.run import DEFAULT_METRICS_PORT

    urls = metrics or [f"http://127.0.0.1:{DEFAULT_METRICS_PORT}/metrics"]
    try:
        result = report(parse(fetch(urls)))
    except OSError as error:
        fail(f"cannot read metrics from {urls}: {error}", 1)
    if not result["variants"]:
        fail(f"no voxstack requests in the metrics at {urls} yet (Ray exports them every few seconds)", 1)
    typer.echo(json.dumps(result, indent=2) if json_out else table(result))


@app.command()
def backends(
    config: Annotated[Path, typer.Argument(help="Serve config file.")] = Path("serve_configs/local.yaml"),
    check: Annotated[bool, typer.Option(help="Also check that this machine has the devices they ask for.")] = False,
) -> None:
    """Where each stage's networks run under a serve config: backend kind, device and profile, per network."""
    from deployments.config import load_config, stage_backends
    from deployments.devices import check_devices

    try:
        _, parsed = load_config(config)
        stages = stage_backends(parsed)
        if check:
            check_devices(stages)
    except ConfigError as error:
        fail(str(error), 1)
    for stage in stages:
        typer.echo(f"{stage.application}/{stage.deployment}: {stage.describe()}")
    if check:
        typer.echo("voxstack: every device asked for is here")


@app.command()
def wyoming(
    uri: Annotated[str, typer.Option(help="Where Wyoming clients connect (tcp://HOST:PORT or unix://PATH).")]
    = "tcp://127.0.0.1:10200",
    service: Annotated[str, typer.Option(help="The running voxstack service.")] = "http://127.0.0.1:8000",
) -> None:
    """Speak the Wyoming protocol (Home Assistant) for the running service: it bridges to /v1/stream/ws."""
    import asyncio
    import logging

    from deployments.wyoming_bridge import serve_wyoming

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    typer.echo(f"voxstack: Wyoming on {uri}, speaking through {service}")
    try:
        asyncio.run(serve_wyoming(uri, service))
    except KeyboardInterrupt:
        pass



if __name__ == "__main__":
    app()
