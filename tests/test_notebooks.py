"""Every notebook executes without a cell error on the smoke scenario, both as ``sloanalysis report``
runs it (drawing from the precomputed context) and as JupyterLab runs it (computing on its own from
the run directory, widgets included), from a working directory outside the checkout; all share one
kernel name and a papermill parameters cell."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from reporting import DASHBOARD, SLOS, rules_files, smoke_report, smoke_run

from sloanalysis.report.build import KERNEL_NAME, NOTEBOOKS, execute_notebook, notebooks_dir
from sloanalysis.report.context import NOTEBOOK_PARAMETERS


@pytest.fixture(scope="session")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return smoke_run(tmp_path_factory.getbasetemp())


def _errors(nb: nbformat.NotebookNode) -> list[str]:
    return [
        f"{o.get('ename')}: {o.get('evalue')}"
        for cell in nb.cells
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]


def test_notebooks_have_a_parameters_cell_one_kernel_and_no_outputs() -> None:
    every = sorted(notebooks_dir().glob("*.ipynb"))
    assert {p.stem for p in every} >= {*NOTEBOOKS, "analysis", "capacity_planning"}
    for path in every:
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata["kernelspec"]["name"] == KERNEL_NAME, path.name
        tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, path.name
        # Committed clean: outputs belong in reports/, not in the repository.
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name
        # Nothing relative to the checkout: paths come from parameters or the project search.
        assert "../" not in "".join(c.source for c in nb.cells), path.name
    for name in NOTEBOOKS:
        nb = nbformat.read(notebooks_dir() / f"{name}.ipynb", as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        for key in (*NOTEBOOK_PARAMETERS, "interactive"):
            assert f"{key} = " in tagged[0].source, (name, key)


def test_every_notebook_executes_in_the_report(tmp_path_factory: pytest.TempPathFactory) -> None:
    result = smoke_report(tmp_path_factory.getbasetemp())
    for name in NOTEBOOKS:
        nb = nbformat.read(result.out / f"{name}.ipynb", as_version=4)
        assert _errors(nb) == [], name
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.get("execution_count") for c in code), name
        injected = [c for c in nb.cells if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(injected) == 1 and "interactive = False" in injected[0].source


@pytest.mark.parametrize("interactive", [False, True])
def test_notebooks_run_standalone_from_the_run_directory(
    smoke: Path, tmp_path: Path, interactive: bool
) -> None:
    """No precomputed context: each notebook computes what it shows (as in JupyterLab)."""
    params = {
        "run_dir": str(smoke),
        "slos": str(SLOS),
        "rules": list(rules_files()),
        "dashboard": str(DASHBOARD),
        "data": None,
        "interactive": interactive,
    }
    # Only the tuning notebook has widgets; the other two need one pass.
    names = ["alert_tuning"] if interactive else list(NOTEBOOKS)

    def run(name: str) -> nbformat.NotebookNode:
        return execute_notebook(
            notebooks_dir() / f"{name}.ipynb", tmp_path / f"{name}.ipynb", params, spec_dir=tmp_path / "k"
        )

    with ThreadPoolExecutor(max_workers=3) as pool:
        done = dict(zip(names, pool.map(run, names), strict=True))
    for name, nb in done.items():
        assert _errors(nb) == [], name
    if interactive:
        outputs = [o for c in done["alert_tuning"].cells for o in c.get("outputs", [])]
        views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        assert views, "the sliders were not displayed"


def test_the_analysis_notebook_runs_from_any_working_directory(smoke: Path, tmp_path: Path) -> None:
    """The public-API walk-through, executed in an empty directory outside the checkout."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    params = {"run_dir": str(smoke), "slos": str(SLOS), "rules": list(rules_files())}
    nb = execute_notebook(
        notebooks_dir() / "analysis.ipynb",
        tmp_path / "analysis.ipynb",
        params,
        spec_dir=tmp_path / "k",
        cwd=cwd,
    )
    assert _errors(nb) == []
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2 + len(rules_files())  # the rates, the budget, a timeline per rules file
    assert list(cwd.iterdir()) == []
