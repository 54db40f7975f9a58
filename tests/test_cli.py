"""The command line, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import soundfile

CLI = [sys.executable, "-m", "blocks.cli"]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, timeout=120)


def test_synthesize_writes_wav_and_marks(tmp_path: Path):
    out, marks = tmp_path / "out.wav", tmp_path / "marks.jsonl"
    done = run("synthesize", "Hello from the command line.", "-o", str(out), "--seed", "3",
               "--length-scale", "1.1", "--noise-scale", "0.5", "--noise-w", "0.6", "--marks", str(marks))
    assert done.returncode == 0, done.stderr
    audio, rate = soundfile.read(out)
    assert rate == 22050 and audio.shape[0] > rate
    lines = [json.loads(line) for line in marks.read_text().splitlines()]
    assert [m["value"] for m in lines if m["type"] == "word"] == ["Hello", "from", "the", "command", "line"]


def test_text_from_stdin_and_file(tmp_path: Path):
    source = tmp_path / "in.txt"
    source.write_text("From a file.")
    assert run("synthesize", "-o", str(tmp_path / "a.wav"), stdin="From stdin.").returncode == 0
    assert run("synthesize", "--file", str(source), "-o", str(tmp_path / "b.wav")).returncode == 0
    assert (tmp_path / "a.wav").stat().st_size > 1000 and (tmp_path / "b.wav").stat().st_size > 1000


def test_empty_text_exits_2_and_writes_nothing(tmp_path: Path):
    out = tmp_path / "empty.wav"
    done = run("synthesize", "   ", "-o", str(out))
    assert done.returncode == 2
    assert "empty" in done.stderr
    assert not out.exists()


def test_bad_addon_name_exits_2(tmp_path: Path):
    done = run("synthesize", "hi", "--addon", "../x", "-o", str(tmp_path / "x.wav"))
    assert done.returncode == 2 and "invalid addon name" in done.stderr


def test_addons_list_and_inspect():
    listed = run("addons", "list")
    assert listed.returncode == 0 and "piper-joe" in listed.stdout
    inspected = run("addons", "inspect", "piper-joe")
    assert inspected.returncode == 0
    for word in ("StreamablePipeline", "Encoders", "Upsampler", "Decoder", "Vocoder", "onnxruntime", "flow"):
        assert word in inspected.stdout


def test_synthesize_picks_the_format_from_the_extension(tmp_path: Path):
    import av

    out = tmp_path / "out.mp3"
    done = run("synthesize", "Hello in another format.", "-o", str(out))
    assert done.returncode == 0 and "(mp3," in done.stdout, done.stderr
    with av.open(str(out)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name.startswith("mp3") and stream.sample_rate == 22050
        assert sum(frame.samples for frame in container.decode(stream)) > 22050
    refused = run("synthesize", "Hi.", "-o", str(tmp_path / "out.m4a"))
    assert refused.returncode == 2 and ".mp3" in refused.stderr and ".flac" in refused.stderr
    assert not (tmp_path / "out.m4a").exists()
