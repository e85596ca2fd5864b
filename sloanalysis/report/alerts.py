"""The alert part of the report: backtest a rules file, score it, sweep thresholds, show it.

Glue over :mod:`sloanalysis.rules.model` (loading), :mod:`sloanalysis.rules.manager` (rule-manager
semantics), :mod:`sloanalysis.rules.scoring` (recall, precision, detection time against the incidents)
and :mod:`sloanalysis.rules.tuning` (threshold and ``for`` sweeps); the notebooks call the display
functions at the bottom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from sloanalysis.report.context import MINUTE_MS, Backtest
from sloanalysis.store import SeriesStore

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sloanalysis.report.context import Context

__all__ = [
    "pareto_figures",
    "run_backtest",
    "score_table",
    "score_tables",
    "sweep",
    "timeline_figures",
    "tuning_view",
]

ALERT_COLUMNS = (
    "alertname",
    "labels",
    "active_at_ms",
    "firing_at_ms",
    "resolved_at_ms",
    "ended_at_ms",
    "value_at_firing",
)


def _alert_rules(groups: Sequence[Any]) -> list[tuple[Any, Any]]:
    from sloanalysis.rules.model import AlertingRule

    return [(g, r) for g in groups for r in g.rules if isinstance(r, AlertingRule)]


def _names(groups: Sequence[Any]) -> list[str]:
    return list(dict.fromkeys(r.name for _, r in _alert_rules(groups)))


def _grace(groups: Sequence[Any], interval_ms: int) -> dict[str, int]:
    """Scoring's grace per alert: its ``for`` plus two evaluation intervals (the longest if repeated)."""
    out: dict[str, int] = {}
    for g, r in _alert_rules(groups):
        grace = r.for_ms + 2 * (g.interval_ms or interval_ms)
        out[r.name] = max(out.get(r.name, 0), grace)
    return out


def backtest_groups(
    path: str,
    groups: Sequence[Any],
    store: SeriesStore,
    incidents: pd.DataFrame,
    start_ms: int,
    end_ms: int,
    interval_ms: int = MINUTE_MS,
) -> Backtest:
    from sloanalysis.rules.manager import evaluate_rules
    from sloanalysis.rules.scoring import score

    ev = evaluate_rules(list(groups), store, start_ms, end_ms, default_interval_ms=interval_ms)
    names = _names(groups)
    rows, _pairs = score(
        ev.alerts,
        incidents,
        start_ms,
        end_ms,
        grace_ms=_grace(groups, interval_ms),
        store=store,
        alert_names=names,
    )
    alerts = ev.alerts[[c for c in ALERT_COLUMNS if c in ev.alerts.columns]].copy()
    return Backtest(path, names, alerts, pd.DataFrame(rows), interval_ms)


def run_backtest(
    path: str, store: SeriesStore, incidents: pd.DataFrame, start_ms: int, end_ms: int
) -> Backtest:
    """Evaluate the rules file over the range and score its alerts against the incidents."""
    from sloanalysis.rules.model import load_rules

    return backtest_groups(path, load_rules(path), store, incidents, start_ms, end_ms)


TUNE_METRIC = "sloanalysis_tune_value"
# 4 x 4 settings per rule (plus the rule's own ``for``): each costs one rule evaluation over the
# whole range (about 25 ms for 30 days), so the grid stays small enough for a CI report.
THRESHOLD_FACTORS = (0.5, 1.0, 1.5, 2.0)
FOR_MS = (0, 2 * MINUTE_MS, 5 * MINUTE_MS, 10 * MINUTE_MS)
_FLIP = {">": "<", "<": ">", ">=": "<=", "<=": ">="}


@dataclass
class Tunable:
    """An alerting rule ``lhs OP threshold`` and its ``lhs`` recorded once over the range (with the
    stale markers a recording rule writes), so that each setting re-runs only the comparison."""

    path: str
    rule: Any
    interval_ms: int
    op: str
    threshold: float
    recorded: SeriesStore


@dataclass
class TuneSet:
    """The sweep of one rules file: every tunable rule and every candidate setting's score."""

    tunables: dict[str, Tunable]
    candidates: pd.DataFrame


def _split_comparison(expr: str) -> tuple[str, str, float] | None:
    """``(lhs, op, threshold)`` of a top-level ``expr OP number`` (or ``number OP expr``), else None."""
    import promql_parser as pp

    try:
        node = pp.parse(expr)
    except (ValueError, TypeError):
        return None
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    if not isinstance(node, pp.BinaryExpr) or (node.modifier is not None and node.modifier.return_bool):
        return None
    op = str(node.op)
    if op not in _FLIP:
        return None
    if isinstance(node.rhs, pp.NumberLiteral) and not isinstance(node.lhs, pp.NumberLiteral):
        return str(node.lhs), op, float(node.rhs.val)
    if isinstance(node.lhs, pp.NumberLiteral) and not isinstance(node.rhs, pp.NumberLiteral):
        return str(node.rhs), _FLIP[op], float(node.lhs.val)
    return None


