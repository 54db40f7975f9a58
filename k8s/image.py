"""Build the voxstack image from the Containerfile (``make image``); build and test it end to end (``make image-test``).

pip's index settings (``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``, ``PIP_FIND_LINKS``, ``PIP_TRUSTED_HOST``, or
the same keys in pip's config files) go to the build as build arguments, and pip's CA bundle (``PIP_CERT``,
for a TLS-inspecting proxy) as ``PIP_CERT_URL``. A setting that names a local file or folder (a path or a
``file:`` URL) cannot be seen from inside the build, so it is served read-only on the loopback interface for
the length of the build, which then runs with host networking.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parents[1]
CONTAINERFILE = ROOT / "Containerfile"
PIP_KEYS = {"index-url": "PIP_INDEX_URL", "extra-index-url": "PIP_EXTRA_INDEX_URL",
            "find-links": "PIP_FIND_LINKS", "trusted-host": "PIP_TRUSTED_HOST", "cert": "PIP_CERT"}
# the build argument each setting travels as (the CA bundle as a URL the build fetches it from)
BUILD_ARGS = {**PIP_KEYS, "cert": "PIP_CERT_URL"}
INDEX_KEYS = {"index-url", "extra-index-url"}
# the base of a variant whose base is not the Containerfile's default (CUDA 12 and cuDNN 9 for onnxruntime-gpu)
VARIANT_BASES = {"gpu": "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04"}


class ImageError(RuntimeError):
    """A step of the image build or test failed; the message says which and why."""


def docker(*args: str, check: bool = True, capture: bool = True, timeout: float | None = None) -> str:
    """Run ``docker ARGS``; its stdout, or an ImageError carrying its stderr."""
    command = [os.environ.get("DOCKER", "docker"), *args]
    try:
        done = subprocess.run(command, capture_output=capture, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise ImageError(f"{' '.join(command[:3])} ... did not finish within {timeout} s") from error
    if check and done.returncode != 0:
        raise ImageError(f"{' '.join(command)} failed ({done.returncode}): {(done.stderr or '').strip()[-2000:]}")
    return (done.stdout or "").strip()


def pip_settings() -> dict[str, str]:
    """pip's index settings as the host's pip sees them: the environment first, then pip's config files."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    settings: dict[str, str] = {}
    for line in listed.splitlines():
        match = re.match(r"^(?P<scope>[^.]*)\.(?P<key>[a-z-]+)='(?P<value>.*)'$", line)
        if match and match["key"] in PIP_KEYS and match["scope"] != ":env:":
            settings[match["key"]] = match["value"].replace("\n", " ")
    for key, variable in PIP_KEYS.items():
        if os.environ.get(variable):
            settings[key] = os.environ[variable]
    return settings


def _local_folder(value: str) -> Path | None:
    """The local path a pip setting names (a path or a ``file:`` URL), or None for a remote URL."""
    parsed = urlparse(value)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme or not value.startswith(("/", ".")):
        return None
    return Path(value).resolve()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def reachable_from_build(settings: dict[str, str]) -> Iterator[tuple[dict[str, str], bool]]:
    """The settings with every local folder served on 127.0.0.1 while the block runs; True if any is."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def serve(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    translated: dict[str, str] = {}
    try:
        for key, value in settings.items():
            parts = []
            for item in value.split():
                folder = Path(unquote(urlparse(item).path)).resolve() if key == "cert" else _local_folder(item)
                if folder is None:
                    parts.append(item)
                elif not folder.exists():
                    raise ImageError(f"pip setting {key} names {item}, which does not exist")
                elif key == "cert" and not folder.is_file():
                    raise ImageError(f"pip setting cert names {item}, which is not a file")
                elif key in INDEX_KEYS or folder.is_file():
                    # an index's pages link to files beside it (../../files/...): serve its parent
                    parts.append(f"{serve(folder.parent)}/{folder.name}/" if folder.is_dir()
                                 else f"{serve(folder.parent)}/{folder.name}")
                else:
                    parts.append(serve(folder) + "/")
            translated[key] = " ".join(parts)
        yield translated, bool(servers)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def containerfile_default_base() -> str:
    match = re.search(r"^ARG BASE=(\S+)", CONTAINERFILE.read_text(), re.MULTILINE)
    if not match:
        raise ImageError(f"{CONTAINERFILE} has no 'ARG BASE=<image>' line")
    return match[1]


def build_arguments(variant: str, base: str | None, plugins: str | None = None) -> list[str]:
    """``docker build``'s arguments for ``variant`` on ``base`` with the plugin distributions ``plugins``
    (pip requirements, space-separated) installed beside the project."""
    arguments = ["--build-arg", f"VARIANT={variant}"]
    if base:
        arguments += ["--build-arg", f"BASE={base}"]
    if plugins:
        arguments += ["--build-arg", f"PLUGINS={plugins}"]
    if os.environ.get("NEURON_INDEX_URL"):
        arguments += ["--build-arg", f"NEURON_INDEX_URL={os.environ['NEURON_INDEX_URL']}"]
    return arguments


def build(tag: str, variant: str = "cpu", base: str | None = None, network: str | None = None,
          plugins: str | None = None) -> float:
    """Build ``tag`` from the Containerfile; the seconds it took."""
    base = base or VARIANT_BASES.get(variant)
    arguments = build_arguments(variant, base, plugins)
    with reachable_from_build(pip_settings()) as (settings, served):
        for key, value in settings.items():
            arguments += ["--build-arg", f"{BUILD_ARGS[key]}={value}"]
        if network or served:
            arguments += ["--network", network or "host"]
        print(f"building {tag} ({variant}, base {base or containerfile_default_base()})", flush=True)
        start = time.monotonic()
        docker("build", "-f", str(CONTAINERFILE), "-t", tag, *arguments, str(ROOT), capture=False)
        took = time.monotonic() - start
    dangling = docker("images", "--filter", "dangling=true", "--quiet").split()
    if dangling:
        docker("rmi", *dangling, check=False)
    print(f"built {tag} in {took:.0f} s, {image_size(tag) / 1e9:.2f} GB", flush=True)
    return took


def image_size(tag: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("build")
    command.add_argument("--tag", required=True, help="image name, e.g. voxstack:0.1.0")
    command.add_argument("--base", default=os.environ.get("IMAGE_BASE") or None,
                         help="base image (default: the Containerfile's)")
    command.add_argument("--variant", default="cpu", choices=["cpu", "gpu", "neuron"])
    command.add_argument("--network", default=None, help="docker build --network")
    command.add_argument("--plugins", default=os.environ.get("IMAGE_PLUGINS") or None,
                         help="plugin distributions a serve config names, as pip requirements (space-separated)")
    args = parser.parse_args(argv)
    try:
        if shutil.which(os.environ.get("DOCKER", "docker")) is None:
            raise ImageError("docker is not installed (Debian: apt-get install docker.io)")
        build(args.tag, args.variant, args.base, args.network, args.plugins)
    except ImageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
