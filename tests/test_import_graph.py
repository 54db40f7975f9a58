"""The import graph of ``blocks/`` has no cycle: each module can be read before the ones that use it.

Only imports that run when a module loads count: those under ``if TYPE_CHECKING:`` and those inside
functions (the registry's lazy loading of the components) are left out. Importing a module of a
subpackage (``blocks.components.text``) loads the subpackage's ``__init__`` first, so that counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "blocks"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _targets(node: ast.stmt, current: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = current.split(".")[: len(current.split(".")) - node.level + (1 if is_package else 0)]
        source = ".".join([*base, node.module] if node.module else base)
    else:
        source = node.module or ""
    found = []
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        found.append(submodule if submodule in MODULES else source)
    return found


def load_time_imports(name: str) -> set[str]:
    """The ``blocks`` modules that ``name`` imports when it loads."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    edges: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for target in _targets(node, name, path.name == "__init__.py"):
            edges |= {t for t in (target, *_packages_of(target))
                      if t in MODULES and t != name and not name.startswith(t + ".")}
    return edges


def _packages_of(module: str) -> list[str]:
    """The subpackages Python initialises before ``module`` (the root package's re-exports aside)."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path of module names, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_blocks_has_no_import_cycle() -> None:
    graph = {name: load_time_imports(name) for name in MODULES}
    assert sum(len(edges) for edges in graph.values()) > 20  # the graph was really read
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_checker_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
