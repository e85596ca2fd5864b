"""``sloanalysis backtest``: evaluate rule files over a run (or a Prometheus time range) and score them.

Rules are evaluated with Prometheus's rule-manager semantics (:mod:`sloanalysis.rules.manager`); the
firing intervals of every alert are printed, then the score of each alert against the run's
incidents (:mod:`sloanalysis.rules.scoring`). ``--prometheus URL --start --end`` fetches the raw samples
the rules read from a real server and evaluates them embedded (incidents from ``--incidents``).

A requested range outside the data is an error; a rule window longer than the evaluated span is
reported as a warning (such a rule only sees part of its window, as a freshly started server would).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from sloanalysis.durations import format_duration_ms, parse_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.formatting import fmt_duration_ms, fmt_percent, render
from sloanalysis.promql.parse import parse
from sloanalysis.rules.manager import RuleEvaluation, evaluate_rules
from sloanalysis.rules.model import AlertingRule, RecordingRule, RuleGroup, load_rules
from sloanalysis.rules.scoring import DEFAULT_SLI, BudgetSLI, score
from sloanalysis.store import SeriesStore

NAME = "backtest"
HELP = "Evaluate Prometheus rule files over a run or a Prometheus time range; score alerts against incidents."

SCORE_COLUMNS = (
    "alert",
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
    "reset_ms": "reset",
    "budget_before_detection": "budget at detection",
    "fp_per_day": "FP/day",
}
FIRING_COLUMNS = ("alertname", "labels", "active_at", "firing_at", "resolved_at", "duration", "incident")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_rule_arguments(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    parser.add_argument(
        "--emit-promtool-test", metavar="OUT", help="write a promtool test pinning --incident"
    )
    parser.add_argument("--incident", metavar="ID", help="incident id for --emit-promtool-test")


def add_rule_arguments(parser: argparse.ArgumentParser, *, many_runs: bool = False) -> None:
    """Arguments shared with ``tune``: rule files, data source, evaluation settings, SLO."""
    parser.add_argument(
        "--rules", action="append", required=True, metavar="FILE", help="rule file (repeatable)"
    )
    if many_runs:
        parser.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    else:
        parser.add_argument("run", nargs="?", metavar="RUN", help="run directory (or use --prometheus)")
        parser.add_argument("--prometheus", metavar="URL", help="fetch the data from this Prometheus")
        parser.add_argument(
            "--incidents", metavar="CSV", help="incidents.csv to score against (with --prometheus)"
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


def _time(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    from sloanalysis.query import parse_time

    try:
        return int(parse_time(text))
    except (UserError, ValueError) as exc:
        raise UserError(f"{what}: {exc}") from None


def load_rule_files(paths: list[str]) -> list[RuleGroup]:
    groups: list[RuleGroup] = []
    seen: dict[str, str] = {}
    for p in paths:
        for g in load_rules(p):
            if g.name in seen:
                raise UserError(f"{p}: group {g.name!r} is already defined in {seen[g.name]}")
            seen[g.name] = p
            groups.append(g)
    return groups


def budget_sli(args: argparse.Namespace) -> BudgetSLI:
    if not args.slos:
        return DEFAULT_SLI
    from sloanalysis.slo.spec import load_slos

    slos = load_slos(args.slos)
    if not slos:
        raise UserError(f"{args.slos}: no SLOs")
    if args.slo:
        match = [s for s in slos if s.name == args.slo or s.id == args.slo]
        if not match:
            raise UserError(
                f"--slo: no SLO named {args.slo!r} in {args.slos} ({', '.join(s.name for s in slos)})"
            )
        slo = match[0]
    else:
        slo = slos[0]
    return BudgetSLI(slo.error_ratio_expr, slo.objective, slo.period_ms, slo.id)


def eval_settings(args: argparse.Namespace) -> dict[str, Any]:
    interval = parse_duration_ms(args.interval, what="--interval")
    if interval <= 0:
        raise UserError("--interval must be positive")
    offset: int | str = (
        "hash" if args.eval_offset == "hash" else parse_duration_ms(args.eval_offset, what="--eval-offset")
    )
    return {"default_interval_ms": interval, "eval_offset": offset, "prometheus2": bool(args.prometheus2)}


def _longest_window_ms(expr: str) -> int:
    import promql_parser as pp

    best = 0

    def walk(node: Any) -> None:
        nonlocal best
        if isinstance(node, pp.MatrixSelector | pp.SubqueryExpr) and node.range is not None:
            best = max(best, int(node.range.total_seconds() * 1000))
        for attr in ("expr", "lhs", "rhs", "param", "vector_selector"):
            child = getattr(node, attr, None)
            if isinstance(child, pp.Expr):
                walk(child)
        for arg in getattr(node, "args", None) or []:
            if isinstance(arg, pp.Expr):
                walk(arg)

    walk(parse(expr))
    return best


def window_warnings(groups: list[RuleGroup], span_ms: int) -> list[str]:
    out = []
    for g in groups:
        for r in g.rules:
            w = _longest_window_ms(r.expr)
            if w > span_ms:
                out.append(
                    f"rule {r.name!r} in group {g.name!r} reads a {format_duration_ms(w)} window, "
                    f"longer than the {format_duration_ms(span_ms)} of data evaluated"
                )
    return out


def span(store: SeriesStore, start: int | None, end: int | None, where: str) -> tuple[int, int]:
    """Evaluation span: the data's, or the requested one, which must lie inside the data."""
    rng = store.time_range()
    if rng is None:
        raise UserError(f"{where}: no samples")
    lo, hi = rng
    s = lo if start is None else start
    e = hi if end is None else end
    if e <= s:
        raise UserError(f"--end must be after --start (got {s} .. {e} ms)")
    if s < lo or e > hi:
        raise UserError(
            f"requested range {_iso(s)} .. {_iso(e)} is longer than the data ({_iso(lo)} .. {_iso(hi)})"
        )
    return s, e


