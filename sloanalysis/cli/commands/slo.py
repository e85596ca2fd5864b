"""``sloanalysis slo SLOS --run DIR | --prometheus URL``: the SLO table.

For every SLO (:func:`sloanalysis.slo.status.slo_status`): objective, the window evaluated (the
period, or less when the data or --start begin later), the SLI, met or not, error budget remaining
(ratio and events or minutes), the current burn rate (last hour) and the time to exhaustion at that
rate. A window without traffic shows its SLI as ``no data`` and spends no budget; a window without
any sample shows ``no data`` throughout (:mod:`sloanalysis.slo.status` documents the states).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from sloanalysis.cli.app import add_timeout_argument
from sloanalysis.durations import format_duration_human, parse_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.formatting import FORMATS, fmt_number, fmt_percent, render
from sloanalysis.query import EmbeddedBackend, PrometheusBackend, parse_time
from sloanalysis.slo.budget import QueryBackend
from sloanalysis.slo.spec import load_slo_files
from sloanalysis.slo.status import slo_status
from sloanalysis.sources.rundir import load_run

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
    add_timeout_argument(parser)
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
    if args.run:
        run = load_run(args.run)
        span = run.store.time_range()
        if span is None:
            raise UserError(f"{args.run}: the run has no samples")
        return EmbeddedBackend(run.store), span[0], span[1]
    return PrometheusBackend(args.prometheus, timeout=args.timeout), None, int(time.time() * 1000)


def _amount(row: dict[str, Any]) -> str | None:
    x = row["budget_remaining"]
    return None if x is None else f"{fmt_number(x)} {'min' if row['budget_unit'] == 'minutes' else 'events'}"


def _or_no_data(fmt: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda x: "no data" if x is None else fmt(x)


FORMATTERS: dict[str, Callable[[Any], str]] = {
    "objective": lambda x: fmt_percent(x, 6),
    "period_ms": format_duration_human,
    "window_ms": format_duration_human,
    "sli": _or_no_data(lambda x: fmt_percent(x, 6)),
    "met": _or_no_data(lambda x: "yes" if x else "NO"),
    "budget_remaining_ratio": _or_no_data(lambda x: fmt_percent(x, 4)),
    "budget_remaining": _or_no_data(str),
    "burn_rate_current": _or_no_data(fmt_number),
    "time_to_exhaustion_ms": _or_no_data(format_duration_human),
}


def run(args: argparse.Namespace) -> int:
    period = parse_duration_ms(args.default_period, what="--default-period")
    if period <= 0:
        raise UserError("--default-period must be positive")
    slos = load_slo_files(args.slos, period)
    backend, data_start, data_end = _backend(args)
    end = parse_time(args.end, reference_ms=data_end) if args.end else data_end
    start_arg = parse_time(args.start, reference_ms=end) if args.start else None
    rows = []
    for slo in slos:
        earliest = start_arg if start_arg is not None else data_start
        start = end - slo.period_ms if earliest is None else max(earliest, end - slo.period_ms)
        if start >= end:
            raise UserError(f"--start must be before --end ({start} >= {end} ms)")
        rows.append(slo_status(slo, backend, start, end).row())
    if args.format == "table":
        for row in rows:
            row["budget_remaining"] = _amount(row)
        sys.stdout.write(render(rows, "table", columns=COLUMNS, headers=HEADERS, formatters=FORMATTERS))
    else:
        sys.stdout.write(render(rows, args.format))
    return 0
