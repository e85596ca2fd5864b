"""Tune an alert's threshold (or burn-rate factor and windows) and ``for``: find the threshold,
rewrite it, search a grid, keep the Pareto front.

- :func:`split_comparison` is the one place that reads an alert's threshold: the top-level
  ``lhs OP number`` (or ``number OP lhs``) of its expression, by the parsed PromQL, with ``lhs``
  as written in the rule;
- :func:`rewrite_alert` gives an alert a new threshold / ``for`` / ``keep_firing_for``, or, for a
  multiwindow burn-rate alert (:mod:`sloanalysis.rules.burnrate`), a new factor and windows of
  one of its pairs; the page and ticket rules of one name are told apart by ``severity``;
- :func:`grid_search` backtests every point of a grid (:func:`parse_grid`) over runs, for
  ``sloanalysis tune``;
- :func:`sweep` tries every tunable alert of a rules file at a few threshold factors and ``for``
  values, for the report: each rule's ``lhs`` is recorded once over the range, so that each
  setting re-evaluates only the comparison (:class:`Tunable`);
- :func:`pareto_front` keeps the points not dominated in (mean detection time, false positives
  per day), both to be minimised; a point that misses an incident the others detect is ranked by
  recall first (a lower recall is dominated).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from sloanalysis.durations import parse_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.promql import PromQLError, parse
from sloanalysis.rules.backtest import EvalSettings, alert_identities, backtest
from sloanalysis.rules.burnrate import ensure_recorded, with_burn_rate
from sloanalysis.rules.manager import evaluate_rules
from sloanalysis.rules.model import AlertingRule, RecordingRule, RuleGroup
from sloanalysis.rules.scoring import BudgetSLI, incident_rows, score
from sloanalysis.store import SeriesStore

__all__ = [
    "FOR_MS",
    "THRESHOLD_FACTORS",
    "Comparison",
    "Tunable",
    "TuneSet",
    "evaluate_setting",
    "grid_points",
    "grid_search",
    "pareto_front",
    "parse_grid",
    "rewrite_alert",
    "split_comparison",
    "sweep",
    "tunables",
    "with_threshold",
]

MINUTE_MS = 60_000
TUNE_METRIC = "sloanalysis_tune_value"
# 4 x 4 settings per rule (plus the rule's own ``for``): each costs one rule evaluation over the
# whole range (about 25 ms for 30 days), so the report's grid stays small enough for CI.
THRESHOLD_FACTORS = (0.5, 1.0, 1.5, 2.0)
FOR_MS = (0, 2 * MINUTE_MS, 5 * MINUTE_MS, 10 * MINUTE_MS)

_FLIP = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "==": "==", "!=": "!="}
_NUM = (
    r"[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+(?:ms|[smhdwy]))+|\d+\.?\d*(?:[eE][-+]?\d+)?"
    r"|\.\d+(?:[eE][-+]?\d+)?|Inf|NaN)"
)
_CMP = r"==|!=|>=|<=|>|<"
_TRAILING = re.compile(rf"({_CMP})\s*(bool\s+)?{_NUM}\s*$")
_LEADING = re.compile(rf"^\s*{_NUM}\s*({_CMP})(\s*bool\b)?")


# -- the threshold --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """An alert expression read as ``lhs OP threshold`` (``number OP lhs`` is flipped to this)."""

    lhs: str
    op: str
    threshold: float
    bool_modifier: bool = False


def split_comparison(expr: str) -> Comparison | None:
    """The top-level comparison of ``expr`` with a number on one side (outer parentheses
    ignored), ``lhs`` as written; None when the expression is not of that form."""
    import promql_parser as pp

    try:
        node = pp.parse(expr)
    except (ValueError, TypeError):
        return None
    text = expr.strip()
    while isinstance(node, pp.ParenExpr):
        node = node.expr
        if not (text.startswith("(") and text.endswith(")")):
            return None
        text = text[1:-1].strip()
    if not isinstance(node, pp.BinaryExpr) or str(node.op) not in _FLIP:
        return None
    left_num, right_num = isinstance(node.lhs, pp.NumberLiteral), isinstance(node.rhs, pp.NumberLiteral)
    if left_num == right_num:
        return None
    bool_modifier = bool(node.modifier is not None and node.modifier.return_bool)
    op = str(node.op)
    number: Any = node.rhs if right_num else node.lhs
    if right_num:
        m = _TRAILING.search(text)
        lhs = text[: m.start()] if m else ""
    else:
        m = _LEADING.search(text)
        lhs, op = (text[m.end() :] if m else ""), _FLIP[op]
    if m is None or not lhs.strip():
        return None
    return Comparison(lhs.strip(), op, float(number.val), bool_modifier)


def _number(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and x == int(x) else repr(float(x))


def with_threshold(expr: str, threshold: float) -> str:
    """``expr`` with the number of its top-level comparison replaced (written as ``lhs OP number``)."""
    c = split_comparison(expr)
    if c is None:
        raise UserError(f"expression has no top-level comparison with a number: {expr!r}")
    out = f"{c.lhs} {c.op}{' bool' if c.bool_modifier else ''} {_number(threshold)}"
    try:
        parse(out)
    except PromQLError as exc:
        raise UserError(f"cannot rewrite the threshold of {expr!r}: {exc}") from None
    return out


def rewrite_alert(
    groups: Sequence[RuleGroup],
    alert: str,
    point: dict[str, Any],
    *,
    severity: str | None = None,
    pair: int = 1,
) -> list[RuleGroup]:
    """Groups with every rule named ``alert`` (of ``severity``, if given) given the point's
    ``threshold`` / ``factor`` and ``windows`` (``(long_ms, short_ms)``, of pair ``pair`` of a
    burn-rate alert) / ``for`` / ``keep_firing_for``; a burn-rate window read from a recorded
    metric gets its recording rule."""
    found = False
    out = []
    recorded: list[tuple[str, int, int]] = []
    for g in groups:
        rules = []
        for r in g.rules:
            if (
                isinstance(r, AlertingRule)
                and r.name == alert
                and severity in (None, r.labels.get("severity"))
            ):
                found = True
                if "threshold" in point:
                    r = replace(r, expr=with_threshold(r.expr, point["threshold"]))
                if "factor" in point or "windows" in point:
                    expr, renamed = with_burn_rate(
                        r.expr, factor=point.get("factor"), windows=point.get("windows"), pair=pair
                    )
                    r = replace(r, expr=expr)
                    recorded.extend(renamed)
                if "for" in point:
                    r = replace(r, for_ms=int(point["for"]))
                if "keep_firing_for" in point:
                    r = replace(r, keep_firing_for_ms=int(point["keep_firing_for"]))
            rules.append(r)
        out.append(replace(g, rules=tuple(rules)))
    if not found:
        have = ", ".join(n if s is None else f"{n}:{s}" for n, s in alert_identities(groups)) or "none"
        wanted = repr(alert) if severity is None else f"{alert!r} with severity {severity!r}"
        raise UserError(f"--alert: no alerting rule named {wanted} (have: {have})")
    for prefix, old, new in dict.fromkeys(recorded):
        out = ensure_recorded(out, prefix, old, new)
    return out


# -- grid search (sloanalysis tune) ---------------------------------------------------------------


# Settings one tune may try: each is a rule evaluation over every run.
MAX_GRID_POINTS = 1_000
GRID_KEYS = ("threshold", "factor", "windows", "for", "keep_firing_for")


def _windows(text: str) -> tuple[int, int]:
    """``1h/5m`` -> ``(3600000, 300000)``: the long window, then the short one."""
    long_text, sep, short_text = text.partition("/")
    if not sep:
        raise UserError(f"--grid windows: expected LONG/SHORT like 1h/5m, got {text!r}")
    long_ms = parse_duration_ms(long_text.strip(), what="--grid windows")
    short_ms = parse_duration_ms(short_text.strip(), what="--grid windows")
    if not 0 < short_ms <= long_ms:
        raise UserError(
            f"--grid windows: the short window must be positive and not longer than the long one: {text!r}"
        )
    return long_ms, short_ms


def parse_grid(text: str, max_points: int = MAX_GRID_POINTS) -> dict[str, list[Any]]:
    """``'threshold=5,10;for=0m,2m'`` -> ``{"threshold": [5.0, 10.0], "for": [0, 120000]}``;
    ``'factor=6,14.4;windows=1h/5m,6h/30m'`` -> factors and ``(long_ms, short_ms)`` pairs."""
    grid: dict[str, list[Any]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, values = part.partition("=")
        key = key.strip()
        if not sep or key not in GRID_KEYS:
            raise UserError(f"--grid: expected keys {', '.join(GRID_KEYS)} as 'key=v1,v2;...', got {part!r}")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not items:
            raise UserError(f"--grid: no values for {key!r}")
        if key in ("threshold", "factor"):
            try:
                grid[key] = [float(v) for v in items]
            except ValueError:
                raise UserError(f"--grid: {key} values must be numbers, got {values!r}") from None
            if not all(math.isfinite(v) for v in grid[key]):
                raise UserError(f"--grid: {key} values must be finite, got {values!r}")
        elif key == "windows":
            grid[key] = [_windows(v) for v in items]
        else:
            grid[key] = [parse_duration_ms(v, what=f"--grid {key}") for v in items]
    if not grid:
        raise UserError("--grid: empty grid")
    if "threshold" in grid and ("factor" in grid or "windows" in grid):
        raise UserError("--grid: 'threshold' is for threshold alerts, 'factor'/'windows' for burn-rate ones")
    size = math.prod(len(v) for v in grid.values())
    if size > max_points:
        raise UserError(
            f"--grid: {size:,} settings, more than the limit of {max_points:,} (raise --max-points)"
        )
    return grid


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def grid_search(
    groups: Sequence[RuleGroup],
    alert: str,
    points: Sequence[dict[str, Any]],
    runs: Sequence[tuple[SeriesStore, pd.DataFrame | None, int, int]],
    *,
    settings: EvalSettings | None = None,
    sli: BudgetSLI | None = None,
    severity: str | None = None,
    pair: int = 1,
) -> list[dict[str, Any]]:
    """One row per point: ``alert`` (of ``severity``, if given) rewritten to it, backtested over
    every run ``(store, incidents or None without ground truth, start_ms, end_ms)``, its counts
    summed and its detection times averaged over the runs; ``pareto`` marks the rows of
    :func:`pareto_front`. Every point is rewritten before any evaluation, so an unknown alert or
    an unrewritable expression fails early."""
    variants = [rewrite_alert(groups, alert, p, severity=severity, pair=pair) for p in points]
    settings = settings or EvalSettings()
    wanted = [(alert, severity)]
    truth = all(inc is not None for _, inc, _, _ in runs)
    rows: list[dict[str, Any]] = []
    for p, g2 in zip(points, variants, strict=True):
        incidents = detected = false_positives = firings = 0
        days = 0.0
        dets: list[float] = []
        for store, inc, start, end in runs:
            bt = backtest(g2, store, inc, start, end, settings=settings, sli=sli, score_only=wanted)
            mine = bt.scores[bt.scores["alert"] == alert]
            incidents += int(mine["incidents"].sum())
            detected += int(mine["detected"].sum())
            firings += int(mine["firings"].sum())
            false_positives += int(sum(x for x in mine["false_positives"] if x is not None and x == x))
            days += (end - start) / 86_400_000
            if len(bt.pairs):
                dets.extend(float(x) for x in bt.pairs["detection_ms"] if x is not None and x == x)
        rows.append(
            {
                "threshold": p.get("threshold"),
                "factor": p.get("factor"),
                "windows": p.get("windows"),
                "for_ms": p.get("for"),
                "keep_firing_for_ms": p.get("keep_firing_for"),
                "incidents": incidents,
                "detected": detected,
                "recall": detected / incidents if incidents and truth else None,
                "detection_ms": float(np.mean(dets)) if dets else None,
                "firings": firings,
                "false_positives": false_positives if truth else None,
                "fp_per_day": false_positives / max(days, 1e-9) if truth else None,
            }
        )
    front = {id(r) for r in pareto_front(rows)}
    for r in rows:
        r["pareto"] = id(r) in front
    return rows


def pareto_front(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows not dominated in (higher recall, lower mean detection, lower false positives per day)."""

    def key(r: dict[str, Any]) -> tuple[float, float, float]:
        det = r.get("detection_ms")
        return (
            -(r.get("recall") or 0.0),
            float("inf") if det is None else float(det),
            float(r.get("fp_per_day") or 0.0),  # None without ground truth: not a criterion
        )

    front = []
    for r in rows:
        kr = key(r)
        dominated = any(
            all(a <= b for a, b in zip(key(o), kr, strict=True)) and key(o) != kr for o in rows if o is not r
        )
        if not dominated:
            front.append(r)
    return front


