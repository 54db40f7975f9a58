"""Dependencies point one way: no import cycle among the project's modules, counting every import statement
(those inside functions too; only ``if TYPE_CHECKING:`` blocks are left out), and ``blocks/`` imports
nothing of ``deployments/``, not even inside a function.

Importing a module of a subpackage (``blocks.components.text``) loads the subpackage's ``__init__`` first,
so that counts too; the root packages' re-exports (``blocks/__init__.py``) are left out.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("blocks", "deployments")
ALLOWED: frozenset[tuple[str, str]] = frozenset()
"""(importer, imported) pairs allowed to close a cycle: none. The registry loads the built-in components by
name (``importlib``), so it needs no import statement of them."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _targets(node: ast.AST, current: str, is_package: bool) -> list[str]:
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


def imports(name: str) -> set[str]:
    """The project modules ``name`` imports anywhere in its body (``TYPE_CHECKING`` blocks aside)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(sub) for node in ast.walk(tree)
               if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) for sub in ast.walk(node)}
    edges: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        for target in _targets(node, name, path.name == "__init__.py"):
            edges |= {t for t in (target, *_packages_of(target))
                      if t in MODULES and t != name and not name.startswith(t + ".") and (name, t) not in ALLOWED}
    return edges


def _packages_of(module: str) -> list[str]:
    """The subpackages Python initialises before ``module`` (the root package's re-exports aside)."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's strongly connected components (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(sorted(component))
    return found


def test_no_import_cycle_counting_imports_inside_functions() -> None:
    graph = {name: imports(name) for name in MODULES}
    assert sum(len(edges) for edges in graph.values()) > 100  # the graph was really read
    cycles = [c for c in strongly_connected(graph) if len(c) > 1]
    assert not cycles, cycles


def test_blocks_imports_nothing_of_deployments() -> None:
    offending = {name: sorted(t for t in imports(name) if t.startswith("deployments"))
                 for name in MODULES if name.startswith("blocks")}
    assert not {name: targets for name, targets in offending.items() if targets}


def test_the_framework_and_the_config_check_load_without_ray_or_fastapi() -> None:
    code = ("import sys, blocks, blocks.voice, blocks.cli, deployments.settings, deployments.config\n"
            "from deployments.config import load_config\n"
            "load_config('serve_configs/local.yaml')\n"
            "print(sorted(m for m in ('ray', 'fastapi', 'starlette') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_checker_finds_a_cycle() -> None:
    found = strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert ["a", "b", "c"] in found and ["d"] in found
    assert all(len(c) == 1 for c in strongly_connected({"a": {"b"}, "b": set()}))
