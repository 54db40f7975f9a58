"""The docs against the code: every ``voxstack`` command line shown in a code block names a command that
exists, with options that command has."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", ROOT / "deployments" / "README.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def command_lines(text: str) -> list[str]:
    """``voxstack ...`` lines of the text's code blocks (a ``$ `` prompt allowed), comments cut off."""
    found = []
    for block in FENCE.findall(text):
        for line in block.splitlines():
            line = line.strip().removeprefix("$ ").strip()
            if line.startswith("voxstack "):
                found.append(line.split("  #", 1)[0].split(" # ", 1)[0].strip())
    return found


def resolve(line: str) -> tuple[Any, list[str], str]:
    """The command (typer's click) a line runs, the options it passes, and the command's name."""
    from deployments.cli import app

    command = typer.main.get_command(app)
    words = shlex.split(line)[1:]
    path = ["voxstack"]
    while hasattr(command, "commands") and words and words[0] in command.commands:
        path.append(words[0])
        command = command.commands[words.pop(0)]
    if hasattr(command, "commands"):
        raise AssertionError(f"{line!r}: no command {words[:1]} under {' '.join(path)}")
    options = [w.split("=", 1)[0] for w in words if w.startswith("-") and w != "-"]
    return command, options, " ".join(path)


SHOWN = [(path.relative_to(ROOT).as_posix(), line) for path in DOCS for line in command_lines(path.read_text())]


def test_the_docs_show_command_lines() -> None:
    assert len(SHOWN) > 20, SHOWN


@pytest.mark.parametrize(("doc", "line"), SHOWN, ids=[f"{doc}:{line[:60]}" for doc, line in SHOWN])
def test_each_command_line_shown_exists_with_its_options(doc: str, line: str) -> None:
    command, options, name = resolve(line)
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)} | {"--help"}
    unknown = [option for option in options if option not in known]
    assert not unknown, f"{doc}: {line!r}: {name} has no option {unknown}; it has {sorted(known)}"