# -- the report's sweep ---------------------------------------------------------------------------


@dataclass
class Tunable:
    """An alerting rule ``lhs OP threshold`` and its ``lhs`` recorded once over the range (with the
    stale markers a recording rule writes), so that each setting re-runs only the comparison."""

    path: str
    rule: AlertingRule
    interval_ms: int
    op: str
    threshold: float
    recorded: SeriesStore


@dataclass
class TuneSet:
    """The sweep of one rules file: every tunable rule and every candidate setting's score."""

    tunables: dict[str, Tunable]
    candidates: pd.DataFrame


def tunables(
    path: str,
    groups: Sequence[RuleGroup],
    store: SeriesStore,
    start_ms: int,
    end_ms: int,
    cache: dict[Any, Any] | None = None,
) -> dict[str, Tunable]:
    """The alerts of ``groups`` compared with a finite, non-zero number (first rule of each name;
    ``bool`` comparisons are left out), their ``lhs`` recorded; ``cache`` shares recordings of the
    same ``lhs`` between rules files."""
    memo: dict[Any, Any] = {} if cache is None else cache
    out: dict[str, Tunable] = {}
    for g in groups:
        for r in g.rules:
            if not isinstance(r, AlertingRule) or r.name in out:
                continue
            c = split_comparison(r.expr)
            if c is None or c.bool_modifier or c.threshold == 0 or not math.isfinite(c.threshold):
                continue
            interval = g.interval_ms or MINUTE_MS
            key = ("recorded", c.lhs, interval)
            if key not in memo:
                rec = RuleGroup("sloanalysis-tune", interval, (RecordingRule(TUNE_METRIC, c.lhs),))
                ev = evaluate_rules([rec], store, start_ms, end_ms, default_interval_ms=interval)
                memo[key] = ev.series
            out[r.name] = Tunable(path, r, interval, c.op, c.threshold, memo[key])
    return out


