"""Three architectures side by side in one process, each with its own sample rate and stages."""

from __future__ import annotations

import subprocess
import sys

from blocks import list_addons, load_addon

EXPECTED = {"piper-joe": 22050, "legacy-ar": 22050, "hibari": 24000}


def test_all_addons_stream_in_one_process():
    voices = {name: load_addon(name) for name in EXPECTED}
    streams = {name: voice.stream(f"This is {name} speaking.", seed=1) for name, voice in voices.items()}
    firsts = {name: next(stream) for name, stream in streams.items()}  # all three open at once
    for name, first in firsts.items():
        rest = list(streams[name])
        assert first.sample_rate == EXPECTED[name]
        total = first.samples.shape[0] + sum(c.samples.shape[0] for c in rest)
        assert total > 0.5 * EXPECTED[name], name
        assert (rest[-1] if rest else first).last


def test_addons_list_shows_every_addon():
    assert set(EXPECTED) <= set(list_addons())
    listed = subprocess.run([sys.executable, "-m", "blocks.cli", "addons", "list"], capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == 0
    for name, rate in EXPECTED.items():
        assert any(line.startswith(name) and f"{rate} Hz" in line for line in listed.stdout.splitlines())
