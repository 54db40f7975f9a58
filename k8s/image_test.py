"""``make image-test``: build the image and check it end to end on this machine (root, Linux).

Starts ``dockerd`` when none answers (and stops it afterwards), makes a minimal Debian base with
``debootstrap`` when the Containerfile's base cannot be pulled, builds the image, then runs it twice:
with host networking (the OpenAI client's WAV and a ``/v1/stream`` for each addon), and with no network
at all under its own entrypoint (it must start, turn healthy and synthesize with nothing to download).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from image import ROOT, ImageError, build, containerfile_default_base, docker, image_size

sys.path.insert(0, str(ROOT))  # the project's own helpers
from deployments.run import free_ports

TEXT = "The image starts with nothing to fetch. Every voice speaks from its own networks."
STARTUP_LIMIT_S = 600.0
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_RUN = "voxstack-image-test-host"
OFFLINE_RUN = "voxstack-image-test-offline"


def _apt_install(*packages: str) -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ImageError(f"image-test needs {', '.join(packages)}: install them (Debian: apt-get install "
                         f"{' '.join(packages)}) or run as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "-q", *packages], env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", *packages], env=env, check=True)


@contextlib.contextmanager
def docker_daemon() -> Iterator[None]:
    """A running dockerd: the one that answers, or one started here (vfs storage, no bridge) and stopped after."""
    if shutil.which("docker") and _exec_ok(["info"]):
        yield
        return
    if shutil.which("dockerd") is None:
        _apt_install("docker.io")
    log = tempfile.NamedTemporaryFile(prefix="dockerd-", suffix=".log", delete=False)
    daemon = subprocess.Popen(["dockerd", "--storage-driver", "vfs", "--iptables=false", "--bridge=none"],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _exec_ok(["info"]):
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise ImageError(f"dockerd did not start; its log: {log.name}")
            time.sleep(1)
        print(f"started dockerd (pid {daemon.pid}, log {log.name})", flush=True)
        yield
    finally:
        daemon.terminate()
        try:
            daemon.wait(60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        print("stopped dockerd", flush=True)


def _apt_mirror() -> tuple[str, str]:
    """This machine's Debian mirror and release, from apt's sources."""
    release = re.search(r"^VERSION_CODENAME=(\S+)", Path("/etc/os-release").read_text(), re.MULTILINE)
    if not release:
        raise ImageError("cannot tell this machine's Debian release: set IMAGE_BASE to a Python 3.11 image")
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in (p for p in sources if p.is_file()):
        text = path.read_text()
        one_line = re.search(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{release[1]}\s", text, re.MULTILINE)
        if one_line:
            return one_line[1], release[1]
        for stanza in text.split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.MULTILINE)
            suites = re.search(r"^Suites:(.*)$", stanza, re.MULTILINE)
            if uris and suites and release[1] in suites[1].split():
                return uris[1], release[1]
    raise ImageError(f"no apt source for {release[1]} in /etc/apt: set IMAGE_BASE to a Python 3.11 image")


def debian_base() -> str:
    """A minimal Debian image with Python and venv, made by debootstrap from this machine's apt mirror."""
    mirror, release = _apt_mirror()
    tag = f"voxstack-base:{release}"
    if docker("images", "--quiet", tag):
        return tag
    if shutil.which("debootstrap") is None:
        _apt_install("debootstrap")
    print(f"making {tag} with debootstrap", flush=True)
    with tempfile.TemporaryDirectory(prefix="voxstack-base-") as folder:
        subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
                        release, folder, mirror], check=True, stdout=subprocess.DEVNULL)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in Path(folder, cache).glob("*"):
                if item.is_file():
                    item.unlink()
        os.chmod(folder, 0o755)  # the image's / (a temporary folder is private to its owner)
        tar = subprocess.Popen(["tar", "-C", folder, "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run([os.environ.get("DOCKER", "docker"), "import", "--change", f"ENV PATH={PATH}",
                                   "-", tag], stdin=tar.stdout, capture_output=True, text=True)
        tar.wait()
        if imported.returncode != 0:
            raise ImageError(f"docker import of the Debian base failed: {imported.stderr.strip()}")
    return tag


def choose_base(explicit: str | None) -> str:
    """The given base, else the Containerfile's default if present or pullable, else a local Debian one."""
    if explicit:
        return explicit
    default = containerfile_default_base()
    if docker("images", "--quiet", default) or _exec_ok(["pull", default], timeout=180):
        return default
    print(f"{default} cannot be pulled here; using a local Debian base", flush=True)
    return debian_base()


