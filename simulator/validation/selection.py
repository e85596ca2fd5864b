"""Threshold selection under uncertainty: one rule variant per grid point, the fastest setting whose
false positives per day stay below a limit at 95 % confidence, and the Pareto front.

The grid is :func:`sloanalysis.rules.tuning.parse_grid`'s (``threshold``, ``factor``, ``windows``,
``for``, ``keep_firing_for``); each point rewrites the tuned alert with
:func:`~sloanalysis.rules.tuning.rewrite_alert`. "Fastest" is the median detection time counting
a missed incident as never detected (so a setting that misses most incidents is never fastest),
ties broken by the higher detection probability, then the lower false-positive rate. "Below X at
95 % confidence" is the upper end of the exact Poisson interval of the rate being below X.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from simulator.validation.replication import Variant
from sloanalysis.rules.model import RuleGroup
from sloanalysis.rules.tuning import grid_points, pareto_front, rewrite_alert

__all__ = ["choose", "point_label", "tuning_rows", "tuning_variants"]


def point_label(point: dict[str, Any]) -> str:
    """``threshold=5, for=2m``-style text of a grid point."""
    from sloanalysis.durations import format_duration_ms

    parts = []
    for k, v in point.items():
        if k in ("for", "keep_firing_for"):
            parts.append(f"{k}={format_duration_ms(int(v))}")
        elif k == "windows":
            parts.append(f"windows={format_duration_ms(v[0])}/{format_duration_ms(v[1])}")
        else:
            parts.append(f"{k}={v:g}")
    return ", ".join(parts)


def tuning_variants(
    groups: Sequence[RuleGroup],
    alert: str,
    severity: str | None,
    grid: dict[str, list[Any]],
    *,
    pair: int = 1,
) -> list[tuple[dict[str, Any], Variant]]:
    """(grid point, its variant) for every point of ``grid`` (``pair``: which long/short window pair
    of a burn-rate alert a ``factor``/``windows`` point sets); rewriting fails early on a bad alert."""
    out = []
    for i, point in enumerate(grid_points(grid)):
        rewritten = rewrite_alert(groups, alert, point, severity=severity, pair=pair)
        out.append((point, Variant(f"tune{i:03d}", tuple(rewritten), ((alert, severity),))))
    return out


def tuning_rows(
    points: Sequence[tuple[dict[str, Any], Variant]],
    summaries: dict[str, list[dict[str, Any]]],
    alert: str,
    severity: str | None,
    max_fp_per_day: float,
) -> list[dict[str, Any]]:
    """One row per grid point: its detection probability, detection times and false-positive rate
    with their intervals, ``feasible`` (upper false-positive bound below the limit), ``pareto`` and
    ``chosen``."""
    rows = []
    for point, variant in points:
        mine = [
            s for s in summaries[variant.key] if s["alert"] == alert and severity in (None, s["severity"])
        ]
        if not mine:
            continue
        s = mine[0]
        med = s["detection_s_median_with_misses"]["value"]
        rows.append(
            {
                "setting": point_label(point),
                "point": json.loads(json.dumps(point)),
                "detection_p": s["detection"]["p"],
                "detection_p_lo": s["detection"]["lo"],
                "detection_p_hi": s["detection"]["hi"],
                "detection_s_median": s["detection_s_median"]["value"],
                "detection_s_median_lo": s["detection_s_median"]["lo"],
                "detection_s_median_hi": s["detection_s_median"]["hi"],
                # None: never (at least half the incidents missed); hi None: never at 95 %
                "detection_s_with_misses": med if med is not None and math.isfinite(med) else None,
                "detection_s_with_misses_lo": s["detection_s_median_with_misses"]["lo"],
                "detection_s_with_misses_hi": s["detection_s_median_with_misses"]["hi"],
                "fp_per_day": s["fp_per_day"],
                "fp_per_day_lo": s["fp_per_day_lo"],
                "fp_per_day_hi": s["fp_per_day_hi"],
                "feasible": s["fp_per_day_hi"] is not None and s["fp_per_day_hi"] < max_fp_per_day,
                # pareto_front's keys: recall up, detection_ms down, fp_per_day down
                "recall": s["detection"]["p"],
                "detection_ms": None if med is None or not math.isfinite(med) else med * 1000.0,
            }
        )
    front = {id(r) for r in pareto_front(rows)}
    best = choose(rows)
    for r in rows:
        r["pareto"] = id(r) in front
        r["chosen"] = r is best
        del r["recall"], r["detection_ms"]
    return rows


def choose(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The feasible row that detects fastest (see the module docstring); None if none is feasible."""
    feasible = [r for r in rows if r["feasible"] and r["detection_p"]]
    if not feasible:
        return None

    def key(r: dict[str, Any]) -> tuple[float, float, float]:
        det = r["detection_s_with_misses"]
        return (math.inf if det is None else det, -(r["detection_p"] or 0.0), r["fp_per_day"] or 0.0)

    return min(feasible, key=key)
