"""The adding-a-model guide, run as written in an empty folder: a piper voice imported, then a plugin
distribution built as a wheel outside the repository, installed with pip, listed and streamed."""

from __future__ import annotations

import re

import numpy as np
import soundfile

from tests.guide_runner import GuideRun


def test_every_block_of_the_guide_runs(guide: GuideRun) -> None:
    assert guide.returncode == 0, guide.output[-6000:]
    assert not list(guide.folder.glob("user-data/**/addon.json")), "the guide wrote outside its folder"


def test_the_imported_voice_is_listed_and_streams_faithfully(guide: GuideRun) -> None:
    assert re.search(r"^my-voice\t.*\t\$VOXSTACK_ADDONS ", guide.output, re.MULTILINE), guide.output
    checks = re.findall(r"^(ok|DIFFERS)\tdefault\t", guide.output, re.MULTILINE)
    assert checks and set(checks) == {"ok"}, guide.output


def test_the_plugin_wheel_declares_its_blocks_and_addon(guide: GuideRun) -> None:
    wheels = list((guide.folder / "dist").glob("acme_voices-0.1.0-*.whl"))
    assert len(wheels) == 1 and (guide.folder / "plugins" / "acme_voices-0.1.0.dist-info").is_dir()
    for block in ("Tremolo", "CappedDurations"):
        assert re.search(rf"^component\t{block}\tacme-voices 0\.1\.0\tacme_voices\.blocks:{block}$", guide.output,
                         re.MULTILINE), guide.output
    assert re.search(r"^acme-tremolo\t0\.1\.0\t16000 Hz\tvoices: default\tplugin acme-voices 0\.1\.0\t",
                     guide.output, re.MULTILINE), guide.output
    assert "Tremolo" in guide.output and "acme.yaml is valid" in guide.output


def test_the_plugin_block_streams_in_process(guide: GuideRun) -> None:
    plain, rate = soundfile.read(guide.folder / "hello.wav", dtype="float32")
    tremolo, tremolo_rate = soundfile.read(guide.folder / "tremolo.wav", dtype="float32")
    assert rate == tremolo_rate == 16000 and tremolo.shape == plain.shape
    # the same sentence and seed: the voice's audio times the 4 Hz, 0.4-deep tremolo (16-bit files)
    seconds = np.arange(plain.shape[0]) / rate
    gain = 1.0 - 0.4 * 0.5 * (1.0 + np.sin(2.0 * np.pi * 4.0 * seconds))
    assert np.abs(tremolo - plain).max() > 50 / 32768  # the tremolo is there (the made voice speaks softly)
    assert np.abs(tremolo - plain * gain).max() <= 2 / 32768, np.abs(tremolo - plain * gain).max() * 32768
    checks = re.findall(r"^(ok|DIFFERS)\tdefault\t\d+ samples\t.*$", guide.output, re.MULTILINE)
    assert len(checks) == 10 and set(checks) == {"ok"}, guide.output
