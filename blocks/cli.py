"""The ``voxstack`` command line: synthesis and addons, in process (no Ray). The service's commands
(``serve``, ``deploy``, ``ab``, ``wyoming``) join this app in ``deployments.cli``."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from tqdm import tqdm

from blocks.addon import Addon, read_config
from blocks.audio_formats import EXTENSIONS, encoder_for, format_of, format_rate
from blocks.backends.compile import compile_fixed
from blocks.errors import AddonError, InputError
from blocks.voice import Voice

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
    output: Annotated[Path, typer.Option("-o", "--output", help="Audio file to write, in the format its extension "
                                         f"names: {', '.join('.' + e for e in EXTENSIONS)}.")] = Path("out.wav"),
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Read the text from a file.")] = None,
    addon: Annotated[str, typer.Option(help="Addon (voice model) to use.")] = "piper-joe",
    voice_name: Annotated[str | None, typer.Option("--voice", help="The addon's voice (default: its first).")] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives identical audio.")] = 0,
    length_scale: Annotated[float | None, typer.Option(help="Speaking time multiplier (>1 slower).")] = None,
    noise_scale: Annotated[float | None, typer.Option(help="Prior noise scale.")] = None,
    noise_w: Annotated[float | None, typer.Option(help="Duration noise scale.")] = None,
    marks: Annotated[Path | None, typer.Option(help="Write speech marks (JSON lines) here.")] = None,
    ssml: Annotated[bool, typer.Option("--ssml", help="The text (or file) is SSML (<speak>...</speak>).")] = False,
) -> None:
    """Synthesize TEXT into an audio file (wav, mp3, opus, aac, flac or raw 24 kHz pcm, from -o's extension),
    encoded as it streams, utterance by utterance."""
    try:
        audio_format = format_of(output)
    except ValueError as error:
        fail(str(error))
    content = read_text(text, file)
    try:
        voice = Voice.load(addon)
        stream = voice.stream(content, voice=voice_name, seed=seed, length_scale=length_scale,
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
    encoder = encoder_for(audio_format, voice.sample_rate)
    try:
        with output.open("wb") as sink, tqdm(total=first.utterances, unit="utt", disable=not show) as progress:
            for chunk in _chain(first, stream):
                sink.write(encoder.encode(chunk.samples))
                written += chunk.samples.shape[0]
                mark_lines += [json.dumps(m.as_json(), ensure_ascii=False) for m in chunk.marks]
                progress.n = chunk.utterance + (1 if chunk.last else 0)
                progress.refresh()
            sink.write(encoder.finish())
            if audio_format == "wav":
                _wav_sizes(sink)
    finally:
        encoder.close()
    if marks is not None:
        marks.write_text("".join(line + "\n" for line in mark_lines), encoding="utf-8")
    rate = format_rate(audio_format, voice.sample_rate)
    typer.echo(f"wrote {output} ({audio_format}, {written / voice.sample_rate:.2f} s at {rate} Hz)")


def _wav_sizes(wav: BinaryIO) -> None:
    """Write the RIFF and data sizes into a finished file's streaming WAV header (which says 'unknown')."""
    size = wav.tell()
    wav.seek(4)
    wav.write(struct.pack("<I", size - 8))
    wav.seek(40)
    wav.write(struct.pack("<I", size - 44))


def _chain(first, rest):  # type: ignore[no-untyped-def]
    yield first
    yield from rest


@addons_app.command("list")
def addons_list() -> None:
    """List the addons that can be loaded: name, version, rate, voices, origin and description; then plugins
    that failed to load, and component or frontend types claimed twice or broken."""
    from blocks.catalog import catalog
    from blocks.frontends import FRONTENDS
    from blocks.registry import COMPONENTS

    found = catalog()
    for name, addon in sorted(found.addons.items()):
        try:
            config = read_config(addon.folder)
        except AddonError as error:
            typer.echo(f"{name}\tbroken\t{addon.origin}\t{error}")
            continue
        voices = ",".join(v.name for v in config.voices)
        shadows = f" (hides {'; '.join(addon.shadows)})" if addon.shadows else ""
        typer.echo(f"{name}\t{config.version}\t{config.sample_rate} Hz\tvoices: {voices}\t{addon.origin}{shadows}\t"
                   f"{config.description}")
    for problem in [*found.problems, *COMPONENTS.problems(), *FRONTENDS.problems()]:
        typer.echo(f"{problem.name}\tbroken plugin\t{problem.source}\t{problem.reason}")


@addons_app.command("types")
def addons_types() -> None:
    """List the component and frontend types a stack or frontend can name: kind, name, origin (built in, or
    the distribution that declares it) and class; then the types that failed to load."""
    from blocks.frontends import FRONTENDS
    from blocks.registry import COMPONENTS

    broken = []
    for table in (COMPONENTS, FRONTENDS):
        usable = table.load_all()
        for name, claim in sorted(table.claims().items()):
            if name in usable:
                typer.echo(f"{table.kind}\t{name}\t{claim.source}\t{claim.target}")
        broken += [(table.kind, problem) for problem in table.problems()]
    for kind, problem in broken:
        typer.echo(f"{kind}\t{problem.name}\tbroken plugin\t{problem.source}\t{problem.reason}")


import_app = typer.Typer(no_args_is_help=True, help="Import a model exported by another runtime as an addon.")
addons_app.add_typer(import_app, name="import")


@import_app.command("piper")
def import_piper_voice(
    model: Annotated[Path, typer.Argument(help="The voice's ONNX file, as piper-tts exports it.")],
    config: Annotated[Path | None, typer.Option(help="Its config (default: MODEL.json beside it).")] = None,
    name: Annotated[str | None, typer.Option(help="The addon's name (default: the file's name).")] = None,
    to: Annotated[Path | None, typer.Option(help="Folder to write the addon into (default: the first "
                                                 "$VOXSTACK_ADDONS folder, else the user's addons folder).")] = None,
) -> None:
    """Turn a piper voice into an addon: cut its graph, check every speaker against it, write the folder."""
    from blocks.importers.piper import import_piper

    try:
        imported = import_piper(model, config, name, to, progress=lambda line: typer.echo(f"voxstack: {line}"))
    except AddonError as error:
        fail(str(error), 1)
    worst = min(imported.snr_db.values())
    typer.echo(f"voxstack: imported {imported.name} into {imported.folder} in {imported.seconds:.1f} s: "
               f"voices {', '.join(imported.speakers)}; the split equals the whole graph at {worst:.0f} dB or more")


@addons_app.command("inspect")
def addons_inspect(name: str) -> None:
    """Show an addon's stack tree, networks and backend."""
    try:
        voice = Voice.load(name, warm_up=False)
    except AddonError as error:
        fail(str(error))
    typer.echo(voice.describe())


@addons_app.command("check")
def addons_check(
    name: str,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Sentences to check, one per line "
                                                                    "(default: a few English ones).")] = None,
    voice: Annotated[str | None, typer.Option(help="The addon's voice (default: every voice).")] = None,
) -> None:
    """Check that an addon streams faithfully: each sentence's chunked audio must equal its whole-utterance
    audio (the same length, >= 60 dB) for each voice. Exits 1 naming the sentences that differ."""
    from blocks.parity import FLOOR_DB, PROBES, compare

    texts = list(PROBES) if file is None else [line.strip() for line in read_text(None, file).splitlines()
                                               if line.strip()]
    try:
        loaded = Voice.load(name, warm_up=False)
        names = [voice] if voice is not None else loaded.voices
        results = [(who, compare(loaded, text, who)) for who in names for text in texts]
    except (AddonError, InputError) as error:
        fail(str(error))
    for who, found in results:
        snr = "different lengths" if found.snr_db is None else f"{found.snr_db:.1f} dB"
        typer.echo(f"{'ok' if found.equal else 'DIFFERS'}\t{who}\t{found.samples} samples\t{snr}\t{found.text[:60]}")
    differ = sum(not found.equal for _, found in results)
    typer.echo(f"voxstack: {len(results) - differ} of {len(results)} equal at >= {FLOOR_DB:g} dB")
    if differ:
        raise typer.Exit(1)


@addons_app.command("compile")
def addons_compile(
    name: str,
    profile: Annotated[str, typer.Option(help="Profile to prepare (only 'fixed' needs artefacts).")] = "fixed",
) -> None:
    """Build an addon's static-shape artefacts once (fixed profile); loading never compiles."""
    if profile != "fixed":
        fail(f"unknown profile {profile!r}: only 'fixed' has artefacts to compile")
    try:
        manifest = compile_fixed(Addon.open(name))
    except AddonError as error:
        fail(str(error))
    for network, files in manifest.items():
        typer.echo(f"{network}: {', '.join(f'{size} -> {path}' for size, path in files.items())}")


if __name__ == "__main__":
    app()
