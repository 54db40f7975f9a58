"""The ``voxstack`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import soundfile
import typer
from tqdm import tqdm

from blocks.addon import addon_path, list_addons, load_addon
from blocks.errors import AddonError, InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="voxstack: streaming text to speech.")
addons_app = typer.Typer(no_args_is_help=True, help="List and inspect addons.")
app.add_typer(addons_app, name="addons")


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def read_text(text: str | None, file: Path | None) -> str:
    if text is not None and file is not None:
        fail("give TEXT or --file, not both")
    if file is not None:
        try:
            return sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            fail(f"cannot read {file}: {error}")
    if text is None or text == "-":
        if sys.stdin.isatty():
            fail("no text: give TEXT, --file PATH, or pipe text on stdin")
        return sys.stdin.read()
    return text


@app.command()
def synthesize(
    text: Annotated[str | None, typer.Argument(help="Text to speak ('-' or omitted: stdin).")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="WAV file to write.")] = Path("out.wav"),
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Read the text from a file.")] = None,
    addon: Annotated[str, typer.Option(help="Addon (voice model) to use.")] = "piper-joe",
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives identical audio.")] = 0,
    length_scale: Annotated[float | None, typer.Option(help="Speaking time multiplier (>1 slower).")] = None,
    noise_scale: Annotated[float | None, typer.Option(help="Prior noise scale.")] = None,
    noise_w: Annotated[float | None, typer.Option(help="Duration noise scale.")] = None,
    marks: Annotated[Path | None, typer.Option(help="Write speech marks (JSON lines) here.")] = None,
    ssml: Annotated[bool, typer.Option("--ssml", help="The text (or file) is SSML (<speak>...</speak>).")] = False,
) -> None:
    """Synthesize TEXT into a WAV file, streaming utterance by utterance."""
    content = read_text(text, file)
    try:
        voice = load_addon(addon)
        stream = voice.stream(content, seed=seed, length_scale=length_scale,
                              noise_scale=noise_scale, noise_w=noise_w,
                              marks=("sentence", "word", "ssml") if ssml else ("sentence", "word"),
                              text_type="ssml" if ssml else "text")
        first = next(stream)
    except (InputError, AddonError) as error:
        fail(str(error))
    output.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    mark_lines: list[str] = []
    show = first.utterances > 3 and sys.stderr.isatty()
    with soundfile.SoundFile(output, "w", samplerate=voice.sample_rate, channels=1, subtype="PCM_16") as wav, \
            tqdm(total=first.utterances, unit="utt", disable=not show) as progress:
        for chunk in _chain(first, stream):
            wav.write(np.clip(chunk.samples, -1.0, 1.0))
            written += chunk.samples.shape[0]
            mark_lines += [json.dumps(m, ensure_ascii=False) for m in chunk.marks]
            progress.n = chunk.utterance + (1 if chunk.last else 0)
            progress.refresh()
    if marks is not None:
        marks.write_text("".join(line + "\n" for line in mark_lines), encoding="utf-8")
    typer.echo(f"wrote {output} ({written / voice.sample_rate:.2f} s at {voice.sample_rate} Hz)")


def _chain(first, rest):  # type: ignore[no-untyped-def]
    yield first
    yield from rest


@addons_app.command("list")
def addons_list() -> None:
    """List the addons that can be loaded."""
    for name in list_addons():
        config = json.loads((addon_path(name) / "addon.json").read_text(encoding="utf-8"))
        typer.echo(f"{name}\t{config.get('version', '?')}\t{config.get('sample_rate', '?')} Hz\t"
                   f"{config.get('description', '')}")


@addons_app.command("inspect")
def addons_inspect(name: str) -> None:
    """Show an addon's stack tree, networks and backend."""
    try:
        voice = load_addon(name)
    except AddonError as error:
        fail(str(error))
    typer.echo(voice.describe())


@addons_app.command("compile")
def addons_compile(
    name: str,
    profile: Annotated[str, typer.Option(help="Profile to prepare (only 'fixed' needs artefacts).")] = "fixed",
) -> None:
    """Build an addon's static-shape artefacts once (fixed profile); loading never compiles."""
    from blocks.addon import Addon
    from blocks.backends.compile import compile_fixed

    if profile != "fixed":
        fail(f"unknown profile {profile!r}: only 'fixed' has artefacts to compile")
    try:
        manifest = compile_fixed(Addon(addon_path(name)))
    except (AddonError, ValueError) as error:
        fail(str(error))
    for network, files in manifest.items():
        typer.echo(f"{network}: {', '.join(f'{size} -> {path}' for size, path in files.items())}")


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
    from deployments.config import ConfigError
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
    from deployments.config import ConfigError
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
    from deployments.config import ConfigError, load_config

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
    from deployments.config import ConfigError, load_config

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
