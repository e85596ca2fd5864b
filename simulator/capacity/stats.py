"""Statistics over replications: Student-t intervals, per-point aggregates, sustainable load, knee.

Pure functions over numpy arrays and pandas frames; nothing here runs a simulation or writes a file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from simulator.capacity.metrics import METRICS
from simulator.capacity.sweep import Point, Slo

__all__ = ["aggregate", "crossing", "knee", "mean_ci", "sustainable", "t975"]

# Student-t 0.975 quantiles for 1..30 degrees of freedom; beyond, the Cornish-Fisher expansion
# (error below 1e-6 from 30 on).
_T975 = (
    12.7062047, 4.30265273, 3.18244631, 2.77644511, 2.57058184, 2.44691185, 2.36462425, 2.30600414,
    2.26215716, 2.22813885, 2.20098516, 2.17881283, 2.16036866, 2.14478669, 2.13144955, 2.11990530,
    2.10981558, 2.10092204, 2.09302405, 2.08596345, 2.07961384, 2.07387307, 2.06865761, 2.06389856,
    2.05953855, 2.05552944, 2.05183052, 2.04840714, 2.04522964, 2.04227246,
)  # fmt: skip
_Z975 = 1.959963984540054


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        return math.nan
    if df <= len(_T975):
        return _T975[df - 1]
    z, n = _Z975, float(df)
    return (
        z
        + (z**3 + z) / (4 * n)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * n**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * n**3)
        + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * n**4)
    )


def mean_ci(values: Iterable[float]) -> tuple[float, float, float]:
    """(mean, low, high): the 95 % t interval over the finite values; NaN bounds below two."""
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = t975(x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def aggregate(points: Sequence[Point], params: Sequence[str], reps: pd.DataFrame) -> pd.DataFrame:
    """One row per point: grid labels (``params``), the load value, mean/low/high of every metric."""
    rows = []
    for point in points:
        mine = reps[reps["point"] == point.index]
        row: dict[str, Any] = {"point": point.index, "config": point.config, "x": point.x}
        row.update(point.labels)
        row["replications"] = len(mine)
        for m in METRICS:
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = mean_ci(mine[m].tolist())
        rows.append(row)
    frame = pd.DataFrame(rows)
    for key in params:  # Parquet needs one type per column
        if len({type(v) for v in frame[key]}) > 1:
            frame[key] = frame[key].astype(str)
    return frame


def crossing(x: np.ndarray, y: np.ndarray, threshold: float, higher_is_bad: bool) -> tuple[float, str]:
    """Load where ``y`` first breaks ``threshold``, linear between the last good and first bad point."""
    bad = ~((y <= threshold) if higher_is_bad else (y >= threshold))  # NaN counts as bad
    if bad[0]:
        return float(x[0]), "below grid"
    if not bad.any():
        return float(x[-1]), "above grid"
    i = int(np.argmax(bad))
    x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
    if not math.isfinite(y1) or y1 == y0:
        return float(x0), "interpolated"
    return float(x0 + (threshold - y0) * (x1 - x0) / (y1 - y0)), "interpolated"


def knee(x: np.ndarray, y: np.ndarray) -> float:
    """Kneedle on an increasing convex curve: the point farthest below the normalised diagonal.

    NaN with fewer than three points, when the curve rises by less than half its lowest value (a
    flat curve has no knee, only noise), or when no point lies 0.1 below the diagonal (a straight
    or saturated-from-the-start curve has no bend inside the grid).
    """
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) < 0.5 * abs(float(y.min())) or np.ptp(y) == 0:
        return math.nan
    diff = (x - x.min()) / np.ptp(x) - (y - y.min()) / np.ptp(y)
    i = int(np.argmax(diff))
    return float(x[i]) if diff[i] >= 0.1 else math.nan  # hugging the diagonal: no clear bend


def _limit(g: pd.DataFrame, metric: str, threshold: float, higher_is_bad: bool) -> dict[str, Any]:
    """The sustainable load of one configuration for one SLO, with its interval."""
    x = g["x"].to_numpy(dtype=np.float64)
    est, where = crossing(x, g[metric].to_numpy(dtype=np.float64), threshold, higher_is_bad)
    # Pessimistic curve: the interval's bad side; optimistic: its good side.
    worse, better = (f"{metric}_hi", f"{metric}_lo") if higher_is_bad else (f"{metric}_lo", f"{metric}_hi")
    lo, _ = crossing(x, g[worse].to_numpy(dtype=np.float64), threshold, higher_is_bad)
    hi, _ = crossing(x, g[better].to_numpy(dtype=np.float64), threshold, higher_is_bad)
    return {
        "slo": f"{metric} {'<=' if higher_is_bad else '>='} {threshold:g}",
        "max_rate": est,
        "max_rate_lo": min(lo, est),
        "max_rate_hi": max(hi, est),
        "bound": where,
    }


def sustainable(results: pd.DataFrame, slo: Slo) -> pd.DataFrame:
    """Per configuration and SLO: the highest sustainable load, its interval, and the knee."""
    rules = (("processing_p95", slo.processing_p95, True), ("success_rate", slo.success_rate, False))
    rows = []
    for config, group in results.groupby("config", sort=False):
        g = group.sort_values("x")
        knee_x = knee(g["x"].to_numpy(dtype=np.float64), g["processing_p95"].to_numpy(dtype=np.float64))
        for metric, threshold, higher_is_bad in rules:
            rows.append({"config": config, **_limit(g, metric, threshold, higher_is_bad), "knee": knee_x})
    return pd.DataFrame(rows)
