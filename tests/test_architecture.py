"""The package layering, measured from the source with :mod:`ast` (every import, function-local ones
included): library code never imports ``sloanalysis.cli``, ``sloanalysis`` never imports
``simulator``, and no module imports itself through a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sloanalysis", "simulator")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The module an import names: ``a.b.c`` is module ``a.b.c`` or attribute ``c`` of ``a.b``."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                if t.split(".")[0] in PACKAGES:
                    dep = _resolve(t, modules)
                    if dep and dep != name:
                        deps.add(dep)
        graph[name] = deps
    return graph


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_library_code_never_imports_the_cli() -> None:
    bad = [
        f"{m} -> {d}"
        for m, deps in import_graph().items()
        if _in(m, "sloanalysis") and not _in(m, "sloanalysis.cli")
        for d in deps
        if _in(d, "sloanalysis.cli")
    ]
    assert bad == []


def test_sloanalysis_never_imports_simulator() -> None:
    bad = [
        f"{m} -> {d}"
        for m, deps in import_graph().items()
        if _in(m, "sloanalysis")
        for d in deps
        if _in(d, "simulator")
    ]
    assert bad == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    # A package's __init__ re-exporting its own modules is not a cycle of concepts.
    graph = {
        m: {
            d
            for d in deps
            if not (
                m.rpartition(".")[0] and _in(m, d) and (ROOT / d.replace(".", "/") / "__init__.py").exists()
            )
        }
        for m, deps in import_graph().items()
    }
    assert _cycles(graph) == []


def test_the_checker_sees_a_cycle_and_a_cli_import() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _resolve("sloanalysis.cli.main.main", _modules()) == "sloanalysis.cli.main"


def test_functions_are_short_or_say_why() -> None:
    """No function above 80 lines unless its docstring says why ("Long because ...")."""
    long = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 80 and "Long because" not in (ast.get_docstring(node) or ""):
                    long.append(f"{name}.{node.name}: {length} lines")
    assert long == []