def tunables(
    path: str,
    groups: Sequence[Any],
    store: SeriesStore,
    start_ms: int,
    end_ms: int,
    cache: dict[Any, Any] | None = None,
) -> dict[str, Tunable]:
    """The rules of ``groups`` with a numeric threshold (first rule of each name), their ``lhs``
    recorded; ``cache`` shares recordings of the same ``lhs`` between rules files."""
    from sloanalysis.rules.manager import evaluate_rules
    from sloanalysis.rules.model import RecordingRule, RuleGroup

    memo: dict[Any, Any] = {} if cache is None else cache
    out: dict[str, Tunable] = {}
    for g, r in _alert_rules(groups):
        split = _split_comparison(r.expr)
        if r.name in out or split is None or split[2] == 0 or not math.isfinite(split[2]):
            continue
        lhs, op, threshold = split
        interval = g.interval_ms or MINUTE_MS
        key = ("recorded", lhs, interval)
        if key not in memo:
            rec = RuleGroup("sloanalysis-tune", interval, (RecordingRule(TUNE_METRIC, lhs),))
            memo[key] = evaluate_rules([rec], store, start_ms, end_ms, default_interval_ms=interval).series
        out[r.name] = Tunable(path, r, interval, op, threshold, memo[key])
    return out


def evaluate_setting(
    t: Tunable, threshold: float, for_ms: int, incidents: pd.DataFrame, start_ms: int, end_ms: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The alerts and the score row of ``t``'s rule with ``threshold`` and ``for``."""
    from dataclasses import replace

    from sloanalysis.rules.manager import evaluate_rules
    from sloanalysis.rules.model import RuleGroup
    from sloanalysis.rules.scoring import score

    rule = replace(t.rule, expr=f"{TUNE_METRIC} {t.op} {threshold!r}", for_ms=int(for_ms))
    group = RuleGroup("sloanalysis-tune", t.interval_ms, (rule,))
    ev = evaluate_rules([group], t.recorded, start_ms, end_ms, default_interval_ms=t.interval_ms)
    rows, _ = score(
        ev.alerts,
        incidents,
        start_ms,
        end_ms,
        grace_ms={t.rule.name: int(for_ms) + 2 * t.interval_ms},
        sli=None,
        alert_names=[t.rule.name],
    )
    return ev.alerts, next(r for r in rows if r["alert"] == t.rule.name)


def sweep(
    path: str,
    store: SeriesStore,
    incidents: pd.DataFrame,
    start_ms: int,
    end_ms: int,
    cache: dict[Any, Any] | None = None,
) -> TuneSet:
    """Every tunable rule of the file at thresholds x THRESHOLD_FACTORS and ``for`` in FOR_MS (plus
    the rule as written), with the Pareto front of :func:`sloanalysis.rules.tuning.pareto_front`.
    ``cache`` shares work between rules files (a rule unchanged between the seed and its
    correction is evaluated once)."""
    from sloanalysis.rules.model import load_rules
    from sloanalysis.rules.tuning import pareto_front

    memo: dict[Any, Any] = {} if cache is None else cache
    tun = tunables(path, load_rules(path), store, start_ms, end_ms, memo)
    rows: list[dict[str, Any]] = []
    for name, t in tun.items():
        fors = sorted(set(FOR_MS) | {t.rule.for_ms})
        points = []
        for factor in THRESHOLD_FACTORS:
            for for_ms in fors:
                key = ("score", name, id(t.recorded), t.op, t.threshold * factor, for_ms, t.interval_ms)
                if key not in memo:
                    memo[key] = evaluate_setting(
                        t, t.threshold * factor, for_ms, incidents, start_ms, end_ms
                    )[1]
                row = memo[key]
                current = factor == 1.0 and for_ms == t.rule.for_ms
                points.append(
                    {**row, "threshold": t.threshold * factor, "for_ms": for_ms, "current": current}
                )
        front = {id(r) for r in pareto_front(points)}
        for r in points:
            r["pareto"] = id(r) in front
            r["alertname"] = name
            det = r.get("detection_ms")
            r["detection_s"] = math.nan if det is None else det / 1000.0
        rows.extend(points)
    return TuneSet(tun, pd.DataFrame(rows))


# -- display --------------------------------------------------------------------------------------


def _pct(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{float(x) * 100:.3g}%"


def _dur(ms: Any) -> str:
    from sloanalysis.formatting import fmt_duration_ms

    return "-" if ms is None or (isinstance(ms, float) and math.isnan(ms)) else fmt_duration_ms(float(ms))


def score_table(bt: Backtest) -> pd.DataFrame:
    """The scores of one backtest for people: one row per alert and the overall row."""
    s = bt.scores
    return pd.DataFrame(
        {
            "alert": s["alert"],
            "incidents": s["incidents"].astype(int).astype(str),
            "detected": s["detected"].astype(int).astype(str),
            "recall": [_pct(x) for x in s["recall"]],
            "precision": [_pct(x) for x in s["precision"]],
            "detection": [_dur(x) for x in s["detection_ms"]],
            "FP/day": [f"{x:.2f}" for x in s["fp_per_day"]],
            "firings": s["firings"].astype(int).astype(str),
        }
    )


def score_tables(ctx: Context) -> list[tuple[str, pd.DataFrame]]:
    return [(f"### `{bt.path}`", score_table(bt)) for bt in ctx.backtests]


def timeline_figures(ctx: Context) -> list[Figure]:
    from sloanalysis.report import plots

    return [
        plots.firing_timeline_figure(
            bt.alerts, bt.alertnames, ctx.incidents, ctx.start_ms, ctx.end_ms, f"Firing timeline: {bt.path}"
        )
        for bt in ctx.backtests
    ]


def pareto_figures(ctx: Context) -> list[Figure]:
    from sloanalysis.report import plots

    return [
        plots.pareto_figure(ts.candidates, f"Detection time vs false positives per day: {path}")
        for path, ts in ctx.tuning.items()
        if len(ts.candidates)
    ]


def _setting_view(ctx: Context, t: Tunable, factor: float, for_minutes: int) -> None:
    """Backtest ``t``'s rule with its threshold times ``factor`` and ``for`` in minutes; show the
    score and the timeline next to the rule as written."""
    from IPython.display import Markdown, display

    from sloanalysis.formatting import fmt_duration_ms
    from sloanalysis.report import plots

    threshold = t.threshold * factor
    for_ms = int(for_minutes) * MINUTE_MS
    alerts, row = evaluate_setting(t, threshold, for_ms, ctx.incidents, ctx.start_ms, ctx.end_ms)
    _, base = evaluate_setting(t, t.threshold, t.rule.for_ms, ctx.incidents, ctx.start_ms, ctx.end_ms)
    table = pd.DataFrame(
        [
            {
                "setting": f"as written: {t.op} {t.threshold:g}, for {fmt_duration_ms(t.rule.for_ms)}",
                **_brief(base),
            },
            {"setting": f"tried: {t.op} {threshold:.4g}, for {fmt_duration_ms(for_ms)}", **_brief(row)},
        ]
    )
    from sloanalysis.report.context import html_table

    display(Markdown(f"**{t.rule.name}** (`{t.path}`): `{t.rule.expr}`"), html_table(table))
    plots.firing_timeline_figure(
        alerts, [t.rule.name], ctx.incidents, ctx.start_ms, ctx.end_ms, f"{t.rule.name}, tried setting"
    )
    import matplotlib.pyplot as plt

    plt.show()


def _brief(row: dict[str, Any]) -> dict[str, str]:
    return {
        "recall": _pct(row["recall"]),
        "precision": _pct(row["precision"]),
        "detection": _dur(row["detection_ms"]),
        "FP/day": f"{row['fp_per_day']:.2f}",
        "firings": str(row["firings"]),
    }


def tuning_view(ctx: Context, *, interactive: bool) -> None:
    """JupyterLab: sliders (rule, threshold factor, ``for``) that re-run the chosen rule's backtest.
    Headless: the first tunable rule as written (widgets do not survive a static export)."""
    from IPython.display import Markdown, display

    choices = {f"{name} ({path})": t for path, ts in ctx.tuning.items() for name, t in ts.tunables.items()}
    if not choices:
        display(Markdown("*No rule with a numeric threshold to tune.*"))
        return
    first = next(iter(choices.values()))
    if not interactive:
        _setting_view(ctx, first, 1.0, first.rule.for_ms // MINUTE_MS)
        return
    import ipywidgets as w

    rule = w.Dropdown(options=list(choices), description="rule", layout=w.Layout(width="60%"))
    factor = w.FloatLogSlider(
        value=1.0, base=2, min=-3, max=3, step=0.25, description="threshold ×", continuous_update=False
    )
    for_min = w.IntSlider(
        value=first.rule.for_ms // MINUTE_MS, min=0, max=30, description="for (min)", continuous_update=False
    )

    def show(rule: str, factor: float, for_minutes: int) -> None:
        _setting_view(ctx, choices[rule], factor, for_minutes)

    w.interact(show, rule=rule, factor=factor, for_minutes=for_min)
