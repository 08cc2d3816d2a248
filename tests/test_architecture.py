"""The package's shape: no module imports, even lazily, a module that imports it back.

Every module of ``colorizer`` is parsed with ``ast``; every ``import`` in it counts, at the top,
inside functions and under ``if TYPE_CHECKING:`` alike (an annotation that needs the module
above is as much a dependency on it as a call). An import names the most specific module file
it reaches: ``from colorizer.guidance import core`` is ``colorizer/guidance/core.py``,
``from colorizer.guidance import Guidance`` is ``colorizer/guidance/__init__.py``, which
counts as a module like any other. The parent packages Python also initialises on the way are
not counted: each has its own edges, checked in turn. A strongly connected component of more
than one module is a cycle, and fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

import colorizer

PACKAGE = "colorizer"
ROOT = Path(colorizer.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import, wherever it stands."""
    found: list[tuple[str, list[str]]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            found.append((base, [alias.name for alias in node.names]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (resolved to their files)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for target, names in _imports(tree, name, path.name == "__init__.py"):
            if target != PACKAGE and not target.startswith(PACKAGE + "."):
                continue
            reached = set()
            for imported in names:
                if f"{target}.{imported}" in modules:
                    reached.add(f"{target}.{imported}")
                else:
                    reached.add(target)
            if not names:
                reached.add(target)
            for module in reached:
                assert module in modules, f"{name} imports {module}, which does not exist"
                if module != name:
                    graph[name].add(module)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def _describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    edges = [f"  {a} -> {b}" for a in component for b in sorted(graph[a] & members)]
    return "cycle among " + ", ".join(component) + ":\n" + "\n".join(edges)


def test_the_walk_sees_every_kind_of_import():
    graph = import_graph()
    assert "colorizer.pipeline" in graph
    assert "colorizer.planes" in graph["colorizer.pipeline"]
    # A lazy import inside a function counts.
    assert "colorizer.pipeline" in graph[PACKAGE]
    # So does one under TYPE_CHECKING (guiders.py imports Prediction only there).
    assert "colorizer.prediction" in graph["colorizer.guidance.guiders"]


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "\n".join(_describe(c, graph) for c in found)


def _is_cli(module: str) -> bool:
    """A command-line module: ``colorizer.cli``, any ``*.cli``, or a ``__main__`` entry point."""
    return module == f"{PACKAGE}.cli" or module.endswith((".cli", ".__main__"))


def test_library_modules_never_import_a_command_line_module():
    """Front ends import the library, never the reverse: only CLI modules (and the package's
    lazy ``__init__``, which names no CLI module) may import ``colorizer.cli`` or a ``*.cli``."""
    graph = import_graph()
    upward = [
        f"{module} -> {target}"
        for module, targets in sorted(graph.items())
        if not _is_cli(module)
        for target in sorted(targets)
        if _is_cli(target)
    ]
    assert not upward, "library modules importing command-line modules:\n" + "\n".join(upward)


def test_guidance_never_imports_the_pipeline():
    """Guiders are given the network's outputs; they never run it (issue 23)."""
    graph = import_graph()
    guidance = [m for m in graph if m.startswith(f"{PACKAGE}.guidance") and not _is_cli(m)]
    assert guidance
    offending = [m for m in guidance if f"{PACKAGE}.pipeline" in graph[m]]
    assert not offending, offending
