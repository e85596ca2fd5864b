"""Render the SLO report: compute once, execute the notebooks headless, export standalone HTML.

:func:`build_report` checks the inputs (bad ones raise a one-line
:class:`~sloanalysis.errors.UserError` before anything is written), computes every part of the
:class:`~sloanalysis.report.context.Context` in this process, executes the notebooks in parallel
kernels that only draw from the saved context (papermill injects the parameters, nbclient runs
them), exports each one with nbconvert (code hidden, figures embedded as base64 PNG, no script or
stylesheet fetched from the network) and writes ``summary.md``, ``summary.json`` and
``junit.xml``. Everything is written into a temporary sibling directory that replaces ``out`` at
the end, so an interrupted or failed run leaves the previous report intact.
"""

from __future__ import annotations

import html
import json
import math
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mistune
import nbformat
import pandas as pd
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbconvert import HTMLExporter
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from sloanalysis.dashboard import load_dashboard
from sloanalysis.durations import format_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.files import StagedDirectory
from sloanalysis.report import gates
from sloanalysis.report.alerts import score_table
from sloanalysis.report.context import Context
from sloanalysis.report.model import DEFAULT_PERIOD_MS, Inputs
from sloanalysis.rules.backtest import Backtest
from sloanalysis.rules.model import load_rules
from sloanalysis.slo.formats import load_slo_files
from sloanalysis.sources.rundir import INCIDENTS, RUN_JSON, SAMPLES

__all__ = [
    "NOTEBOOKS",
    "ReportError",
    "ReportResult",
    "build_report",
    "check_inputs",
    "execute_notebook",
    "export_html",
    "notebook_parameters",
    "notebooks_dir",
]

NOTEBOOKS = ("slo_report", "alert_tuning", "dashboard")
NOTEBOOK_PARTS = {
    "slo_report": ("slo_results",),
    "dashboard": ("dashboard",),
    "alert_tuning": ("backtests", "tuning"),
}
"""What each notebook draws, in the order computed (the report's parts for any other notebook)."""
KERNEL_NAME = "tron-slo-toolkit"
VALIDATION_TAG = "alert-validation"  # the alert page's cells that show a `--validation` output
"""The one kernel name of every notebook (``make install`` registers it for JupyterLab)."""
REPORT_MARKER = ".sloanalysis-report"  # `report --out` replaces only a directory carrying it
TEMPLATES = Path(__file__).parent / "templates"


class ReportError(UserError):
    """A notebook failed while rendering the report."""


@dataclass
class ReportResult:
    """What was written: the gates, the Markdown summary, the pages; ``no_data``: no SLO had a
    single sample in the range (``sloanalysis report`` exits 2)."""

    out: Path
    checks: list[gates.Check]
    summary_md: str
    timings: dict[str, Any]
    html: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    no_data: bool = False

    @property
    def failed(self) -> list[gates.Check]:
        return gates.failed(self.checks)


def notebooks_dir() -> Path:
    """The notebooks shipped inside the package (``sloanalysis/notebooks``; ``notebooks/`` in a checkout
    is a link to it), so reports render from an installed package and any working directory."""
    path = Path(__file__).resolve().parents[1] / "notebooks"
    if not path.is_dir():
        raise UserError(f"{path}: the packaged notebooks are missing (reinstall the package)")
    return path


# -- inputs ---------------------------------------------------------------------------------------


def check_inputs(inputs: Inputs) -> None:
    """Every file readable and well formed, the source named once: raise before writing anything."""
    if (inputs.run_dir is None) == (inputs.prometheus_url is None):
        raise UserError("give exactly one of --run DIR and --prometheus URL")
    if inputs.run_dir is not None:
        root = Path(inputs.run_dir)
        if not root.is_dir():
            raise UserError(f"{root}: not a run directory (no such directory)")
        missing = [n for n in (SAMPLES, INCIDENTS, RUN_JSON) if not (root / n).is_file()]
        if missing:
            raise UserError(f"{root}: missing from the run directory: {', '.join(missing)}")
    for what, path in (
        ("SLO file", inputs.slos),
        ("dashboard", inputs.dashboard),
        ("incidents", inputs.incidents),
        *(("rules file", r) for r in inputs.rules),
    ):
        if path is not None and not Path(path).is_file():
            raise UserError(f"{path}: {what} not found")
    if inputs.slos:
        load_slo_files([inputs.slos], DEFAULT_PERIOD_MS)
    for path in inputs.rules:
        load_rules(path)
    if inputs.dashboard:
        load_dashboard(inputs.dashboard)


