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

import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sloanalysis.errors import UserError
from sloanalysis.report import gates
from sloanalysis.report.context import Context, Inputs

__all__ = [
    "NOTEBOOKS",
    "ReportError",
    "ReportResult",
    "build_report",
    "check_inputs",
    "execute_notebook",
    "export_html",
    "notebooks_dir",
]

NOTEBOOKS = ("slo_report", "alert_tuning", "dashboard")
NOTEBOOK_PARTS = {
    "slo_report": ("slo_results",),
    "dashboard": ("dashboard",),
    "alert_tuning": ("backtests", "tuning"),
}
"""What each notebook draws, in the order computed (the report's parts for any other notebook)."""
TITLES = {
    "slo_report": "SLO report",
    "alert_tuning": "Alert backtest and tuning",
    "dashboard": "Grafana dashboard",
}
KERNEL_NAME = "tron-slo-report"
TEMPLATES = Path(__file__).parent / "templates"


class ReportError(UserError):
    """A notebook failed while rendering the report."""


@dataclass
class ReportResult:
    out: Path
    checks: list[gates.Check]
    summary_md: str
    timings: dict[str, Any]
    html: list[Path] = field(default_factory=list)

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
    from sloanalysis.sources.rundir import INCIDENTS, RUN_JSON, SAMPLES

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
    ):
        if path is not None and not Path(path).is_file():
            raise UserError(f"{path}: {what} not found")
    if inputs.slos:
        from sloanalysis.cli.commands.generate_rules import load_all

        load_all([inputs.slos], 30 * 86_400_000)
    for path in inputs.rules:
        if not Path(path).is_file():
            raise UserError(f"{path}: rules file not found")
        from sloanalysis.rules.model import load_rules

        load_rules(path)
    if inputs.dashboard:
        from sloanalysis.dashboard import load_dashboard

        load_dashboard(inputs.dashboard)


# -- notebooks --------------------------------------------------------------------------------------


