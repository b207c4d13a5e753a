"""The packages' plan, read from the source (every import, function-local ones too):
``simulations.verify`` builds on ``simulations.engine`` and never the reverse, and no module
imports itself back through others (no import circle)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("theory", "simulations", "torch_impl", "paper_figs")


def modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``, by dotted name (a package by its own)."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """module → the modules of ``packages`` it imports anywhere in its source (``from p import
    m`` counts as importing ``p.m`` where that is a module, else ``p``)."""
    known = modules(root, packages)
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([base] if base else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                           for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward(graph: dict[str, set[str]], low: str, high: str) -> list[str]:
    """The imports from modules of ``low`` into modules of ``high``."""
    def inside(name: str, package: str) -> bool:
        return name == package or name.startswith(package + ".")

    return sorted(f"{m} -> {t}" for m, ts in graph.items() if inside(m, low)
                  for t in ts if inside(t, high))


def test_engine_never_imports_verify():
    graph = import_graph(ROOT)
    assert len([m for m in graph if m.startswith("simulations.engine.")]) >= 15
    assert upward(graph, "simulations.verify", "simulations.engine")  # the walk sees imports
    assert upward(graph, "simulations.engine", "simulations.verify") == []


def test_theory_imports_no_other_package():
    graph = import_graph(ROOT)
    for other in ("simulations", "torch_impl", "paper_figs"):
        assert upward(graph, "theory", other) == [], other
    assert upward(graph, "torch_impl", "simulations") == []


def test_no_import_circle():
    graph = import_graph(ROOT)
    assert sum(map(len, graph.values())) > 200
    assert circles(graph) == []


def test_the_checks_find_a_planted_circle_and_an_upward_import(tmp_path):
    files = {"simulations/__init__.py": "",
             "simulations/engine/__init__.py": "",
             "simulations/engine/a.py": "def f():\n    from simulations.verify import b\n",
             "simulations/verify/__init__.py": "",
             "simulations/verify/b.py": "from ..engine import a\nimport simulations.verify.c\n",
             "simulations/verify/c.py": "from simulations.verify import b as bee\n"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path, ("simulations",))
    assert graph["simulations.verify.b"] == {"simulations.engine.a", "simulations.verify.c"}
    assert upward(graph, "simulations.engine", "simulations.verify") == [
        "simulations.engine.a -> simulations.verify.b"]
    assert circles(graph) == [["simulations.engine.a", "simulations.verify.b",
                               "simulations.verify.c"]]
    assert circles({"x": {"y"}, "y": set()}) == []
