"""Statistics over replications: bounded intervals per measure, the sustainable load, the knee.

Intervals (95 %) respect each measure's bounds:

- proportions (success rate, share of payouts that waited): the pooled estimate (confirmed over
  finished payouts of all replications) with the hull of two intervals: Wilson's score interval
  on the pooled counts (binomial noise) and a t interval over the replications' empirical
  logits (the spread between runs, which the pooled counts understate because payouts within a
  run share its congestion). Both stay in [0, 1]; the hull ignores neither source of noise;
- every other measure (times, rates, breaker seconds, counts) is non-negative: the mean with
  its t interval cut at 0, which keeps the coverage because the mean cannot be negative.

Fewer than :data:`MIN_REPLICATIONS` replications per point draw a warning
(:func:`replication_warning`): t with one or two degrees of freedom gives wide intervals.

The sustainable load is read from a monotone fit (:func:`monotone_fit`): success cannot improve
and processing time cannot shorten as load grows, so the noise of single points is pooled
(weighted by finished payouts for the success rate) instead of deciding the answer. See
:func:`sustainable`.

Pure functions over numpy arrays and pandas frames; nothing here runs a simulation or writes a file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from simulator.capacity.metrics import METRICS, PROPORTION_COUNTS
from simulator.capacity.sweep import Point, Slo
from sloanalysis.intervals import logit_t_interval, nonnegative_mean_interval, t_quantile, wilson_interval

__all__ = [
    "MIN_REPLICATIONS",
    "aggregate",
    "config_ids",
    "crossing",
    "knee",
    "mean_ci",
    "measure_interval",
    "monotone_fit",
    "proportion_interval",
    "replication_warning",
    "sustainable",
    "sustainable_load",
    "t975",
]

MIN_REPLICATIONS = 5
INTERVAL_METHODS = {
    "proportions": "pooled estimate; hull of Wilson on pooled counts and t on replication logits",
    "other measures": "mean; t interval over replications cut at 0",
    "max_rate": "monotone fit of the curve; [last load keeping the SLO on the pessimistic interval "
    "curve (0 if none), first load failing on the optimistic one (null beyond the grid)]",
}


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (NaN below one)."""
    return t_quantile(df, 0.95)


