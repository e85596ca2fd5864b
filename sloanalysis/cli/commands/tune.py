"""``sloanalysis tune``: evaluate a grid of settings of one alert over runs or a Prometheus range.

Argument parsing and printing over :func:`sloanalysis.rules.tuning.grid_search`: every grid point
rewrites the alert (a threshold, or a burn-rate alert's factor and windows, and ``for``),
evaluates all rule files over every run (or over ``--prometheus URL --start --end``, fetched once)
and scores that alert against the ground truth; the table lists every point and the Pareto front
of mean detection time vs false positives per day (recall first). Page and ticket rules of one
name are tuned apart (``--severity``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import pandas as pd

from sloanalysis.cli.commands.backtest import (
    SCORE_FORMATTERS,
    add_rule_arguments,
    budget_sli,
    eval_settings,
    ground_truth,
    prometheus_span,
    time_arg,
)
from sloanalysis.durations import format_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.formatting import fmt_number, render
from sloanalysis.rules.backtest import alert_identities, evaluation_span, fetch_rule_inputs
from sloanalysis.rules.model import RuleGroup, load_rule_files
from sloanalysis.rules.scoring import BudgetSLI
from sloanalysis.rules.tuning import MAX_GRID_POINTS, grid_points, grid_search, parse_grid, rewrite_alert
from sloanalysis.sources.rundir import load_run
from sloanalysis.store import SeriesStore

NAME = "tune"
HELP = (
    "Grid-search an alert's threshold (or burn-rate factor and windows) and 'for' over runs or a "
    "Prometheus range; Pareto front of detection vs false positives."
)

SETTING_COLUMNS = ("threshold", "factor", "windows", "for", "keep_firing_for")
STAT_COLUMNS = (
    "incidents",
    "detected",
    "recall",
    "detection_ms",
    "firings",
    "false_positives",
    "fp_per_day",
    "pareto",
)

Runs = list[tuple[SeriesStore, pd.DataFrame | None, int, int]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_rule_arguments(parser, many_runs=True)
    parser.add_argument("--alert", required=True, metavar="NAME", help="alert to tune")
    parser.add_argument(
        "--severity", metavar="SEV", help="which rule of that name, by labels.severity (page, ticket, ...)"
    )
    parser.add_argument(
        "--pair",
        type=int,
        default=1,
        metavar="N",
        help="burn-rate alerts: which long/short window pair (in the order written) to tune (default 1)",
    )
    parser.add_argument(
        "--grid",
        required=True,
        metavar="SPEC",
        help="e.g. 'threshold=5,10,20;for=0m,2m,5m', or for a burn-rate alert "
        "'factor=6,14.4;windows=1h/5m,6h/30m' (long/short)",
    )
    parser.add_argument(
        "--max-points",
        type=int,
        default=MAX_GRID_POINTS,
        metavar="N",
        help=f"refuse grids of more settings than this (default {MAX_GRID_POINTS:,})",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def _severity(groups: list[RuleGroup], alert: str, severity: str | None) -> str | None:
    """The severity to tune: as given, or the only one of the alert's rules."""
    found = [s for n, s in alert_identities(groups) if n == alert]
    if severity is None and len(found) > 1:
        shown = ", ".join("(none)" if s is None else s for s in found)
        raise UserError(f"--alert {alert}: rules of several severities ({shown}): choose one with --severity")
    return severity


def _runs(
    args: argparse.Namespace,
    groups: list[RuleGroup],
    points: list[dict[str, Any]],
    sli: BudgetSLI,
    severity: str | None,
) -> tuple[Runs, str]:
    """The data to evaluate: each RUN (its incidents, or --incidents), or one Prometheus range."""
    start, end = time_arg(args.start, "--start"), time_arg(args.end, "--end")
    if args.prometheus:
        if args.runs:
            raise UserError("give RUN directories or --prometheus URL, not both")
        start, end = prometheus_span(start, end)
        # every variant's reads (a longer window reads further back), each group once
        variants = [rewrite_alert(groups, args.alert, p, severity=severity, pair=args.pair) for p in points]
        wanted = list(dict.fromkeys([*groups, *(g for v in variants for g in v)]))
        store = fetch_rule_inputs(args.prometheus, wanted, start, end, sli=sli, timeout=args.timeout)
        return [(store, ground_truth(args, None), start, end)], args.prometheus
    if not args.runs:
        raise UserError("give RUN directories or --prometheus URL")
    runs: Runs = []
    for path in args.runs:
        r = load_run(path)
        runs.append(
            (r.store, ground_truth(args, r.incidents), *evaluation_span(r.store, start, end, str(r.path)))
        )
    return runs, f"{len(runs)} run(s)"


def _setting_view(row: dict[str, Any]) -> dict[str, Any]:
    w = row["windows"]
    return {
        **row,
        "for": None if row["for_ms"] is None else format_duration_ms(row["for_ms"]),
        "keep_firing_for": None
        if row["keep_firing_for_ms"] is None
        else format_duration_ms(row["keep_firing_for_ms"]),
        "windows": None if w is None else f"{format_duration_ms(w[0])}/{format_duration_ms(w[1])}",
    }


def run(args: argparse.Namespace) -> int:
    groups = load_rule_files(args.rules)
    grid = parse_grid(args.grid, max_points=args.max_points)
    points = grid_points(grid)
    settings = eval_settings(args)
    sli = budget_sli(args)
    severity = _severity(groups, args.alert, args.severity)
    runs, where = _runs(args, groups, points, sli, severity)
    found = grid_search(
        groups, args.alert, points, runs, settings=settings, sli=sli, severity=severity, pair=args.pair
    )
    rows = [_setting_view(row) for row in found]
    shown = [c for c in SETTING_COLUMNS if c == "for" or c in grid]
    columns = (*shown, *STAT_COLUMNS)
    front = [row for row in rows if row["pareto"]]
    truth = all(inc is not None for _, inc, _, _ in runs)
    note = None if truth else "no ground truth (give --incidents FILE): recall and false positives are n/a"
    name = args.alert if severity is None else f"{args.alert} (severity {severity})"
    if args.format == "json":
        doc = {
            "alert": args.alert,
            "severity": severity,
            "ground_truth": truth,
            "note": note,
            "points": json.loads(render(rows, "json", columns=columns)),
            "pareto": json.loads(render(front, "json", columns=columns[:-1])),
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    fmts = {k: v for k, v in SCORE_FORMATTERS.items() if k in columns}
    fmts["pareto"] = lambda x: "*" if x else ""
    fmts["factor"] = lambda x: "-" if x is None else fmt_number(x)
    sys.stdout.write(f"Grid for {name} over {where}:\n")
    sys.stdout.write(render(rows, "table", columns=columns, formatters=fmts))
    sys.stdout.write("\nPareto front (recall, then mean detection time vs false positives per day):\n")
    sys.stdout.write(render(front, "table", columns=columns[:-1], formatters=fmts))
    if note:
        sys.stdout.write(f"\nNote: {note}.\n")
    return 0
