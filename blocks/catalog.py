"""Where addons are found, in order (the first folder holding a name wins):

1. each folder of ``$VOXSTACK_ADDONS`` (``os.pathsep``-separated);
2. the user's addons folder, where ``voxstack addons import`` writes by default (the platform's per-user
   data folder: ``~/.local/share/voxstack/addons`` on Linux, ``$XDG_DATA_HOME`` when set);
3. the repository's ``addons/``;
4. addons that installed distributions declare as entry points (group ``voxstack.addons``: name = the
   addon's name, object = a callable returning its folder).

An addon is a folder named as the addon, holding ``addon.json``. A name found again later is shadowed
(``voxstack addons list`` says by what); a plugin that fails is reported by name and reason.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import platformdirs

from blocks.errors import AddonError
from blocks.registry import Problem, distribution

REPOSITORY = Path(__file__).resolve().parent.parent / "addons"
ENV = "VOXSTACK_ADDONS"
ADDON_GROUP = "voxstack.addons"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def user_folder() -> Path:
    """The per-user addons folder (the platform's data folder convention)."""
    return Path(platformdirs.user_data_dir("voxstack", appauthor=False)) / "addons"


def env_folders() -> list[Path]:
    return [Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p.strip()]


@contextlib.contextmanager
def searching(folders: str | None) -> Iterator[None]:
    """Look addons up with ``$VOXSTACK_ADDONS`` = ``folders`` for a while (None: as it is), as a process
    whose environment sets it would (e.g. replicas given it by an application's ``runtime_env``)."""
    if folders is None:
        yield
        return
    before = os.environ.get(ENV)
    os.environ[ENV] = folders
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def default_destination() -> Path:
    """Where an importer writes an addon unless told: the first ``$VOXSTACK_ADDONS`` folder, else the user's."""
    found = env_folders()
    return found[0] if found else user_folder()


@dataclass(frozen=True)
class Found:
    """One addon: its folder and where it comes from."""

    name: str
    folder: Path
    origin: str
    """``repository``, ``$VOXSTACK_ADDONS``, ``user`` (with the folder), or ``plugin <distribution> <version>``."""
    shadows: tuple[str, ...] = ()
    """Origins of addons of the same name found later, which this one hides."""


@dataclass
class Catalog:
    """Every addon found, by name, and the plugins that failed."""

    addons: dict[str, Found] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add(self, name: str, folder: Path, origin: str) -> None:
        if name in self.addons:
            first = self.addons[name]
            self.addons[name] = Found(first.name, first.folder, first.origin, (*first.shadows, origin))
        else:
            self.addons[name] = Found(name, folder, origin)


def _folders(root: Path) -> list[Path]:
    base = root.resolve()
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if NAME.match(p.name) and (p / "addon.json").is_file()
                  and p.resolve().is_relative_to(base))


def catalog() -> Catalog:
    """Every addon on the search path and from plugins (plugins are loaded: their callables run)."""
    found = Catalog()
    roots = [*((p, f"$VOXSTACK_ADDONS {p}") for p in env_folders()), (user_folder(), f"user {user_folder()}"),
             (REPOSITORY, "repository")]
    for root, origin in roots:
        for folder in _folders(root):
            found.add(folder.name, folder.resolve(), origin)
    for entry in entry_points(group=ADDON_GROUP):
        source = f"plugin {distribution(entry)}"
        try:
            folder = Path(entry.load()()).resolve()
            if not (folder / "addon.json").is_file():
                raise AddonError(f"{folder} holds no addon.json")
        except Exception as error:  # a broken plugin is reported, never fatal to the others
            found.problems.append(Problem(entry.name, source, f"{type(error).__name__}: {error}"))
            continue
        found.add(entry.name, folder, source)
    return found


def addon_path(name: str, root: Path | None = None) -> Path:
    """The folder of addon ``name`` (only in ``root`` when given); refuses names that could leave a folder."""
    if not isinstance(name, str) or not NAME.match(name) or ".." in name:
        raise AddonError(
            f"invalid addon name {name!r}: use letters, digits, '-', '_' or '.', no path separators or '..'"
        )
    if root is not None:
        folder = (root.resolve() / name).resolve()
        if not folder.is_relative_to(root.resolve()):
            raise AddonError(f"addon {name!r} in {root} is a link to {folder}, outside the addons folder")
        if not (folder / "addon.json").is_file():
            raise AddonError(f"no addon named {name!r} in {root} (known: {list_addons(root)})")
        return folder
    known = catalog()
    if name not in known.addons:
        broken = next((p for p in known.problems if p.name == name), None)
        why = f": the plugin {broken.source} failed ({broken.reason})" if broken else ""
        raise AddonError(f"no addon named {name!r}{why} (known: {sorted(known.addons)})")
    return known.addons[name].folder


def list_addons(root: Path | None = None) -> list[str]:
    """The names of the addons found (only in ``root`` when given)."""
    if root is not None:
        return [p.name for p in _folders(root)]
    return sorted(catalog().addons)