# -- notebooks --------------------------------------------------------------------------------------


def _kernel_manager(spec_dir: Path) -> Any:
    """A kernel running this very interpreter (whatever kernels the user has installed)."""
    kdir = spec_dir / "kernels" / KERNEL_NAME
    if not (kdir / "kernel.json").is_file():
        kdir.mkdir(parents=True, exist_ok=True)
        spec = {
            "argv": [
                sys.executable,
                "-m",
                "ipykernel_launcher",
                "-f",
                "{connection_file}",
                "--log-level=ERROR",
            ],
            "display_name": "tron-slo-toolkit (report)",
            "language": "python",
            "env": {
                "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            },
        }
        part = kdir / f".kernel.json.{os.getpid()}.{threading.get_ident()}"
        part.write_text(json.dumps(spec), encoding="utf-8")
        part.replace(kdir / "kernel.json")  # threads may race here: each writes the same spec
    ksm = KernelSpecManager(kernel_dirs=[str(spec_dir / "kernels")])
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)


WARM_UP = '__import__("IPython.display"); __import__("sloanalysis.report.alerts")'
"""Run silently (no history, no execution count) in a report kernel started before its data is
ready: the notebooks' own imports then find these modules loaded."""


def _warm_kernel(km: Any, cwd: Path, timeout_s: float = 60.0) -> None:
    """Start ``km``'s kernel in ``cwd`` (as nbclient would) and import the notebooks' modules in it,
    so that a notebook's start-up overlaps the computation of its data. Any failure here only
    leaves the kernel to nbclient (stopped, it starts a fresh one; errors surface there)."""
    try:
        km.start_kernel(cwd=str(cwd))
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=timeout_s)
            msg_id = kc.execute(WARM_UP, silent=True, store_history=False)
            while kc.get_shell_msg(timeout=timeout_s)["parent_header"].get("msg_id") != msg_id:
                pass
        finally:
            kc.stop_channels()
    except Exception:
        if km.has_kernel:
            km.shutdown_kernel(now=True)


def _cell_error(nb: Any) -> str | None:
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"cell {i}: {output.get('ename')}: {output.get('evalue')}"
    return None


def execute_notebook(
    source: Path,
    output: Path,
    parameters: Mapping[str, Any],
    *,
    spec_dir: Path,
    cwd: Path | None = None,
    timeout_s: float = 600.0,
    km: Any = None,
) -> Any:
    """Execute ``source`` with ``parameters`` injected after its ``parameters`` cell, in ``cwd``
    (default: ``output``'s directory; never the package's); save the executed notebook to
    ``output`` (also on failure) and return it. A cell error raises :class:`ReportError` naming
    the notebook and cell. ``km``: a kernel manager of ``spec_dir``'s kernel, maybe already
    started in ``cwd`` (:func:`_warm_kernel`); it is shut down at the end either way."""
    nb = parameterize_notebook(load_notebook_node(str(source)), dict(parameters))
    if "validation" in parameters and not parameters["validation"]:
        # No validation output was given: a report shows only what its inputs hold (no example run).
        nb.cells = [c for c in nb.cells if VALIDATION_TAG not in c.metadata.get("tags", [])]
    km = km or _kernel_manager(spec_dir)
    client = NotebookClient(
        nb,
        km=km,
        timeout=int(timeout_s),
        startup_timeout=60,
        allow_errors=False,
        record_timing=False,
        resources={"metadata": {"path": str(cwd or output.parent)}},
    )
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        nbformat.write(nb, output)
        where = _cell_error(nb) or str(exc).strip().splitlines()[-1]
        raise ReportError(f"{source.name}: {where}") from None
    finally:
        if km.has_kernel:  # nbclient leaves a kernel manager it did not create running
            km.shutdown_kernel(now=True)
    nb.metadata.pop("widgets", None)  # static export: no widget state to restore
    nbformat.write(nb, output)
    return nb


