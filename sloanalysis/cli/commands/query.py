"""``sloanalysis query``: evaluate a PromQL expression over a run directory or a real Prometheus.

After a range query, every vector selector of the expression that reads no sample over the range
gets a warning on stderr (one line each; the exit status stays 0) saying where its data, or its
metric's, is: ``query: warning: up{job="x"} matches no series between A and B; "up" has data
from C to D`` (or ``no series named "up" exists``). With --prometheus that costs one request per
selector, and three more per selector without data
(:func:`sloanalysis.query.selectors_without_data`).

Native-histogram samples (Prometheus 3) get a ``histogram`` column after ``value`` (whose value is
empty/NaN/null there): in the table Prometheus's own text, ``{count:4, sum:5, (0.5,1]:1, (1,2]:3}``;
in CSV the API's JSON object as text; in JSON the API's object itself,
``{"count": "4", "sum": "5", "buckets": [[0, "0.5", "1", "1"], ...]}``
(:mod:`sloanalysis.api_json`). ``--format api`` prints the ``data`` object of Prometheus's HTTP API
(``{"resultType": "vector", "result": [{"metric": {...}, "value": [t, "v"]}, ...]}``, with
``histogram``/``histograms`` for native histograms).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta

import pandas as pd

from sloanalysis.api_json import api_data, histogram_text, histogram_to_api
from sloanalysis.cli.app import add_timeout_argument
from sloanalysis.errors import UserError
from sloanalysis.nativehist import FloatHistogram
from sloanalysis.query import (
    MAX_EMBEDDED_STEPS,
    Backend,
    EmbeddedBackend,
    PrometheusBackend,
    SelectorHint,
    SpanBackend,
    parse_duration,
    parse_time,
    selectors_without_data,
)

NAME = "query"
HELP = "evaluate a PromQL expression over a run directory (embedded engine) or a Prometheus server"

_LONG_RANGE_MS = 86_400_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "args",
        nargs="+",
        metavar="[SOURCE] EXPR",
        help="a run directory and a PromQL expression (just the expression with --prometheus)",
    )
    parser.add_argument(
        "--prometheus", metavar="URL", help="query this Prometheus instead of a run directory"
    )
    parser.add_argument(
        "--start",
        help="RFC 3339, unix seconds, or a duration before the end such as 30m or 7d "
        "(default: the run's first sample; with --prometheus: 1h before --end)",
    )
    parser.add_argument(
        "--end",
        help="as --start; durations count back from the data's end (default: the run's last sample, or now)",
    )
    parser.add_argument(
        "--step", help="evaluation step such as 15s or 1m (default: 15s, or 60s for ranges over a day)"
    )
    parser.add_argument(
        "--at", metavar="TIME", help="evaluate once, as an instant query at TIME (as --start)"
    )
    parser.add_argument(
        "--format",
        choices=("table", "csv", "json", "api"),
        default="table",
        help="output format (api: the data object of Prometheus's HTTP API)",
    )
    add_timeout_argument(parser)
    parser.add_argument(
        "--prometheus2", action="store_true", help="embedded engine: Prometheus 2.x range boundaries"
    )
    parser.add_argument(
        "--enable-feature",
        action="append",
        choices=("promql-delayed-name-removal",),
        default=[],
        metavar="NAME",
        help="embedded engine: a Prometheus 3 feature flag (promql-delayed-name-removal: keep __name__ "
        "until the end of the evaluation, so label_replace and `by (__name__)` can use it)",
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=MAX_EMBEDDED_STEPS,
        metavar="N",
        help=f"embedded engine: most steps per series in one range query (default {MAX_EMBEDDED_STEPS:,}; "
        "a Prometheus server is asked in requests of at most 11,000)",
    )


def run(args: argparse.Namespace) -> int:
    positional: list[str] = list(args.args)
    backend: Backend
    if args.prometheus:
        if len(positional) != 1:
            raise UserError("with --prometheus give only the expression (no run directory)")
        expr = positional[0]
        with PrometheusBackend(args.prometheus, timeout=args.timeout) as prom:
            now = (datetime.now(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
            frame, span = _evaluate(prom, expr, args, first_ms=None, last_ms=now)
            _print(frame, args.format, instant=args.at is not None)
            _warn_empty_selectors(prom, expr, span)
        return 0
    else:
        if len(positional) != 2:
            raise UserError(
                "expected a run directory and an expression (or --prometheus URL and an expression)"
            )
        from sloanalysis.sources.rundir import load_run

        source, expr = positional
        run_dir = load_run(source)
        span = run_dir.store.time_range()
        if span is None:
            raise UserError(f"{run_dir.path}: the run has no samples")
        if args.max_steps < 1:
            raise UserError("--max-steps must be at least 1")
        embedded = EmbeddedBackend(
            run_dir.store,
            prometheus2=args.prometheus2,
            max_steps=args.max_steps,
            delayed_name_removal="promql-delayed-name-removal" in args.enable_feature,
        )
        backend = embedded
        frame, evaluated = _evaluate(backend, expr, args, first_ms=span[0], last_ms=span[1])
        _print(frame, args.format, instant=args.at is not None)
        _warn_empty_selectors(embedded, expr, evaluated)
    return 0


def _instant(ms: int) -> str:
    ts = pd.Timestamp(ms, unit="ms", tz="UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ" if ts.second or ts.microsecond else "%Y-%m-%dT%H:%MZ")


def hint_message(hint: SelectorHint, start_ms: int, end_ms: int) -> str:
    """``query: warning: SEL matches no series between A and B; ...where its data is``."""
    between = f"between {_instant(start_ms)} and {_instant(end_ms)}"
    head = f"query: warning: {hint.selector} matches no series {between}"
    if hint.span_ms is not None:
        a, b = hint.span_ms
        who = json.dumps(hint.metric) if hint.selector == hint.metric else "it"
        return f"{head}; {who} has data from {_instant(a)} to {_instant(b)}"
    if hint.metric is None:
        return f"{head}; no series it selects exists"
    if hint.metric_span_ms is None:
        return f"{head}; no series named {json.dumps(hint.metric)} exists"
    a, b = hint.metric_span_ms
    return f"{head}; {json.dumps(hint.metric)} has data from {_instant(a)} to {_instant(b)}"


def _warn_empty_selectors(backend: SpanBackend, expr: str, evaluated: tuple[int, int] | None) -> None:
    """One warning per selector that read nothing (range queries only: ``evaluated`` None skips)."""
    if evaluated is None:
        return
    start, end = evaluated
    for hint in selectors_without_data(backend, expr, start, end):
        print(hint_message(hint, start, end), file=sys.stderr)


def _evaluate(
    backend: Backend, expr: str, args: argparse.Namespace, *, first_ms: int | None, last_ms: int
) -> tuple[pd.DataFrame, tuple[int, int] | None]:
    """The result, and the range evaluated (None for an instant query)."""
    if args.at is not None:
        if args.start is not None or args.end is not None or args.step is not None:
            raise UserError("--at makes an instant query; drop --start/--end/--step")
        return backend.query(expr, parse_time(args.at, reference_ms=last_ms)), None
    end = last_ms if args.end is None else parse_time(args.end, reference_ms=last_ms)
    if args.start is not None:
        start = parse_time(args.start, reference_ms=end)
    else:
        start = first_ms if first_ms is not None else end - 3_600_000
    if args.step is not None:
        step = parse_duration(args.step)
    else:
        step = 60_000 if end - start > _LONG_RANGE_MS else 15_000
    return backend.query_range(expr, start, end, step), (start, end)


def _histogram_cell(h: FloatHistogram | None, fmt: str) -> object:
    if h is None:
        return None if fmt == "json" else ""
    if fmt == "json":
        return histogram_to_api(h)
    if fmt == "csv":
        return json.dumps(histogram_to_api(h), separators=(",", ":"))
    return histogram_text(h)


def _print(frame: pd.DataFrame, fmt: str, *, instant: bool = False) -> None:
    if fmt == "api":
        print(json.dumps(api_data(frame, instant=instant), allow_nan=False))
        return
    out = frame.copy()
    if "histogram" in out.columns:
        cells = [_histogram_cell(h, fmt) for h in out["histogram"]]
        out["histogram"] = pd.Series(cells, index=out.index, dtype=object)
    stamps = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out["timestamp"] = stamps.str.replace(r"\.?0+Z$", "Z", regex=True)  # 12:00:00Z, 12:00:00.5Z
    if fmt == "csv":
        out.to_csv(sys.stdout, index=False, float_format=lambda v: repr(float(v)))
    elif fmt == "json":
        sys.stdout.write(out.to_json(orient="records", double_precision=15) + "\n")
    elif out.empty:
        print("(no data)")
    else:
        print(out.to_string(index=False, float_format=lambda v: repr(float(v))))
