"""``sloanalysis slo SLOS --run DIR | --prometheus URL``: the SLO table.

For every SLO: objective, the window evaluated (the period, or less when the
data or --start begin later),
the SLI, met or not, error budget remaining (ratio and events or minutes), the current burn
rate (last hour) and the time to exhaustion at that rate. Zero traffic shows as ``no data`` and
spends no budget (:mod:`sloanalysis.slo.budget` documents the policy).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from sloanalysis.cli.commands.generate_rules import load_all
from sloanalysis.durations import parse_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.formatting import FORMATS, fmt_duration_ms, fmt_percent, render
from sloanalysis.slo.budget import QueryBackend, error_budget, measure_window, summarise

CURRENT_MS = 3_600_000
"""The trailing window whose burn rate is "current" for the time to exhaustion."""

NAME = "slo"
HELP = "Evaluate SLOs over a run directory or a Prometheus server: SLI, met or not, error budget left."

COLUMNS = (
    "slo",
    "objective",
    "period_ms",
    "window_ms",
    "sli",
    "met",
    "budget_remaining_ratio",
    "budget_remaining",
    "burn_rate_current",
    "time_to_exhaustion_ms",
)
HEADERS = {
    "period_ms": "period",
    "window_ms": "window",
    "budget_remaining_ratio": "budget left",
    "budget_remaining": "left (amount)",
    "burn_rate_current": "burn (1h)",
    "time_to_exhaustion_ms": "exhausted in",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("slos", nargs="+", metavar="SLOS", help="SLO files")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", metavar="DIR", help="a simulator run directory (embedded PromQL engine)")
    source.add_argument("--prometheus", metavar="URL", help="a Prometheus-compatible server")
    parser.add_argument(
        "--start", help="start: RFC 3339, unix seconds or a duration before the end (default: end - period)"
    )
    parser.add_argument("--end", help="end: RFC 3339, unix seconds, 'now' (default: the data's end, or now)")
    parser.add_argument(
        "--default-period", default="30d", metavar="DUR", help="period of Sloth SLOs (default 30d)"
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")


def _backend(args: argparse.Namespace) -> tuple[QueryBackend, int | None, int]:
    """The backend, the data's start (ms, when known) and the default end: the run's last
    sample, or now for a server."""
    from sloanalysis.query import EmbeddedBackend, PrometheusBackend

    if args.run:
        from sloanalysis.sources.rundir import load_run

        run = load_run(args.run)
        span = run.store.time_range()
        if span is None:
            raise UserError(f"{args.run}: the run has no samples")
        return EmbeddedBackend(run.store), span[0], span[1]
    return PrometheusBackend(args.prometheus), None, int(time.time() * 1000)


def _amount(row: dict[str, Any]) -> str:
    x = row["budget_remaining"]
    return f"{x:.4g} {'min' if row['budget_unit'] == 'minutes' else 'events'}"


def run(args: argparse.Namespace) -> int:
    from sloanalysis.query import parse_time

    period = parse_duration_ms(args.default_period, what="--default-period")
    if period <= 0:
        raise UserError("--default-period must be positive")
    slos = load_all(args.slos, period)
    backend, data_start, data_end = _backend(args)
    end = parse_time(args.end, reference_ms=data_end) if args.end else data_end
    start_arg = parse_time(args.start, reference_ms=end) if args.start else None
    rows = []
    for slo in slos:
        start = end - slo.period_ms if start_arg is None else max(start_arg, end - slo.period_ms)
        if start_arg is None and data_start is not None:
            start = max(start, data_start)
        if start >= end:
            raise UserError(f"--start must be before --end ({start} >= {end} ms)")
        frame = measure_window(slo, backend, start, end)
        current = measure_window(slo, backend, max(start, end - CURRENT_MS), end)
        burn_now = error_budget(current, slo.objective, slo.budget_unit).burn_rate
        rows.append(summarise(slo, frame, end - start, burn_now))
    formatters = {
        "objective": lambda x: fmt_percent(x, 6),
        "period_ms": fmt_duration_ms,
        "window_ms": fmt_duration_ms,
        "sli": lambda x: "no data" if x is None else fmt_percent(x, 6),
        "met": lambda x: "no data" if x is None else ("yes" if x else "NO"),
        "budget_remaining_ratio": lambda x: fmt_percent(x, 4),
        "burn_rate_current": lambda x: f"{x:.4g}",
        "time_to_exhaustion_ms": fmt_duration_ms,
    }
    if args.format == "table":
        for row in rows:
            row["budget_remaining"] = _amount(row)
        sys.stdout.write(render(rows, "table", columns=COLUMNS, headers=HEADERS, formatters=formatters))
    else:
        sys.stdout.write(render(rows, args.format))
    return 0
