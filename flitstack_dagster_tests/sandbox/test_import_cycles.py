"""The sandbox's modules import one another in one direction only: no import (at module level, inside a
function, or for type checking) closes a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import flitstack_dagster.sandbox as sandbox_pkg

PACKAGE = "flitstack_dagster.sandbox"
PACKAGE_DIR = Path(sandbox_pkg.__file__).parent


def _imports(path: Path) -> set[str]:
    """Every sandbox module `path` imports, wherever the import statement sits."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == PACKAGE:
                found.update(f"{PACKAGE}.{a.name}" for a in node.names)
            elif node.module.startswith(PACKAGE + "."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(PACKAGE + "."))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {f"{PACKAGE}.{p.stem}": p for p in PACKAGE_DIR.glob("*.py") if p.stem != "__init__"}
    return {name: _imports(path) & set(modules) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_sandbox_has_no_import_cycle() -> None:
    graph = import_graph()
    assert f"{PACKAGE}.routing" in graph[f"{PACKAGE}.app"]  # the graph is read, not empty
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_route_modules_sit_below_the_app() -> None:
    graph = import_graph()
    for module in ("v1", "catalog", "search", "admin"):
        name = f"{PACKAGE}.{module}"
        if name in graph:
            assert f"{PACKAGE}.app" not in graph[name], f"{module} imports the app"