def grace_ms(groups: list[RuleGroup], default_interval_ms: int) -> dict[str, int]:
    """``for + 2 * interval`` per alert name (the largest over rules sharing a name)."""
    out: dict[str, int] = {}
    for g in groups:
        iv = g.interval_ms or default_interval_ms
        for r in g.rules:
            if isinstance(r, AlertingRule):
                out[r.name] = max(out.get(r.name, 0), r.for_ms + 2 * iv)
    return out


def alert_names(groups: list[RuleGroup]) -> list[str]:
    return sorted({r.name for g in groups for r in g.rules if isinstance(r, AlertingRule)})


def _fetch(url: str, groups: list[RuleGroup], start: int, end: int, lookback: int) -> SeriesStore:
    from sloanalysis.sources.prometheus import PrometheusClient, fetch_samples

    produced = {r.record for g in groups for r in g.rules if isinstance(r, RecordingRule)} | {
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
    merged = SeriesStore()
    with PrometheusClient(url) as client:
        for g in groups:
            for r in g.rules:
                got = fetch_samples(client, r.expr, start - g.query_offset_ms, end, lookback_ms=lookback)
                for s in got:
                    if s.name not in produced:
                        merged.add(s.labels, s.timestamps, s.values)
    return merged


def _incident_for(row: Any, incidents: list[dict[str, Any]], grace: dict[str, int]) -> str:
    if row.firing_at_ms is None:
        return ""
    stop = row.resolved_at_ms if row.resolved_at_ms is not None else row.firing_at_ms
    for i in incidents:
        if (
            row.alertname in i["alerts"]
            and row.firing_at_ms <= i["end_ms"] + grace.get(row.alertname, 0)
            and stop >= i["start_ms"]
        ):
            return str(i["id"])
    return "FALSE POSITIVE"


def _iso(ms: Any) -> str:
    if ms is None or (isinstance(ms, float) and np.isnan(ms)):
        return "-"
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def firing_rows(
    ev: RuleEvaluation, incidents: list[dict[str, Any]], grace: dict[str, int], end: int
) -> list[dict[str, Any]]:
    rows = []
    for r in ev.alerts.itertuples():
        if r.firing_at_ms is None:
            continue
        r = cast(Any, r)
        labels = {k: v for k, v in r.labels.items() if k != "alertname"}
        rows.append(
            {
                "alertname": r.alertname,
                "labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
                "active_at": _iso(r.active_at_ms),
                "firing_at": _iso(r.firing_at_ms),
                "resolved_at": _iso(r.resolved_at_ms),
                "duration": (r.resolved_at_ms if r.resolved_at_ms is not None else end) - r.firing_at_ms,
                "incident": _incident_for(r, incidents, grace),
                "active_at_ms": r.active_at_ms,
                "firing_at_ms": r.firing_at_ms,
                "resolved_at_ms": r.resolved_at_ms,
                "labels_map": dict(r.labels),
                "annotations": dict(r.annotations),
            }
        )
    return rows


SCORE_FORMATTERS = {
    "precision": lambda x: fmt_percent(x, 3),
    "recall": lambda x: fmt_percent(x, 3),
    "detection_ms": lambda x: "-" if x is None else fmt_duration_ms(x),
    "reset_ms": lambda x: "-" if x is None else fmt_duration_ms(x),
    "budget_before_detection": lambda x: fmt_percent(x, 3),
    "fp_per_day": lambda x: f"{x:.3g}",
}


def run(args: argparse.Namespace) -> int:
    from sloanalysis.rules.scoring import incident_rows
    from sloanalysis.sources.rundir import load_incidents, load_run

    groups = load_rule_files(args.rules)
    settings = eval_settings(args)
    sli = budget_sli(args)
    start_arg, end_arg = _time(args.start, "--start"), _time(args.end, "--end")
    if args.emit_promtool_test and not args.incident:
        raise UserError("--emit-promtool-test needs --incident ID")
    if args.prometheus:
        if start_arg is None or end_arg is None:
            raise UserError("--prometheus needs --start and --end")
        if end_arg <= start_arg:
            raise UserError("--end must be after --start")
        store = _fetch(args.prometheus, groups, start_arg, end_arg, 300_000)
        start, end = start_arg, end_arg
        incidents = (
            load_incidents(args.incidents)
            if args.incidents
            else pd.DataFrame(columns=["id", "kind", "start", "end", "expected_alerts"])
        )
        source = args.prometheus
    else:
        if not args.run:
            raise UserError("give a RUN directory or --prometheus URL")
        run_ = load_run(args.run)
        store, incidents, source = run_.store, run_.incidents, str(run_.path)
        start, end = span(store, start_arg, end_arg, source)
    for w in window_warnings(groups, end - start):
        print(f"sloanalysis backtest: warning: {w}", file=sys.stderr)
    ev = evaluate_rules(groups, store, start, end, **settings)
    for w in ev.warnings:
        print(f"sloanalysis backtest: warning: {w}", file=sys.stderr)
    grace = grace_ms(groups, settings["default_interval_ms"])
    inc = incident_rows(incidents)
    scores, pairs = score(
        ev.alerts,
        incidents,
        start,
        end,
        grace_ms=grace,
        store=store,
        sli=sli,
        alert_names=alert_names(groups),
    )
    firings = firing_rows(ev, inc, grace, end)
    if args.emit_promtool_test:
        _emit(args, groups, store, incidents, ev)
    if args.format == "json":
        doc = {
            "source": source,
            "start_ms": start,
            "end_ms": end,
            "firing": json.loads(render(firings, "json")),
            "scores": json.loads(render(scores, "json", columns=SCORE_COLUMNS)),
            "incidents": json.loads(render(pairs, "json")),
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    out = sys.stdout
    out.write(f"Firing intervals ({source}, {_iso(start)} .. {_iso(end)}):\n")
    out.write(render(firings, "table", columns=FIRING_COLUMNS, formatters={"duration": fmt_duration_ms}))
    out.write(
        "\nScores (grace after incident end: for + 2 evaluation intervals; budget: " + sli.name + "):\n"
    )
    out.write(
        render(scores, "table", columns=SCORE_COLUMNS, headers=SCORE_HEADERS, formatters=SCORE_FORMATTERS)
    )
    misses = [p for p in pairs if not p["detected"]]
    if misses:
        out.write("\nMissed: " + ", ".join(f"{p['incident']} ({p['alert']})" for p in misses) + "\n")
    return 0


def _emit(
    args: argparse.Namespace,
    groups: list[RuleGroup],
    store: SeriesStore,
    incidents: pd.DataFrame,
    ev: RuleEvaluation,
) -> None:
    match = incidents[incidents["id"].astype(str) == str(args.incident)]
    if match.empty:
        known = ", ".join(incidents["id"].astype(str))
        raise UserError(f"--incident: no incident {args.incident!r} in the run ({known})")
    try:
        from sloanalysis.rules.promtool import write_regression_test  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise UserError(
            "--emit-promtool-test: sloanalysis.rules.promtool is not available in this build"
        ) from None
    write_regression_test(
        [str(Path(p)) for p in args.rules], store, match.iloc[0], ev, args.emit_promtool_test
    )