def export_html(nb: Any, output: Path, title: str) -> None:
    """Standalone HTML: no code, no prompts, figures inline, nothing fetched from the network."""
    exporter = HTMLExporter(
        template_name="report",
        extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    nb.metadata["title"] = title
    body, _ = exporter.from_notebook_node(nb)
    output.write_text(body, encoding="utf-8")


# -- the report -----------------------------------------------------------------------------------


def _fmt_time(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M UTC")


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return _json_safe(value.item())
    if isinstance(value, Path):
        return str(value)
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _has_ground_truth(ctx: Context, bt: Backtest) -> bool:
    """The backtest's own word when it has one, else: incidents given or the run's own."""
    own = getattr(bt, "ground_truth", None)
    return bool(own) if own is not None else ctx.has_ground_truth


def _checks(
    ctx: Context, min_recall: float, min_precision: float, gate_at: gates.GateAt
) -> list[gates.Check]:
    checks = gates.slo_checks((r.row for r in ctx.slo_results), gate_at=gate_at)
    for bt in ctx.backtests:
        checks += gates.alert_checks(
            _records(bt.scores),
            f"alerts:{bt.path}",
            min_recall=min_recall,
            min_precision=min_precision,
            ground_truth=_has_ground_truth(ctx, bt),
        )
    return checks


def _notes(ctx: Context, left_out: Sequence[str]) -> list[str]:
    """One line each: the pages left out and why, the rules files whose alerts are not scored."""
    notes = list(left_out)
    notes += [gates.no_ground_truth_note(bt.path) for bt in ctx.backtests if not _has_ground_truth(ctx, bt)]
    return notes


def _no_data(ctx: Context) -> bool:
    results = ctx.slo_results
    return bool(results) and all(r.range_data_span_ms is None for r in results)


def _alert_summary_rows(bt: Backtest) -> list[dict[str, Any]]:
    return _records(score_table(bt))


def _index_html(title: str, summary_md: str, pages: Sequence[tuple[str, str]]) -> str:
    links = "".join(f'<li><a href="{html.escape(f)}">{html.escape(t)}</a></li>' for f, t in pages)
    body = mistune.html(summary_md)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;"
        "font-size:90%}th{background:#f3f3f3}</style></head>"
        f"<body><ul>{links}</ul>{body}</body></html>\n"
    )


def _abs(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


def notebook_parameters(inputs: Inputs) -> dict[str, Any]:
    """The papermill parameters of every notebook for ``inputs`` (absolute paths: the kernel runs in
    the output directory), headless (no widgets)."""
    return {
        "run_dir": _abs(inputs.run_dir),
        "prometheus_url": inputs.prometheus_url,
        "start": inputs.start,
        "end": inputs.end,
        "slos": _abs(inputs.slos),
        "rules": [str(Path(r).resolve()) for r in inputs.rules],
        "dashboard": _abs(inputs.dashboard),
        "incidents": _abs(inputs.incidents),
        "burn_windows": [format_duration_ms(w) for w in inputs.burn_windows_ms] or None,
        "validation": _abs(inputs.validation),
        "validation_replications": 0,
        "interactive": False,
    }


@dataclass
class _Rendering:
    """The notebooks being executed, when the first one started, and why any was left out."""

    pages: list[Future[Path | None]]
    first_start: float
    left_out: list[str] = field(default_factory=list)


def _start_notebooks(
    pool: ThreadPoolExecutor, ctx: Context, names: Sequence[str], tmp: Path, timeout_s: float
) -> _Rendering:
    """Once the samples are loaded, start every notebook's kernel (importing what the notebooks
    import), then compute each notebook's parts, save them and hand them to its waiting kernel, in
    turn: kernels start and draw on the other core while this process computes. The dashboard page
    is left out (its future gives None) when there is no dashboard or none of its queries has data."""
    params = notebook_parameters(ctx.inputs)
    nb_dir = notebooks_dir()

    def render(name: str, data: Future[Path | None], warm: bool) -> Path | None:
        km = _kernel_manager(tmp / "_kernel")
        try:
            if warm:
                _warm_kernel(km, tmp)
            path = data.result()
            if path is None:
                return None
            nb = execute_notebook(
                nb_dir / f"{name}.ipynb",
                tmp / f"{name}.ipynb",
                {**params, "data": str(path.resolve())},
                spec_dir=tmp / "_kernel",
                cwd=tmp,
                timeout_s=timeout_s,
                km=km,
            )
        finally:
            if km.has_kernel:
                km.shutdown_kernel(now=True)
        page = tmp / f"{name}.html"
        export_html(nb, page, ctx.page_title(name))
        return page

    order = list(NOTEBOOK_PARTS)
    ordered = sorted(names, key=lambda n: order.index(n) if n in order else len(order))
    data: dict[str, Future[Path | None]] = {name: Future() for name in ordered}
    _ = ctx.dataset  # a source that cannot be read fails here, before any kernel starts
    # No kernel is started ahead for a dashboard page that is certain to be left out.
    futures = [
        pool.submit(render, n, data[n], n != "dashboard" or bool(ctx.inputs.dashboard)) for n in ordered
    ]
    left_out: list[str] = []
    first = math.inf
    try:
        for name in ordered:
            parts = NOTEBOOK_PARTS.get(name, ("slo_results", "backtests", "tuning", "dashboard"))
            for part in parts:
                getattr(ctx, part)
            note = ctx.dashboard_note() if name == "dashboard" else None
            if note is not None:
                left_out.append(note)
                data[name].set_result(None)
                continue
            path = tmp / f"_{name}.pkl"
            ctx.save(path, parts)
            first = min(first, time.perf_counter())
            data[name].set_result(path)
    except BaseException:
        for pending in data.values():  # the waiting kernels stop
            if not pending.done():
                pending.set_exception(ReportError("the report's computation failed"))
        raise
    return _Rendering(futures, first, left_out)


def _summary(
    ctx: Context, title: str, checks: list[gates.Check], pages: list[Path], gate: dict[str, Any]
) -> dict[str, Any]:
    return {
        "title": title,
        "source": ctx.source,
        "start": _fmt_time(ctx.start_ms),
        "end": _fmt_time(ctx.end_ms),
        "start_ms": ctx.start_ms,
        "end_ms": ctx.end_ms,
        "gates": {**gate, "failed": len(gates.failed(checks))},
        "slos": [r.row for r in ctx.slo_results],
        "alerts": {bt.path: bt.scores.to_dict("records") for bt in ctx.backtests},
        "checks": [c.as_dict() for c in checks],
        "html": [p.name for p in pages],
        "no_data": _no_data(ctx),
    }


def _write_outputs(
    tmp: Path,
    ctx: Context,
    checks: list[gates.Check],
    pages: list[Path],
    timings: dict[str, Any],
    gate: dict[str, Any],
    notes: Sequence[str] = (),
) -> str:
    """``summary.md``, ``summary.json``, ``junit.xml`` and ``index.html`` into ``tmp``, scratch
    files removed; returns the Markdown summary."""
    title = (
        f"{ctx.page_title('slo_report')} ({ctx.source}, {_fmt_time(ctx.start_ms)} to {_fmt_time(ctx.end_ms)})"
    )
    alert_tables = {bt.path: _alert_summary_rows(bt) for bt in ctx.backtests}
    lines = [f"HTML: {', '.join(p.name for p in pages)}", *(f"- {n}" for n in notes)]
    summary_md = gates.summary_markdown(
        title,
        _records(ctx.slo_table()),
        alert_tables,
        checks,
        notes=lines,
        compliance_table=_records(ctx.compliance_table()),
    )
    summary = {**_summary(ctx, title, checks, pages, gate), "notes": list(notes), "timings": timings}
    (tmp / "summary.md").write_text(summary_md, encoding="utf-8")
    (tmp / "summary.json").write_text(
        json.dumps(_json_safe(summary), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    (tmp / "junit.xml").write_text(gates.junit_xml(checks, time_s=timings["total_s"]), encoding="utf-8")
    (tmp / "index.html").write_text(
        _index_html(title, summary_md, [(p.name, ctx.page_title(p.stem)) for p in pages]),
        encoding="utf-8",
    )
    for leftover in tmp.glob("_*.pkl"):
        leftover.unlink()
    shutil.rmtree(tmp / "_kernel", ignore_errors=True)
    return summary_md


def _staged_output(out: Path, inputs: Inputs) -> StagedDirectory:
    """The report directory under construction (refuses an ``out`` that is not a report or that
    overlaps an input, before any work)."""
    return StagedDirectory(
        out,
        REPORT_MARKER,
        inputs=[inputs.run_dir, inputs.slos, *inputs.rules, inputs.dashboard, inputs.incidents],
        legacy=["index.html", "summary.md", "summary.json", "junit.xml"]
        + [f"{n}.{ext}" for n in NOTEBOOKS for ext in ("html", "ipynb")],
        what="report directory",
    )


def build_report(
    inputs: Inputs,
    out: str | os.PathLike[str],
    *,
    min_recall: float = 0.5,
    min_precision: float = 0.5,
    gate_at: gates.GateAt = "range",
    notebooks: Sequence[str] = NOTEBOOKS,
    parallel: int = 3,
    timeout_s: float = 600.0,
    progress: Callable[[str], object] | None = None,
) -> ReportResult:
    """Compute, execute, export and write the report into ``out`` (replaced atomically).

    ``gate_at``: ``range`` (an SLO missed anywhere in the range fails) or ``end`` (only at the
    range's end; :mod:`~sloanalysis.report.gates`). ``progress`` hears a word after the data is
    computed and after each notebook is rendered."""
    t0 = time.perf_counter()
    check_inputs(inputs)
    nb_dir = notebooks_dir()
    for name in notebooks:
        if not (nb_dir / f"{name}.ipynb").is_file():
            raise UserError(f"{nb_dir / name}.ipynb: notebook not found")
    out_path = Path(out)
    ctx = Context(inputs)
    staged = _staged_output(out_path, inputs)
    pool = ThreadPoolExecutor(max_workers=max(1, min(parallel, len(notebooks))))
    try:
        rendering = _start_notebooks(pool, ctx, notebooks, staged.path, timeout_s)
        checks = _checks(ctx, min_recall, min_precision, gate_at)
        t_compute_done = time.perf_counter()
        if progress is not None:
            progress("data")
        pages = []
        for future in rendering.pages:
            page = future.result()
            if page is None:  # left out
                continue
            pages.append(page)
            if progress is not None:
                progress(page.stem)
        t_done = time.perf_counter()
        pool.shutdown()
        timings: dict[str, Any] = {
            "compute_s": t_compute_done - t0,
            "notebooks_s": t_done - rendering.first_start,
            "after_compute_s": t_done - t_compute_done,
            "compute_parts_s": dict(ctx.timings),
            "total_s": time.perf_counter() - t0,
        }
        gate = {"min_recall": min_recall, "min_precision": min_precision, "gate_at": gate_at}
        notes = _notes(ctx, rendering.left_out)
        summary_md = _write_outputs(staged.path, ctx, checks, pages, timings, gate, notes)
        staged.commit()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        staged.discard()
        raise
    pages_out = [out_path / p.name for p in pages]
    return ReportResult(out_path, checks, summary_md, timings, pages_out, notes, _no_data(ctx))