def evaluate_setting(
    t: Tunable,
    threshold: float,
    for_ms: int,
    incidents: pd.DataFrame | None,
    start_ms: int,
    end_ms: int,
    incident_list: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The alerts and the score row of ``t``'s rule with ``threshold`` and ``for`` (``incidents``
    None: no ground truth; ``incident_list``: their :func:`~sloanalysis.rules.scoring.incident_rows`,
    if already made)."""
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
        alert_ids=[(t.rule.name, t.rule.labels.get("severity"))],
        incident_list=incident_list,
    )
    return ev.alerts, next(r for r in rows if r["alert"] == t.rule.name)


def sweep(
    path: str,
    groups: Sequence[RuleGroup],
    store: SeriesStore,
    incidents: pd.DataFrame | None,
    start_ms: int,
    end_ms: int,
    cache: dict[Any, Any] | None = None,
) -> TuneSet:
    """Every tunable rule of ``groups`` (read from ``path``) at thresholds x THRESHOLD_FACTORS and
    ``for`` in FOR_MS (plus the rule as written), each point marked ``current`` (as written) and
    ``pareto``. ``cache`` shares work between rules files (a rule unchanged between the seed and
    its correction is evaluated once)."""
    memo: dict[Any, Any] = {} if cache is None else cache
    tun = tunables(path, groups, store, start_ms, end_ms, memo)
    inc = None if incidents is None else incident_rows(incidents)  # once, not once per setting
    rows: list[dict[str, Any]] = []
    for name, t in tun.items():
        points = []
        for factor in THRESHOLD_FACTORS:
            for for_ms in sorted(set(FOR_MS) | {t.rule.for_ms}):
                key = ("score", name, id(t.recorded), t.op, t.threshold * factor, for_ms, t.interval_ms)
                if key not in memo:
                    memo[key] = evaluate_setting(
                        t, t.threshold * factor, for_ms, incidents, start_ms, end_ms, inc
                    )[1]
                current = factor == 1.0 and for_ms == t.rule.for_ms
                points.append(
                    {**memo[key], "threshold": t.threshold * factor, "for_ms": for_ms, "current": current}
                )
        front = {id(r) for r in pareto_front(points)}
        for r in points:
            r["pareto"] = id(r) in front
            r["alertname"] = name
            det = r.get("detection_ms")
            r["detection_s"] = math.nan if det is None else det / 1000.0
        rows.extend(points)
    return TuneSet(tun, pd.DataFrame(rows))
