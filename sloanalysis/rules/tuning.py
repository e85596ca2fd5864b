"""Grid search over an alert's threshold and ``for``, scored over runs, with the Pareto front.

:func:`rewrite_alert` replaces the scalar of the alert's top-level comparison
(``... > 0.1`` or ``0.1 < ...``) and its ``for``; :func:`pareto_front` keeps the grid points not
dominated in (mean detection time, false positives per day), both to be minimised; a point that
misses an incident the others detect is ranked by recall first (a lower recall is dominated).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sloanalysis.durations import parse_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.promql import PromQLError, parse
from sloanalysis.rules.model import AlertingRule, RuleGroup

__all__ = ["pareto_front", "parse_grid", "rewrite_alert"]

_NUM = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|Inf|NaN)"
_CMP = r"(?:==|!=|>=|<=|>|<)(?:\s*bool)?"
_TRAILING = re.compile(rf"({_CMP})\s*{_NUM}\s*$")
_LEADING = re.compile(rf"^\s*\(*\s*{_NUM}\s*({_CMP})")


def parse_grid(text: str) -> dict[str, list[Any]]:
    """``'threshold=5,10;for=0m,2m'`` -> ``{"threshold": [5.0, 10.0], "for": [0, 120000]}``."""
    grid: dict[str, list[Any]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, values = part.partition("=")
        key = key.strip()
        if not sep or key not in ("threshold", "for", "keep_firing_for"):
            raise UserError(f"--grid: expected 'threshold=...;for=...', got {part!r}")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not items:
            raise UserError(f"--grid: no values for {key!r}")
        if key == "threshold":
            try:
                grid[key] = [float(v) for v in items]
            except ValueError:
                raise UserError(f"--grid: threshold values must be numbers, got {values!r}") from None
        else:
            grid[key] = [parse_duration_ms(v, what=f"--grid {key}") for v in items]
    if not grid:
        raise UserError("--grid: empty grid")
    return grid


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def _with_threshold(expr: str, threshold: float) -> str:
    num = repr(float(threshold)) if threshold != int(threshold) else str(int(threshold))
    text = expr.strip()
    m = _TRAILING.search(text)
    if m:
        out = text[: m.start()] + m.group(1) + " " + num
    else:
        m = _LEADING.search(text)
        if not m:
            raise UserError(f"expression has no top-level comparison with a number: {expr!r}")
        lead = text[: m.start()] + re.sub(_NUM, num, text[m.start() : m.end()], count=1)
        out = lead + text[m.end() :]
    try:
        parse(out)
    except PromQLError as exc:
        raise UserError(f"cannot rewrite the threshold of {expr!r}: {exc}") from None
    return out


def rewrite_alert(groups: Sequence[RuleGroup], alert: str, point: dict[str, Any]) -> list[RuleGroup]:
    """Groups with every rule named ``alert`` given the point's threshold / ``for``."""
    found = False
    out = []
    for g in groups:
        rules = []
        for r in g.rules:
            if isinstance(r, AlertingRule) and r.name == alert:
                found = True
                if "threshold" in point:
                    r = replace(r, expr=_with_threshold(r.expr, point["threshold"]))
                if "for" in point:
                    r = replace(r, for_ms=int(point["for"]))
                if "keep_firing_for" in point:
                    r = replace(r, keep_firing_for_ms=int(point["keep_firing_for"]))
            rules.append(r)
        out.append(replace(g, rules=tuple(rules)))
    if not found:
        names = sorted({r.name for g in groups for r in g.rules if isinstance(r, AlertingRule)})
        raise UserError(f"--alert: no alerting rule named {alert!r} (have: {', '.join(names) or 'none'})")
    return out


def pareto_front(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows not dominated in (higher recall, lower mean detection, lower false positives per day)."""

    def key(r: dict[str, Any]) -> tuple[float, float, float]:
        det = r.get("detection_ms")
        return (
            -(r.get("recall") or 0.0),
            float("inf") if det is None else float(det),
            float(r["fp_per_day"]),
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