def replication_warning(replications: int) -> str | None:
    """The warning for too few replications per point, or None."""
    if replications >= MIN_REPLICATIONS:
        return None
    return (
        f"only {replications} replications per point (fewer than {MIN_REPLICATIONS}): intervals "
        f"are wide and rest on few samples; use replications: {MIN_REPLICATIONS} or more"
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


def proportion_interval(
    successes: Sequence[float] | np.ndarray, trials: Sequence[float] | np.ndarray
) -> tuple[float, float, float]:
    """(pooled proportion, low, high) over replications' counts; NaN without trials.

    The interval is the hull of Wilson on the pooled counts and the logit t interval over the
    replications (NaN, so left out, below two replications with trials).
    """
    k = np.rint(np.nan_to_num(np.asarray(successes, dtype=np.float64))).astype(np.int64)
    n = np.rint(np.nan_to_num(np.asarray(trials, dtype=np.float64))).astype(np.int64)
    total_k, total_n = int(k.sum()), int(n.sum())
    if total_n == 0:
        return math.nan, math.nan, math.nan
    lows_highs = [wilson_interval(total_k, total_n), logit_t_interval(k, n)]
    lo = min(v[0] for v in lows_highs if not math.isnan(v[0]))
    hi = max(v[1] for v in lows_highs if not math.isnan(v[1]))
    return total_k / total_n, lo, hi


def measure_interval(metric: str, reps: pd.DataFrame) -> tuple[float, float, float]:
    """(estimate, low, high) of one metric over one point's replications, within its bounds."""
    if metric in PROPORTION_COUNTS:
        k, n = PROPORTION_COUNTS[metric]
        return proportion_interval(reps[k].to_numpy(), reps[n].to_numpy())
    values = reps[metric].to_numpy(dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan, math.nan
    lo, hi = nonnegative_mean_interval(finite)
    return float(finite.mean()), lo, hi


def config_ids(configs: Iterable[str]) -> dict[str, str]:
    """Short names C1, C2 ... for configurations in first-seen order (tables keep labels whole)."""
    return {c: f"C{i}" for i, c in enumerate(dict.fromkeys(configs), start=1)}


def aggregate(points: Sequence[Point], params: Sequence[str], reps: pd.DataFrame) -> pd.DataFrame:
    """One row per point: config and its id, grid labels (``params``), load, estimate/low/high per metric."""
    ids = config_ids(p.config for p in points)
    rows = []
    for point in points:
        mine = reps[reps["point"] == point.index]
        row: dict[str, Any] = {"point": point.index, "config": point.config, "config_id": ids[point.config]}
        row["x"] = point.x
        row.update(point.labels)
        row["replications"] = len(mine)
        for m in METRICS:
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = measure_interval(m, mine)
        rows.append(row)
    frame = pd.DataFrame(rows)
    for key in params:  # Parquet needs one type per column
        if len({type(v) for v in frame[key]}) > 1:
            frame[key] = frame[key].astype(str)
    return frame


# -- curves ----------------------------------------------------------------------------------
def monotone_fit(y: np.ndarray, weights: np.ndarray | None = None, *, increasing: bool) -> np.ndarray:
    """Weighted least-squares monotone fit by pooling adjacent violators; NaN entries stay NaN.

    Each block of neighbours that breaks the order is replaced by its weighted mean, the
    closest monotone curve to ``y``. Entries with NaN or non-positive weight are left out.
    """
    y = np.asarray(y, dtype=np.float64)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64)
    use = np.isfinite(y) & np.isfinite(w) & (w > 0)
    out = np.full_like(y, np.nan)
    sign = 1.0 if increasing else -1.0
    blocks: list[list[float]] = []  # [weighted sum, weight, count], of sign * y
    for v, wt in zip(sign * y[use], w[use], strict=True):
        blocks.append([v * wt, wt, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, wt2, c = blocks.pop()
            blocks[-1] = [blocks[-1][0] + s, blocks[-1][1] + wt2, blocks[-1][2] + c]
    fitted = [sign * s / wt for s, wt, c in blocks for _ in range(int(c))]
    out[use] = fitted
    return out


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


def _bracket(x: np.ndarray, fit: np.ndarray, threshold: float, higher_is_bad: bool) -> tuple[float, float]:
    """(last grid load keeping the SLO, first failing) on a fitted curve; NaN where there is none."""
    bad = ~((fit <= threshold) if higher_is_bad else (fit >= threshold))
    if not bad.any():
        return float(x[-1]), math.nan
    i = int(np.argmax(bad))
    return (float(x[i - 1]) if i else math.nan), float(x[i])


def sustainable_load(
    x: np.ndarray,
    curves: tuple[np.ndarray, np.ndarray, np.ndarray],
    threshold: float,
    higher_is_bad: bool,
    weights: np.ndarray | None = None,
) -> dict[str, Any]:
    """The highest load keeping an SLO, from the (estimate, pessimistic, optimistic) curves.

    Every curve is first made monotone (:func:`monotone_fit`), so a noisy dip pools with its
    neighbours. ``max_rate``: the crossing of the fitted estimate (linear between the last load
    that keeps the SLO and the first that fails; the first or last load with ``bound`` "below
    grid" or "above grid"). ``max_rate_lo``: the last load keeping the SLO on the pessimistic
    curve (0 if none does: nothing on the grid is assured); ``max_rate_hi``: the first load
    failing on the optimistic curve (NaN if none: beyond the grid). NaN interval ends of a
    point (one replication) fall back to its estimate.
    """
    est, worse, better = (np.asarray(c, dtype=np.float64) for c in curves)
    worse = np.where(np.isnan(worse), est, worse)
    better = np.where(np.isnan(better), est, better)
    fits = [monotone_fit(c, weights, increasing=higher_is_bad) for c in (est, worse, better)]
    rate, where = crossing(x, fits[0], threshold, higher_is_bad)
    keep, fail = _bracket(x, fits[0], threshold, higher_is_bad)
    keep_pessimistic, _ = _bracket(x, fits[1], threshold, higher_is_bad)
    _, fail_optimistic = _bracket(x, fits[2], threshold, higher_is_bad)
    # The pessimistic fit lies below the estimate's (pooling keeps order), so lo <= keep <= rate.
    lo = 0.0 if math.isnan(keep_pessimistic) else min(keep_pessimistic, keep, rate)
    hi = math.nan if math.isnan(fail_optimistic) or math.isnan(fail) else max(fail, fail_optimistic, rate)
    return {"max_rate": rate, "max_rate_lo": lo, "max_rate_hi": hi, "bound": where}


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
    # Pessimistic curve: the interval's bad side; optimistic: its good side.
    worse, better = (f"{metric}_hi", f"{metric}_lo") if higher_is_bad else (f"{metric}_lo", f"{metric}_hi")
    curves = (g[metric].to_numpy(), g[worse].to_numpy(), g[better].to_numpy())
    counts = PROPORTION_COUNTS.get(metric)
    # Proportions pool by their trials (finished payouts), as the pooled estimate does.
    weights = g[counts[1]].to_numpy(dtype=np.float64) if counts and counts[1] in g else None
    limit = sustainable_load(x, curves, threshold, higher_is_bad, weights)
    return {"slo": f"{metric} {'<=' if higher_is_bad else '>='} {threshold:g}", **limit}


def sustainable(results: pd.DataFrame, slo: Slo) -> pd.DataFrame:
    """Per configuration and SLO: the highest sustainable load, its interval, and the knee.

    The knee is that of the monotone fit of processing P95 (a noisy point makes no bend).
    """
    rules = (("processing_p95", slo.processing_p95, True), ("success_rate", slo.success_rate, False))
    rows = []
    for config, group in results.groupby("config", sort=False):
        g = group.sort_values("x")
        x = g["x"].to_numpy(dtype=np.float64)
        knee_x = knee(x, monotone_fit(g["processing_p95"].to_numpy(dtype=np.float64), increasing=True))
        ident = (
            {"config": config, "config_id": g["config_id"].iloc[0]}
            if "config_id" in g
            else {"config": config}
        )
        for metric, threshold, higher_is_bad in rules:
            rows.append({**ident, **_limit(g, metric, threshold, higher_is_bad), "knee": knee_x})
    return pd.DataFrame(rows)
