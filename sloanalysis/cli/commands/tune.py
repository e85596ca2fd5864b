"""``sloanalysis tune``: evaluate a grid of thresholds and ``for`` durations of one alert over runs.

Every grid point rewrites the alert (:mod:`sloanalysis.rules.tuning`), evaluates all rule files over
every run and scores that alert against the runs' incidents; the table lists every point and the
Pareto front of mean detection time vs false positives per day (recall first).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from sloanalysis.cli.commands.backtest import (
    SCORE_FORMATTERS,
    add_rule_arguments,
    budget_sli,
    eval_settings,
    grace_ms,
    load_rule_files,
    span,
)
from sloanalysis.durations import format_duration_ms
from sloanalysis.formatting import render
from sloanalysis.rules.manager import evaluate_rules
from sloanalysis.rules.scoring import score
from sloanalysis.rules.tuning import grid_points, pareto_front, parse_grid, rewrite_alert
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
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def run(args: argparse.Namespace) -> int:
    groups = load_rule_files(args.rules)
    grid = parse_grid(args.grid)
    points = grid_points(grid)
    for p in points:  # fail early on an unknown alert or an unrewritable threshold
        rewrite_alert(groups, args.alert, p)
    settings = eval_settings(args)
    sli = budget_sli(args)
    runs = [load_run(r) for r in args.runs]
    spans = [span(r.store, None, None, str(r.path)) for r in runs]
    rows: list[dict[str, Any]] = []
    for p in points:
        g2 = rewrite_alert(groups, args.alert, p)
        grace = grace_ms(g2, settings["default_interval_ms"])
        totals = {"incidents": 0, "detected": 0, "false_positives": 0, "days": 0.0}
        dets: list[float] = []
        for r, (start, end) in zip(runs, spans, strict=True):
            ev = evaluate_rules(g2, r.store, start, end, **settings)
            alerts = ev.alerts[ev.alerts["alertname"] == args.alert]
            per, pairs = score(
                alerts,
                r.incidents,
                start,
                end,
                grace_ms=grace,
                store=r.store,
                sli=sli,
                alert_names=[args.alert],
            )
            row = next(x for x in per if x["alert"] == args.alert)
            totals["incidents"] += row["incidents"]
            totals["detected"] += row["detected"]
            totals["false_positives"] += row["false_positives"]
            totals["days"] += (end - start) / 86_400_000
            dets.extend(x["detection_ms"] for x in pairs if x["detection_ms"] is not None)
        rows.append(
            {
                "threshold": p.get("threshold"),
                "for": format_duration_ms(p["for"]) if "for" in p else None,
                "incidents": totals["incidents"],
                "detected": totals["detected"],
                "recall": totals["detected"] / totals["incidents"] if totals["incidents"] else None,
                "detection_ms": float(np.mean(dets)) if dets else None,
                "false_positives": totals["false_positives"],
                "fp_per_day": totals["false_positives"] / max(totals["days"], 1e-9),
            }
        )
    front = pareto_front(rows)
    for row in rows:
        row["pareto"] = any(row is f for f in front)
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
