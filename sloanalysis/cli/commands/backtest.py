"""``sloanalysis backtest``: evaluate rule files over a run (or a Prometheus time range) and score them.

Argument parsing and printing over :func:`sloanalysis.rules.backtest.backtest`, which evaluates the
rules with Prometheus's rule-manager semantics and scores them against the run's incidents; the
firing intervals of every alert are printed, then the score of each alert (by name and severity).
``--prometheus URL --start --end`` fetches the raw samples the rules read from a real server and
evaluates them embedded. ``--incidents FILE`` is the ground truth (replacing a run's own); without
it and without a run directory, precision, recall and false positives are "n/a".

A requested range outside the data is an error; a rule window longer than the evaluated span is
reported as a warning (such a rule only sees part of its window, as a freshly started server would).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, Literal

import pandas as pd

from sloanalysis.cli.app import add_timeout_argument
from sloanalysis.durations import format_duration_human, parse_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.formatting import fmt_number, fmt_percent, render
from sloanalysis.promql.parse import dialect_for
from sloanalysis.rules.backtest import (
    EvalSettings,
    backtest,
    evaluation_span,
    fetch_rule_inputs,
    iso,
    records,
)
from sloanalysis.rules.manager import RuleEvaluation
from sloanalysis.rules.model import RuleGroup, load_rule_files
from sloanalysis.rules.promtool import write_regression_test
from sloanalysis.rules.scoring import DEFAULT_SLI, BudgetSLI, budget_sli_from_slos
from sloanalysis.store import SeriesStore

NAME = "backtest"
HELP = "Evaluate Prometheus rule files over a run or a Prometheus time range; score alerts against incidents."

SCORE_COLUMNS = (
    "alert",
    "severity",
    "incidents",
    "detected",
    "missed",
    "firings",
    "false_positives",
    "precision",
    "recall",
    "detection_ms",
    "reset_ms",
    "budget_before_detection",
    "fp_per_day",
)
SCORE_HEADERS = {
    "false_positives": "false pos.",
    "detection_ms": "detection",
    "reset_ms": "reset after end",
    "budget_before_detection": "budget at detection",
    "fp_per_day": "FP/day",
}
FIRING_COLUMNS = (
    "alertname",
    "severity",
    "labels",
    "active_at",
    "firing_at",
    "resolved_at",
    "duration",
    "incident",
)


INCIDENTS_HELP = """\
ground truth (--incidents FILE, or a run directory's incidents.csv):
  CSV with the header id,kind,start,end,expected_alerts[,params], one incident per row:
    id               unique name of the incident
    kind             free text (e.g. outage)
    start, end       RFC 3339 with offset (2026-01-05T14:00:00Z) or epoch milliseconds
    expected_alerts  ';'-separated AlertName (every severity) or AlertName:severity, may be empty
    params           optional JSON object
  or YAML (.yaml/.yml): a list of mappings with the same keys.
  Only alerts of the given rule files are scored; an alert no incident expects is scored on
  false positives alone. Without ground truth precision, recall and false positives are n/a."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_rule_arguments(parser)
    parser.epilog = f"{parser.epilog}\n\n{INCIDENTS_HELP}" if parser.epilog else INCIDENTS_HELP
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    parser.add_argument(
        "--emit-promtool-test", metavar="OUT", help="write a promtool test pinning --incident"
    )
    parser.add_argument("--incident", metavar="ID", help="incident id for --emit-promtool-test")


def add_rule_arguments(parser: argparse.ArgumentParser, *, many_runs: bool = False) -> None:
    """Arguments shared with ``tune``: rule files, data source, ground truth, evaluation settings, SLO."""
    parser.add_argument(
        "--rules", action="append", required=True, metavar="FILE", help="rule file (repeatable)"
    )
    if many_runs:
        parser.add_argument("runs", nargs="*", metavar="RUN", help="run directories (or use --prometheus)")
    else:
        parser.add_argument("run", nargs="?", metavar="RUN", help="run directory (or use --prometheus)")
    parser.add_argument("--prometheus", metavar="URL", help="fetch the data from this Prometheus")
    add_timeout_argument(parser)
    parser.add_argument(
        "--incidents",
        metavar="FILE",
        help="ground-truth incidents, CSV or YAML (replaces a run's own; schema below)",
    )
    parser.add_argument(
        "--start", metavar="TIME", help="evaluate from (RFC 3339 or Unix seconds; default: data start)"
    )
    parser.add_argument("--end", metavar="TIME", help="evaluate until (default: data end)")
    parser.add_argument(
        "--interval",
        default="1m",
        metavar="DUR",
        help="evaluation interval of groups without one (default 1m)",
    )
    parser.add_argument(
        "--eval-offset",
        default="0",
        metavar="DUR|hash",
        help="evaluation offset within the interval: a duration (default 0: multiples of the interval) "
        "or 'hash' for a Prometheus server's per-group offset",
    )
    parser.add_argument("--prometheus2", action="store_true", help="Prometheus 2.x range-selector semantics")
    parser.add_argument(
        "--slos", metavar="FILE", help="SLO file for 'budget at detection' (default: availability 99.9%%/30d)"
    )
    parser.add_argument("--slo", metavar="NAME", help="which SLO of --slos (default: the first)")


def time_arg(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    from sloanalysis.query import parse_time

    try:
        return int(parse_time(text))
    except (UserError, ValueError) as exc:
        raise UserError(f"{what}: {exc}") from None


def budget_sli(args: argparse.Namespace) -> BudgetSLI:
    """``--slos``/``--slo`` as the budget measure (default: availability 99.9 % / 30 d)."""
    if not args.slos:
        return DEFAULT_SLI
    from sloanalysis.slo.formats import load_slos

    return budget_sli_from_slos(load_slos(args.slos), args.slo, where=args.slos)


def eval_settings(args: argparse.Namespace) -> EvalSettings:
    interval = parse_duration_ms(args.interval, what="--interval")
    if interval <= 0:
        raise UserError("--interval must be positive")
    offset: int | Literal["hash"] = (
        "hash" if args.eval_offset == "hash" else parse_duration_ms(args.eval_offset, what="--eval-offset")
    )
    return EvalSettings(interval, offset, bool(args.prometheus2))


def _firing_view(row: dict[str, Any]) -> dict[str, Any]:
    """A firing row of the library as printed: ISO times, labels as ``k=v`` without alertname."""
    shown = {k: v for k, v in row["labels"].items() if k != "alertname"}
    return {
        "alertname": row["alertname"],
        "severity": row["severity"],
        "labels": ",".join(f"{k}={v}" for k, v in sorted(shown.items())),
        "active_at": iso(row["active_at_ms"]),
        "firing_at": iso(row["firing_at_ms"]),
        "resolved_at": iso(row["resolved_at_ms"]),
        "duration": row["duration_ms"],
        "incident": row["incident"],
        "active_at_ms": row["active_at_ms"],
        "firing_at_ms": row["firing_at_ms"],
        "resolved_at_ms": row["resolved_at_ms"],
        "labels_map": row["labels"],
        "annotations": row["annotations"],
    }


def na(fmt: Callable[[Any], str]) -> Callable[[Any], str]:
    """``fmt`` with None shown as ``n/a`` (a measure without ground truth, or undefined)."""
    return lambda x: "n/a" if x is None else fmt(x)


def _reset(ms: float | None) -> str:
    """Reset after the incident's end; an alert that clears before the end says so in words."""
    if ms is None:
        return "-"
    return format_duration_human(ms) if ms >= 0 else f"{format_duration_human(-ms)} before"


SCORE_FORMATTERS = {
    "precision": na(lambda x: fmt_percent(x, 3)),
    "recall": na(lambda x: fmt_percent(x, 3)),
    "false_positives": na(str),
    "detection_ms": lambda x: "-" if x is None else format_duration_human(x),
    # An alert that clears before the incident ends has a negative reset: say so in words.
    "reset_ms": lambda x: _reset(x),
    "budget_before_detection": lambda x: fmt_percent(x, 3),
    "fp_per_day": na(fmt_number),
}


def ground_truth(args: argparse.Namespace, run_incidents: pd.DataFrame | None) -> pd.DataFrame | None:
    """``--incidents`` if given, else the run's own incidents (None from a Prometheus: no ground truth)."""
    from sloanalysis.sources.rundir import load_incidents

    return load_incidents(args.incidents) if args.incidents else run_incidents


def prometheus_span(start: int | None, end: int | None) -> tuple[int, int]:
    if start is None or end is None:
        raise UserError("--prometheus needs --start and --end")
    if end <= start:
        raise UserError("--end must be after --start")
    return start, end


def _source(
    args: argparse.Namespace, groups: list[RuleGroup], sli: BudgetSLI, start: int | None, end: int | None
) -> tuple[SeriesStore, pd.DataFrame | None, str, int, int]:
    """Samples, incidents (None: no ground truth), a description and the span: from RUN, or
    fetched from --prometheus."""
    from sloanalysis.sources.rundir import load_run

    if args.prometheus:
        if args.run:
            raise UserError("give a RUN directory or --prometheus URL, not both")
        start, end = prometheus_span(start, end)
        store = fetch_rule_inputs(args.prometheus, groups, start, end, sli=sli, timeout=args.timeout)
        return store, ground_truth(args, None), args.prometheus, start, end
    if not args.run:
        raise UserError("give a RUN directory or --prometheus URL")
    run_ = load_run(args.run)
    start, end = evaluation_span(run_.store, start, end, str(run_.path))
    return run_.store, ground_truth(args, run_.incidents), str(run_.path), start, end


def run(args: argparse.Namespace) -> int:
    groups = load_rule_files(args.rules, dialect=dialect_for(bool(args.prometheus2)))
    settings = eval_settings(args)
    sli = budget_sli(args)
    start_arg, end_arg = time_arg(args.start, "--start"), time_arg(args.end, "--end")
    if args.emit_promtool_test and not args.incident:
        raise UserError("--emit-promtool-test needs --incident ID")
    store, incidents, source, start, end = _source(args, groups, sli, start_arg, end_arg)
    bt = backtest(groups, store, incidents, start, end, settings=settings, sli=sli)
    for w in bt.warnings:
        print(f"sloanalysis backtest: warning: {w}", file=sys.stderr)
    if args.emit_promtool_test:
        assert bt.evaluation is not None
        _emit(args, store, incidents, bt.evaluation)
    firings = [_firing_view(r) for r in bt.firings]
    scores, pairs = records(bt.scores), records(bt.pairs)
    note = (
        None
        if bt.ground_truth
        else "no ground truth (give --incidents FILE): precision, recall and false positives are n/a"
    )
    if args.format == "json":
        doc = {
            "source": source,
            "start_ms": start,
            "end_ms": end,
            "ground_truth": bt.ground_truth,
            "note": note,
            "firing": json.loads(render(firings, "json")),
            "scores": json.loads(render(scores, "json", columns=SCORE_COLUMNS)),
            "incidents": json.loads(render(pairs, "json")),
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    out = sys.stdout
    out.write(f"Firing intervals ({source}, {iso(start)} .. {iso(end)}):\n")
    out.write(
        render(firings, "table", columns=FIRING_COLUMNS, formatters={"duration": format_duration_human})
    )
    out.write(
        "\nScores (grace after incident end: for + 2 evaluation intervals; budget: " + bt.sli_name + "):\n"
    )
    out.write(
        render(scores, "table", columns=SCORE_COLUMNS, headers=SCORE_HEADERS, formatters=SCORE_FORMATTERS)
    )
    if note:
        out.write(f"\nNote: {note}.\n")
    misses = [p for p in pairs if not p["detected"]]
    if misses:
        out.write("\nMissed: " + ", ".join(f"{p['incident']} ({_ident(p)})" for p in misses) + "\n")
    return 0


def _ident(row: dict[str, Any]) -> str:
    return str(row["alert"]) if row.get("severity") is None else f"{row['alert']}:{row['severity']}"


def _emit(
    args: argparse.Namespace, store: SeriesStore, incidents: pd.DataFrame | None, ev: RuleEvaluation
) -> None:
    """``--emit-promtool-test OUT --incident ID``: a promtool test pinning that incident's alerts."""
    if incidents is None:
        raise UserError("--emit-promtool-test needs ground truth: give --incidents FILE")
    match = incidents[incidents["id"].astype(str) == str(args.incident)]
    if match.empty:
        known = ", ".join(incidents["id"].astype(str))
        raise UserError(f"--incident: no incident {args.incident!r} in the run ({known})")
    write_regression_test(list(args.rules), store, match.iloc[0], ev, args.emit_promtool_test)