def _kernel_manager(spec_dir: Path) -> Any:
    """A kernel running this very interpreter (whatever kernels the user has installed)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

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
) -> Any:
    """Execute ``source`` with ``parameters`` injected after its ``parameters`` cell; save the
    executed notebook to ``output`` (also on failure) and return it. A cell error raises
    :class:`ReportError` naming the notebook and cell."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = parameterize_notebook(load_notebook_node(str(source)), dict(parameters))
    km = _kernel_manager(spec_dir)
    client = NotebookClient(
        nb,
        km=km,
        timeout=int(timeout_s),
        startup_timeout=60,
        allow_errors=False,
        record_timing=False,
        resources={"metadata": {"path": str(cwd or source.parent)}},
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
    from nbconvert import HTMLExporter

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
    import pandas as pd

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


def _checks(ctx: Context, min_recall: float, min_precision: float) -> list[gates.Check]:
    checks = gates.slo_checks(r.row for r in ctx.slo_results)
    for bt in ctx.backtests:
        rows = _records(bt.scores)
        checks += gates.alert_checks(
            rows, f"alerts:{bt.path}", min_recall=min_recall, min_precision=min_precision
        )
    return checks


def _replace_dir(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _index_html(title: str, summary_md: str, pages: Sequence[tuple[str, str]]) -> str:
    import html

    import mistune

    links = "".join(f'<li><a href="{html.escape(f)}">{html.escape(t)}</a></li>' for f, t in pages)
    body = mistune.html(summary_md)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;"
        "font-size:90%}th{background:#f3f3f3}</style></head>"
        f"<body><ul>{links}</ul>{body}</body></html>\n"
    )


def build_report(
    inputs: Inputs,
    out: str | os.PathLike[str],
    *,
    min_recall: float = 0.5,
    min_precision: float = 0.5,
    notebooks: Sequence[str] = NOTEBOOKS,
    parallel: int = 3,
    timeout_s: float = 600.0,
) -> ReportResult:
    """Compute, execute, export and write the report into ``out`` (replaced atomically)."""
    t0 = time.perf_counter()
    check_inputs(inputs)
    nb_dir = notebooks_dir()
    for name in notebooks:
        if not (nb_dir / f"{name}.ipynb").is_file():
            raise UserError(f"{nb_dir / name}.ipynb: notebook not found")
    out_path = Path(out)
    ctx = Context(inputs)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.tmp-", dir=out_path.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp's 0700 would outlive the rename
    pool = ThreadPoolExecutor(max_workers=max(1, min(parallel, len(notebooks))))
    try:
        params = {
            "run_dir": str(Path(inputs.run_dir).resolve()) if inputs.run_dir else None,
            "prometheus_url": inputs.prometheus_url,
            "start": inputs.start,
            "end": inputs.end,
            "slos": str(Path(inputs.slos).resolve()) if inputs.slos else None,
            "rules": [str(Path(r).resolve()) for r in inputs.rules],
            "dashboard": str(Path(inputs.dashboard).resolve()) if inputs.dashboard else None,
            "incidents": str(Path(inputs.incidents).resolve()) if inputs.incidents else None,
            "interactive": False,
        }
        first_submit: list[float] = []

        def render(name: str, data: Path) -> Path:
            nb = execute_notebook(
                nb_dir / f"{name}.ipynb",
                tmp / f"{name}.ipynb",
                {**params, "data": str(data.resolve())},
                spec_dir=tmp / "_kernel",
                timeout_s=timeout_s,
            )
            page = tmp / f"{name}.html"
            export_html(nb, page, TITLES.get(name, name))
            return page

        # Each notebook starts as soon as its parts are computed: its kernel starts and draws on the
        # other core while this process computes the next parts.
        futures = []
        for name in sorted(
            notebooks, key=lambda n: list(NOTEBOOK_PARTS).index(n) if n in NOTEBOOK_PARTS else 99
        ):
            parts = NOTEBOOK_PARTS.get(name, ("slo_results", "backtests", "tuning", "dashboard"))
            for part in parts:
                getattr(ctx, part)
            data = tmp / f"_{name}.pkl"
            ctx.save(data, parts)
            first_submit.append(time.perf_counter())
            futures.append(pool.submit(render, name, data))
        checks = _checks(ctx, min_recall, min_precision)
        t_compute_done = time.perf_counter()
        pages = [f.result() for f in futures]
        t_done = time.perf_counter()
        pool.shutdown()

        title = f"SLO report: {ctx.source}, {_fmt_time(ctx.start_ms)} to {_fmt_time(ctx.end_ms)}"
        alert_tables = {bt.path: _alert_summary_rows(bt) for bt in ctx.backtests}
        notes = [f"HTML: {', '.join(p.name for p in pages)}"]
        summary_md = gates.summary_markdown(
            title, _records(ctx.slo_table()), alert_tables, checks, notes=notes
        )
        timings: dict[str, Any] = {
            "compute_s": t_compute_done - t0,
            "notebooks_s": t_done - first_submit[0],
            "after_compute_s": t_done - t_compute_done,
            "compute_parts_s": dict(ctx.timings),
        }
        timings["total_s"] = time.perf_counter() - t0
        summary = {
            "title": title,
            "source": ctx.source,
            "start": _fmt_time(ctx.start_ms),
            "end": _fmt_time(ctx.end_ms),
            "start_ms": ctx.start_ms,
            "end_ms": ctx.end_ms,
            "gates": {
                "min_recall": min_recall,
                "min_precision": min_precision,
                "failed": len(gates.failed(checks)),
            },
            "slos": [r.row for r in ctx.slo_results],
            "alerts": {bt.path: bt.scores.to_dict("records") for bt in ctx.backtests},
            "checks": [c.as_dict() for c in checks],
            "html": [p.name for p in pages],
            "timings": timings,
        }
        (tmp / "summary.md").write_text(summary_md, encoding="utf-8")
        (tmp / "summary.json").write_text(
            json.dumps(_json_safe(summary), indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
        (tmp / "junit.xml").write_text(gates.junit_xml(checks, time_s=timings["total_s"]), encoding="utf-8")
        (tmp / "index.html").write_text(
            _index_html(title, summary_md, [(p.name, TITLES.get(p.stem, p.stem)) for p in pages]),
            encoding="utf-8",
        )
        for leftover in tmp.glob("_*.pkl"):
            leftover.unlink()
        shutil.rmtree(tmp / "_kernel", ignore_errors=True)
        _replace_dir(tmp, out_path)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ReportResult(out_path, checks, summary_md, timings, [out_path / p.name for p in pages])


def _alert_summary_rows(bt: Any) -> list[dict[str, str]]:
    from sloanalysis.report.alerts import score_table

    return _records(score_table(bt))


def _records(frame: Any) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]
