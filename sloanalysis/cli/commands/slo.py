"""``sloanalysis slo SLOS --run DIR | --prometheus URL``: the SLO table.

For every SLO (:func:`sloanalysis.slo.status.slo_status`): objective, the window evaluated (the
period, or less when the data or --start begin later; for a calendar SLO the current calendar
period from its start, named in the period column), the SLI, met or not, error budget remaining
(ratio and events or minutes), the current burn rate (last hour) and the time to exhaustion at that
rate (for a calendar SLO at most until its period ends, where the budget resets: "not before the
period ends"), the coverage (share of the window's steps with SLI data) and the state (met, missed, no
data, low coverage: :mod:`sloanalysis.slo.status` documents them).

No data is never success. An SLO in state ``no data`` or ``low coverage`` (coverage under
``--min-coverage``, default 0.9) is an error, told on stderr in one line per SLO with where its
series do have data. Exit status: 0 when every SLO has data (met or missed: this command reports,
the report's gates judge), 1 when some SLO has no data or low coverage, 2 when no SLO has any data
at all (or on bad input).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from sloanalysis.cli.app import add_timeout_argument
from sloanalysis.durations import format_duration_human, format_time_left, parse_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.formatting import FORMATS, fmt_number, fmt_percent, render
from sloanalysis.query import EmbeddedBackend, PrometheusBackend, parse_time
from sloanalysis.report.wording import time_left
from sloanalysis.slo.budget import QueryBackend
from sloanalysis.slo.formats import load_slo_files
from sloanalysis.slo.status import MIN_COVERAGE, SLOStatus, evaluation_start, slo_status
from sloanalysis.sources.rundir import load_run

NAME = "slo"
HELP = "Evaluate SLOs over a run directory or a Prometheus server: SLI, met or not, error budget left."
EXIT_STATUS = """\
exit status: 0 every SLO has data over its window (met or missed), 1 some SLO has no data or
coverage under --min-coverage (one line each on stderr, with where its data is), 2 no SLO has
any data at all, or bad input."""

COLUMNS = (
    "slo",
    "objective",
    "period_ms",
    "window_ms",
    "sli",
    "coverage",
    "state",
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
    parser.add_argument(
        "--min-coverage",
        type=float,
        default=MIN_COVERAGE,
        metavar="F",
        help=f"least share of the window's steps with SLI data, 0..1 (default {MIN_COVERAGE:g}); "
        "under it the SLO is an error",
    )
    parser.add_argument(
        "--step",
        default="1m",
        metavar="DUR",
        help="resolution of coverage and per-step SLIs (default 1m; at least two scrape intervals)",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    parser.epilog = f"{parser.epilog}\n\n{EXIT_STATUS}" if parser.epilog else EXIT_STATUS


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
    "period_ms": lambda x: x if isinstance(x, str) else format_duration_human(x),
    "window_ms": format_duration_human,
    "sli": _or_no_data(lambda x: fmt_percent(x, 6)),
    "coverage": _or_no_data(lambda x: fmt_percent(x, 4)),
    "state": lambda x: "MISSED" if x == "missed" else str(x),
    "budget_remaining_ratio": _or_no_data(lambda x: fmt_percent(x, 4)),
    "budget_remaining": _or_no_data(str),
    "burn_rate_current": _or_no_data(fmt_number),
    "time_to_exhaustion_ms": lambda x: x if isinstance(x, str) else _or_no_data(format_time_left)(x),
}


def run(args: argparse.Namespace) -> int:
    period = parse_duration_ms(args.default_period, what="--default-period")
    if period <= 0:
        raise UserError("--default-period must be positive")
    if not 0.0 <= args.min_coverage <= 1.0:  # NaN fails this too
        raise UserError(f"--min-coverage must be between 0 and 1, got {args.min_coverage!r}")
    step = parse_duration_ms(args.step, what="--step")
    if step <= 0:
        raise UserError("--step must be positive")
    slos = load_slo_files(args.slos, period)
    backend, data_start, data_end = _backend(args)
    end = parse_time(args.end, reference_ms=data_end) if args.end else data_end
    start_arg = parse_time(args.start, reference_ms=end) if args.start else None
    statuses = []
    for slo in slos:
        earliest = start_arg if start_arg is not None else data_start
        start = evaluation_start(slo, end, earliest)  # a calendar SLO: its period's start
        if start >= end:
            raise UserError(f"--start must be before --end ({start} >= {end} ms)")
        statuses.append(slo_status(slo, backend, start, end, step, min_coverage=args.min_coverage))
    rows = [s.row() for s in statuses]
    if args.format == "table":
        for row in rows:
            row["budget_remaining"] = _amount(row)
            if row.get("period_label"):  # a calendar SLO: the period by name
                row["period_ms"] = row["period_label"]
            row["time_to_exhaustion_ms"] = time_left(row)  # capped at a calendar period's end
        sys.stdout.write(render(rows, "table", columns=COLUMNS, headers=HEADERS, formatters=FORMATTERS))
    else:
        sys.stdout.write(render(rows, args.format))
    return _report_missing_data(statuses)


def _instant(ms: int) -> str:
    """``2026-01-06T10:00Z`` (seconds only when not whole minutes)."""
    ts = pd.Timestamp(ms, unit="ms", tz="UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ" if ts.second or ts.microsecond else "%Y-%m-%dT%H:%MZ")


def missing_data_message(status: SLOStatus) -> str | None:
    """One line for an SLO without data or with low coverage (None for met or missed)."""
    state = status.state
    if state not in ("no data", "low coverage"):
        return None
    where = f"{_instant(status.start_ms)} .. {_instant(status.end_ms)}"
    if state == "no data" and status.has_samples:
        what = f"no traffic in {where} (its series have samples but count no events)"
    elif state == "no data":
        what = f"no data in {where}"
    else:
        cover, least = fmt_percent(status.coverage or 0.0, 4), fmt_percent(status.min_coverage, 4)
        what = f"low coverage in {where}: {cover} of the steps have data, under {least}"
    span = status.data_span_ms
    if span is None:
        tail = "its queries select no series at all"
    else:
        tail = f"its series have data from {_instant(span[0])} to {_instant(span[1])}"
    return f"slo {status.slo.name}: {what}; {tail}"


def _report_missing_data(statuses: list[SLOStatus]) -> int:
    """The stderr lines and the exit status (0, 1, or 2 when no SLO has any data)."""
    lines = [m for m in (missing_data_message(s) for s in statuses) if m is not None]
    for line in lines:
        print(line, file=sys.stderr)
    if statuses and all(s.state == "no data" and not s.has_samples for s in statuses):
        return 2
    return 1 if lines else 0
