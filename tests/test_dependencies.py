"""Every third-party package the code imports is declared in pyproject.toml (and mirrored in
environment.yml), so a clean install has what the code needs."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OWN = {"sloanalysis", "simulator"}
# conda-forge names of the same packages
CONDA_NAMES = {"matplotlib": "matplotlib-base", "xxhash": "python-xxhash"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(groups: tuple[str, ...]) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for group in groups:
        specs += project["optional-dependencies"][group]
    return {_norm(re.split(r"[<>=!~\[ ;]", s, maxsplit=1)[0]) for s in specs}


def _imported(folders: tuple[str, ...]) -> set[str]:
    names: set[str] = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.add(node.module.split(".")[0])
    return {n for n in names if n not in OWN and n not in sys.stdlib_module_names}


def _undeclared(folders: tuple[str, ...], groups: tuple[str, ...]) -> list[str]:
    dists = packages_distributions()
    declared = _declared(groups)
    missing = []
    for module in sorted(_imported(folders)):
        providers = {_norm(d) for d in dists.get(module, [module])}
        if not providers & declared:
            missing.append(f"{module} (from {', '.join(sorted(providers))})")
    return missing


def test_the_package_declares_what_it_imports() -> None:
    assert _undeclared(("sloanalysis", "simulator"), ("dask",)) == []


def test_tests_and_benchmarks_declare_what_they_import() -> None:
    local = {p.stem for p in (ROOT / "tests").glob("*.py")} | {
        p.stem for p in (ROOT / "benchmarks").glob("*.py")
    }
    missing = [m for m in _undeclared(("tests", "benchmarks"), ("dask", "dev")) if m.split()[0] not in local]
    assert missing == []


def test_environment_yml_mirrors_the_lower_bounds() -> None:
    env = (ROOT / "environment.yml").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"]:
        name, bound = re.match(r"([A-Za-z0-9_.\-]+)(>=[^,; ]+)?", spec).groups()  # type: ignore[union-attr]
        name = CONDA_NAMES.get(name, name)
        words = "[-_]".join(re.escape(w) for w in re.split(r"[-_]", name))
        pattern = rf"-\s+{words}{re.escape(bound or '')}(\s|$)"
        assert re.search(pattern, env, re.IGNORECASE), spec