def _remove(name: str) -> None:
    docker("rm", "--force", name, check=False)


def _get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def _wait(ready: Any, name: str) -> float:
    """Seconds until ``ready()`` holds; fails with the container's log tail if it exits or takes too long."""
    start = time.monotonic()
    while not ready():
        if docker("inspect", "--format", "{{.State.Running}}", name, check=False) != "true":
            raise ImageError(f"{name} exited before /healthz answered 200:\n{docker('logs', '--tail', '40', name)}")
        if time.monotonic() - start > STARTUP_LIMIT_S:
            raise ImageError(f"{name}: /healthz not 200 after {STARTUP_LIMIT_S:.0f} s:\n"
                             f"{docker('logs', '--tail', '40', name)}")
        time.sleep(0.5)
    return time.monotonic() - start


def wav_summary(data: bytes) -> tuple[int, int, float]:
    """Sample rate, sample count and RMS of a 16-bit mono WAV (a streamed one's sizes may be 0xFFFFFFFF)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ImageError(f"not a WAV file: starts with {data[:12]!r}")
    position, rate = 12, 0
    while position + 8 <= len(data):
        kind, size = data[position:position + 4], struct.unpack("<I", data[position + 4:position + 8])[0]
        if kind == b"fmt ":
            channels, rate, bits = (struct.unpack("<H", data[position + 10:position + 12])[0],
                                    struct.unpack("<I", data[position + 12:position + 16])[0],
                                    struct.unpack("<H", data[position + 22:position + 24])[0])
            if (channels, bits) != (1, 16):
                raise ImageError(f"WAV is {channels} channel(s) of {bits} bits, expected mono 16-bit")
        if kind == b"data":
            body = data[position + 8:]
            body = body[:len(body) - len(body) % 2]
            samples = struct.unpack(f"<{len(body) // 2}h", body)
            rms = (sum(s * s for s in samples) / max(len(samples), 1)) ** 0.5 / 32768
            return rate, len(samples), rms
        position += 8 + size + size % 2
    raise ImageError("WAV has no data chunk")


def stream_summary(lines: list[dict[str, Any]]) -> tuple[int, int]:
    """Sample rate and sample count of a complete /v1/stream answer (start, audio..., end)."""
    if not lines or lines[0].get("type") != "start" or lines[-1].get("type") != "end":
        raise ImageError(f"/v1/stream did not run from start to end: {[line.get('type') for line in lines]}")
    audio = [line for line in lines if line["type"] == "audio"]
    width = 2 if lines[0]["sample_format"] == "s16le" else 4
    samples = sum(len(base64.b64decode(line["audio"])) // width for line in audio)
    if samples != lines[-1]["samples"] or samples == 0:
        raise ImageError(f"/v1/stream sent {samples} samples, its end line says {lines[-1]['samples']}")
    return lines[0]["sample_rate"], samples


def check_addons(url: str) -> list[str]:
    """Each addon speaks through the OpenAI client (WAV) and /v1/stream; one line of findings per addon."""
    from openai import OpenAI

    status, body = _get(f"{url}/v1/models")
    models = {m["id"]: m for m in json.loads(body)["data"]} if status == 200 else {}
    expected = sorted(p.parent.name for p in (ROOT / "addons").glob("*/addon.json"))
    if sorted(models) != expected:
        raise ImageError(f"/v1/models lists {sorted(models)}, the repository's addons are {expected}")
    client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=300)
    findings = []
    for name, model in models.items():
        wav = client.audio.speech.create(model=name, voice="default", input=TEXT, response_format="wav").content
        rate, count, rms = wav_summary(wav)
        if rate != model["sample_rate"] or count < rate or rms < 0.005:
            raise ImageError(f"{name}: WAV of {count} samples at {rate} Hz, RMS {rms:.4f}: expected over a second "
                             f"of audible speech at {model['sample_rate']} Hz")
        request = urllib.request.Request(f"{url}/v1/stream", data=json.dumps({"model": name, "input": TEXT}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=300) as response:
            lines = [json.loads(line) for line in response.read().splitlines() if line.strip()]
        stream_rate, stream_samples = stream_summary(lines)
        if stream_rate != model["sample_rate"] or stream_samples < rate:
            raise ImageError(f"{name}: /v1/stream gave {stream_samples} samples at {stream_rate} Hz")
        findings.append(f"{name}: OpenAI WAV {count / rate:.2f} s at {rate} Hz (RMS {rms:.3f}), "
                        f"/v1/stream {stream_samples / stream_rate:.2f} s")
    return findings


# run inside the container with its own Python: health, then one NDJSON stream, as a JSON summary
_INSIDE = """
import json, sys, urllib.request
health = urllib.request.urlopen("http://127.0.0.1:8000/healthz", timeout=5).status
request = urllib.request.Request("http://127.0.0.1:8000/v1/stream", headers={"Content-Type": "application/json"},
                                 data=json.dumps({"model": sys.argv[1], "input": sys.argv[2]}).encode())
