"""``sloanalysis report (--run DIR | --prometheus URL --start --end) --out reports/NAME``.

Renders the notebooks headless into standalone HTML plus ``summary.md``, ``summary.json`` and
``junit.xml`` (:mod:`sloanalysis.report.build`); prints the summary table.

Inputs: with ``--run`` (a run directory of the TRON simulator), ``--slos`` and ``--dashboard``
default to the project's own TRON files (found from the working directory upward); with
``--prometheus`` nothing defaults: only the files given are used (at least ``--slos`` or
``--rules``).

Exit status: 1 when a gate fails (an SLO missed anywhere in the range, or at its end with
``--gate-at end``; an SLO without data or with low coverage; an alert's recall or precision below
``--min-recall``/``--min-precision``; alert gates are n/a, never failed, without ground truth),
0 otherwise, 2 on bad input or when no SLO has a single sample in the range (the report is still
written).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sloanalysis.cli.app import add_quiet_argument, add_timeout_argument, progress_bar
from sloanalysis.errors import UserError
from sloanalysis.formatting import render
from sloanalysis.report.context import find_project
from sloanalysis.report.gates import GATE_AT
from sloanalysis.report.model import PROJECT_FILES, Inputs

NAME = "report"
HELP = "Render the SLO, alert-backtest and dashboard notebooks into an HTML report with CI gates."

DEFAULT_SLOS = PROJECT_FILES["slos"][0]
DEFAULT_DASHBOARD = PROJECT_FILES["dashboard"][0]
NOTEBOOK_NAMES = ("slo_report", "alert_tuning", "dashboard")  # build.NOTEBOOKS, without importing nbconvert


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", metavar="DIR", help="a simulator run directory")
    source.add_argument("--prometheus", metavar="URL", help="a Prometheus-compatible server")
    parser.add_argument("--start", help="start: RFC 3339, unix seconds or a duration before --end")
    parser.add_argument("--end", help="end: RFC 3339, unix seconds or 'now' (default: the run's end, or now)")
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="output directory (replaced), e.g. reports/NAME"
    )
    parser.add_argument(
        "--slos", metavar="FILE", help=f"SLO file (with --run, default the project's {DEFAULT_SLOS})"
    )
    parser.add_argument(
        "--rules", action="append", default=[], metavar="FILE", help="alerting rules to backtest (repeatable)"
    )
    parser.add_argument(
        "--dashboard",
        metavar="FILE",
        help=f"Grafana dashboard (with --run, default the project's {DEFAULT_DASHBOARD}); its page is "
        "left out when none of its queries has data",
    )
    parser.add_argument("--incidents", metavar="CSV", help="ground-truth incidents (default: the run's own)")
    parser.add_argument(
        "--validation",
        metavar="PATH",
        help="a `tronsim validate-alerts` output (validation.json or its directory) for the alert page",
    )
    parser.add_argument(
        "--min-recall", type=float, default=0.5, help="gate: minimum recall per alert (default 0.5)"
    )
    parser.add_argument(
        "--min-precision", type=float, default=0.5, help="gate: minimum precision per alert (default 0.5)"
    )
    parser.add_argument(
        "--gate-at",
        choices=GATE_AT,
        default="range",
        help="SLO gate: 'range' fails an SLO missed in any period (or its worst rolling window) of the "
        "range, 'end' only one missed at the range's end (default range)",
    )
    add_timeout_argument(parser)
    add_quiet_argument(parser)
    parser.add_argument(
        "--notebook",
        action="append",
        choices=NOTEBOOK_NAMES,
        metavar="NAME",
        help=f"render only this notebook (repeatable; default all: {', '.join(NOTEBOOK_NAMES)})",
    )
    parser.add_argument(
        "--format", choices=("table", "json"), default="table", help="what to print (default table)"
    )


def _default_path(value: str | None, default: str, run: str | None) -> str | None:
    """The path given; without one and with a run directory, the project's own file (in the working
    directory, else found upward: :func:`~sloanalysis.report.context.find_project`), if any.
    A Prometheus source gets no default: its service is the user's, not the project's."""
    if value or not run:
        return value or None
    if Path(default).exists():
        return default
    root = find_project()
    return str(root / default) if root is not None and (root / default).exists() else None


def _validation_path(value: str | None) -> str | None:
    """The validation.json of ``--validation`` (the file or its directory), checked to exist."""
    if not value:
        return None
    path = Path(value)
    doc = path / "validation.json" if path.is_dir() else path
    if not doc.is_file():
        raise UserError(f"--validation {value}: no such file (expected validation.json or its directory)")
    return str(doc)


def inputs_from_args(args: argparse.Namespace) -> Inputs:
    """The report's inputs from the arguments: checked, with the project's files as defaults for
    a run directory only."""
    for flag in ("min_recall", "min_precision"):
        value = getattr(args, flag)
        if not 0.0 <= value <= 1.0:
            raise UserError(f"--{flag.replace('_', '-')} must be within 0..1, got {value}")
    if args.prometheus and not args.start:
        raise UserError("--prometheus needs --start (the range to report on)")
    if args.prometheus and not (args.slos or args.rules):
        raise UserError("--prometheus needs --slos FILE or --rules FILE (nothing defaults for a server)")
    return Inputs(
        run_dir=args.run,
        prometheus_url=args.prometheus,
        start=args.start,
        end=args.end,
        slos=_default_path(args.slos, DEFAULT_SLOS, args.run),
        rules=tuple(args.rules),
        dashboard=_default_path(args.dashboard, DEFAULT_DASHBOARD, args.run),
        incidents=args.incidents,
        timeout_s=args.timeout,
        validation=_validation_path(args.validation),
    )


def run(args: argparse.Namespace) -> int:
    from sloanalysis.report.build import build_report  # notebooks and nbconvert: only when reporting

    inputs = inputs_from_args(args)
    notebooks = tuple(dict.fromkeys(args.notebook or NOTEBOOK_NAMES))
    bar = progress_bar(len(notebooks) + 1, "step", "report", quiet=args.quiet)
    try:
        result = build_report(
            inputs,
            args.out,
            min_recall=args.min_recall,
            min_precision=args.min_precision,
            gate_at=args.gate_at,
            notebooks=notebooks,
            progress=None if bar is None else lambda what: (bar.set_postfix_str(what), bar.update()),
        )
    finally:
        if bar is not None:
            bar.close()
    index = Path(args.out) / "index.html"
    if args.format == "json":
        data = json.loads((Path(args.out) / "summary.json").read_text(encoding="utf-8"))
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        sys.stdout.write(result.summary_md + "\n")
        rows = [
            {"gate": c.suite, "name": c.name, "status": c.status, "message": c.message}
            for c in result.checks
            if c.status == "failed"
        ]
        if rows:
            sys.stdout.write(render(rows, "table", columns=("gate", "name", "message")))
        t = result.timings
        sys.stdout.write(
            f"\nreport: {index.resolve()}\n"
            f"time: {t['total_s']:.1f} s (computation {t['compute_s']:.1f} s; notebook execution "
            f"{t['notebooks_s']:.1f} s, of which {t['after_compute_s']:.1f} s after the computation)\n"
        )
    if result.no_data:
        summary = json.loads((Path(args.out) / "summary.json").read_text(encoding="utf-8"))
        raise UserError(
            f"no SLO has a sample between {summary['start']} and {summary['end']} "
            f"(wrong range or server?); report written to {index.resolve()}"
        )
    return 1 if result.failed else 0
