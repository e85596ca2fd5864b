"""``sloanalysis tune``: evaluate a grid of thresholds and ``for`` durations of one alert over runs.

Argument parsing and printing over :func:`sloanalysis.rules.tuning.grid_search`: every grid point
rewrites the alert, evaluates all rule files over every run and scores that alert against the runs'
incidents; the table lists every point and the Pareto front of mean detection time vs false
positives per day (recall first).
"""

from __future__ import annotations

import argparse
import json
import sys

from sloanalysis.cli.commands.backtest import SCORE_FORMATTERS, add_rule_arguments, budget_sli, eval_settings
from sloanalysis.durations import format_duration_ms
from sloanalysis.formatting import render
from sloanalysis.rules.backtest import evaluation_span
from sloanalysis.rules.model import load_rule_files
from sloanalysis.rules.tuning import MAX_GRID_POINTS, grid_points, grid_search, parse_grid
from sloanalysis.sources.rundir import load_run

NAME = "tune"
HELP = "Grid-search an alert's threshold and 'for' over runs; Pareto front of detection vs false positives."

COLUMNS = (
    "threshold",
    "for",
    "incidents",
    "detected",
    "recall",
    "detection_ms",
    "false_positives",
    "fp_per_day",
    "pareto",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_rule_arguments(parser, many_runs=True)
    parser.add_argument("--alert", required=True, metavar="NAME", help="alert to tune")
    parser.add_argument("--grid", required=True, metavar="SPEC", help="e.g. 'threshold=5,10,20;for=0m,2m,5m'")
    parser.add_argument(
        "--max-points",
        type=int,
        default=MAX_GRID_POINTS,
        metavar="N",
        help=f"refuse grids of more settings than this (default {MAX_GRID_POINTS:,})",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def run(args: argparse.Namespace) -> int:
    groups = load_rule_files(args.rules)
    points = grid_points(parse_grid(args.grid, max_points=args.max_points))
    settings = eval_settings(args)
    sli = budget_sli(args)
    runs = []
    for path in args.runs:
        r = load_run(path)
        runs.append((r.store, r.incidents, *evaluation_span(r.store, None, None, str(r.path))))
    rows = [
        {**row, "for": None if row["for_ms"] is None else format_duration_ms(row["for_ms"])}
        for row in grid_search(groups, args.alert, points, runs, settings=settings, sli=sli)
    ]
    front = [row for row in rows if row["pareto"]]
    if args.format == "json":
        doc = {
            "alert": args.alert,
            "points": json.loads(render(rows, "json", columns=COLUMNS)),
            "pareto": json.loads(render(front, "json", columns=COLUMNS[:-1])),
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    fmts = {k: v for k, v in SCORE_FORMATTERS.items() if k in COLUMNS}
    fmts["pareto"] = lambda x: "*" if x else ""
    sys.stdout.write(f"Grid for {args.alert} over {len(runs)} run(s):\n")
    sys.stdout.write(render(rows, "table", columns=COLUMNS, formatters=fmts))
    sys.stdout.write("\nPareto front (recall, then mean detection time vs false positives per day):\n")
    sys.stdout.write(render(front, "table", columns=COLUMNS[:-1], formatters=fmts))
    return 0