lines = [json.loads(line) for line in urllib.request.urlopen(request, timeout=300).read().splitlines() if line]
print(json.dumps({"health": health, "lines": lines}))
"""


def offline_run(tag: str) -> list[str]:
    """The image under its own entrypoint with no network: it starts, turns healthy and synthesizes."""
    _remove(OFFLINE_RUN)
    start = time.monotonic()
    docker("run", "--detach", "--name", OFFLINE_RUN, "--network", "none", "--shm-size", "1g", tag)

    probe = ["exec", OFFLINE_RUN, "python", "-c",
             "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
    took = _wait(lambda: _exec_ok(probe), OFFLINE_RUN)
    user = docker("exec", OFFLINE_RUN, "id", "-u")
    if user == "0":
        raise ImageError("the container runs as root")
    out = json.loads(docker("exec", OFFLINE_RUN, "python", "-c", _INSIDE, "piper-joe", TEXT).splitlines()[-1])
    rate, samples = stream_summary(out["lines"])
    deadline = time.monotonic() + 60
    while (state := docker("inspect", "--format", "{{.State.Health.Status}}", OFFLINE_RUN)) != "healthy":
        if time.monotonic() > deadline:
            raise ImageError(f"HEALTHCHECK status is {state!r} a minute after /healthz answered 200")
        time.sleep(2)
    tools = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", tag, "-c",
                   "for t in gcc cc g++ make ld; do command -v $t; done; true")
    if tools:
        raise ImageError(f"build tools in the final image: {tools.split()}")
    _remove(OFFLINE_RUN)
    return [f"--network none: /healthz 200 {took:.1f} s after docker run, uid {user}, HEALTHCHECK {state} "
            f"{time.monotonic() - start:.0f} s after docker run, piper-joe /v1/stream {samples / rate:.2f} s, "
            f"no compilers or make in the image"]


def _exec_ok(command: list[str], timeout: float = 30) -> bool:
    """Whether ``docker COMMAND`` succeeds within ``timeout`` seconds."""
    try:
        done = subprocess.run([os.environ.get("DOCKER", "docker"), *command], capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def host_run(tag: str) -> list[str]:
    """The image's own serve config with host networking, on free ports: time to /healthz 200, then every addon."""
    _remove(HOST_RUN)
    port, metrics = free_ports(2)
    docker("run", "--detach", "--name", HOST_RUN, "--network", "host", "--shm-size", "1g", tag,
           "serve", "--config", "serve_configs/container.yaml", "--port", str(port), "--metrics-port", str(metrics))
    url = f"http://127.0.0.1:{port}"
    took = _wait(lambda: _get(f"{url}/healthz")[0] == 200, HOST_RUN)
    findings = [f"--network host: /healthz 200 {took:.1f} s after docker run", *check_addons(url)]
    _remove(HOST_RUN)
    return findings


def run_image_test(tag: str, base: str | None) -> None:
    if os.geteuid() != 0:
        raise ImageError("make image-test runs dockerd and debootstrap: run it as root")
    with docker_daemon():
        try:
            chosen = choose_base(base)
            seconds = build(tag, base=chosen)
            findings = [f"built {tag} on {chosen} in {seconds:.0f} s, {image_size(tag) / 1e9:.2f} GB",
                        *host_run(tag), *offline_run(tag)]
        finally:
            _remove(HOST_RUN)
            _remove(OFFLINE_RUN)
    print("image-test passed:\n  " + "\n  ".join(findings), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", required=True, help="image name, e.g. voxstack:0.1.0")
    parser.add_argument("--base", default=os.environ.get("IMAGE_BASE") or None,
                        help="base image (default: the Containerfile's, or a local Debian one if it cannot be pulled)")
    args = parser.parse_args(argv)
    try:
        run_image_test(args.tag, args.base)
    except ImageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
