"""Classic-histogram functions over ``le`` bucket series: ``histogram_quantile``, ``histogram_fraction``.

Buckets of one histogram are the series sharing all labels but ``__name__`` and ``le``. The set
of buckets present can vary by step, so steps are processed in groups with the same presence
pattern; within a group every bucket operation is one numpy call over those steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from sloanalysis.promql.values import Annotations, Vec, get_label, remove_labels
from sloanalysis.store import METRIC_NAME, Labels

BucketFn = Callable[[np.ndarray, np.ndarray, list[np.ndarray], Annotations, str], np.ndarray]


def _parse_le(text: str) -> float | None:
    try:
        return float(text.strip().replace("Inf", "inf"))
    except ValueError:
        return None


def _per_histogram(vec: Vec, params: list[np.ndarray], annots: Annotations, fn: BucketFn) -> Vec:
    groups: dict[Labels, list[tuple[float, int]]] = {}
    for i, lab in enumerate(vec.labels):
        bound = _parse_le(get_label(lab, "le"))
        if bound is None or math.isnan(bound):
            if vec.present[i].any():
                annots.warn(
                    'PromQL warning: bucket label "le" is missing or has a malformed value of '
                    f'"{get_label(lab, "le")}"'
                )
            continue
        # Histograms are told apart by name too; the name is dropped only from the output.
        groups.setdefault(remove_labels(lab, ["le"]), []).append((bound, i))
    t = vec.values.shape[1]
    labels, values, present = [], [], []
    for key, members in groups.items():
        members.sort(key=lambda m: m[0])
        bounds = np.array([m[0] for m in members])
        rows = np.array([m[1] for m in members])
        pres = vec.present[rows]
        out = np.full(t, np.nan)
        any_p = pres.any(axis=0)
        if not any_p.any():
            continue
        patterns, inverse = np.unique(pres[:, any_p].T, axis=0, return_inverse=True)
        steps = np.flatnonzero(any_p)
        for k, pattern in enumerate(patterns):
            cols = steps[inverse.ravel() == k]
            ub, counts = _coalesce(bounds[pattern], vec.values[rows[pattern]][:, cols])
            out[cols] = fn(ub, counts, [p[cols] for p in params], annots, "")
        labels.append(remove_labels(key, [METRIC_NAME]))
        values.append(out)
        present.append(any_p)
    return Vec(labels, np.array(values).reshape(len(labels), t), np.array(present).reshape(len(labels), t))


def _coalesce(bounds: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge buckets with equal upper bounds (e.g. le="1" and le="1.0")."""
    uniq, inv = np.unique(bounds, return_inverse=True)
    if uniq.size == bounds.size:
        return bounds, counts
    merged = np.zeros((uniq.size, counts.shape[1]))
    np.add.at(merged, inv.ravel(), counts)
    return uniq, merged


def _fix_monotonic(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prometheus's precision fix (tolerance 1e-12) then the running-max envelope."""
    c = counts.copy()
    prev = c[0].copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(1, c.shape[0]):
            cur = c[i]
            d = np.abs(cur - prev)
            close = (d != 0) & (d / cur <= 1e-12)
            c[i] = np.where(close, prev, cur)
            prev = np.where((d != 0) & ~close, cur, prev)
    env = np.maximum.accumulate(c, axis=0)
    forced = np.asarray((env > c).any(axis=0))
    return env, forced


def _bucket_quantile(
    bounds: np.ndarray, counts: np.ndarray, params: list[np.ndarray], annots: Annotations, _name: str
) -> np.ndarray:
    q = params[0]
    s = counts.shape[1]
    out = np.full(s, np.nan)
    if bounds.size == 0 or not math.isinf(bounds[-1]) or bounds[-1] < 0:
        return _q_edges(q, out)
    c, forced = _fix_monotonic(counts)
    if forced.any():
        annots.info(
            "PromQL info: input to histogram_quantile needed to be fixed for monotonicity "
            "(see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)"
        )
    nb = bounds.size
    if nb < 2:
        return _q_edges(q, out)
    obs = c[-1]
    rank = q * obs
    # First bucket (excluding +Inf) whose cumulative count reaches the rank.
    reach = c[:-1] >= rank[None, :]
    b = np.where(reach.any(axis=0), np.argmax(reach, axis=0), nb - 1)
    cols = np.arange(s)
    end = bounds[np.minimum(b, nb - 1)]
    start = np.where(b > 0, bounds[np.maximum(b - 1, 0)], 0.0)
    prev_count = np.where(b > 0, c[np.maximum(b - 1, 0), cols], 0.0)
    cnt = c[b, cols] - prev_count
    with np.errstate(invalid="ignore", divide="ignore"):
        val = start + (end - start) * ((rank - prev_count) / cnt)
    val = np.where(b == nb - 1, bounds[nb - 2], val)
    val = np.where((b == 0) & (bounds[0] <= 0), bounds[0], val)
    val = np.where(obs == 0, np.nan, val)
    return _q_edges(q, val)


def _q_edges(q: np.ndarray, val: np.ndarray) -> np.ndarray:
    val = np.where(np.isnan(q), np.nan, val)
    val = np.where(q < 0, -np.inf, val)
    return np.where(q > 1, np.inf, val)


def _bucket_fraction(
    bounds: np.ndarray, counts: np.ndarray, params: list[np.ndarray], annots: Annotations, _name: str
) -> np.ndarray:
    lower, upper = params
    s = counts.shape[1]
    if bounds.size == 0 or not (math.isinf(bounds[-1]) and bounds[-1] > 0):
        return np.full(s, np.nan)
    c, _ = _fix_monotonic(counts)
    total = c[-1]
    lows = np.concatenate([[0.0 if bounds[0] > 0 else -np.inf], bounds[:-1]])
    per = np.diff(np.vstack([np.zeros((1, s)), c]), axis=0)

    def rank_at(x: np.ndarray) -> np.ndarray:
        r = np.zeros(s)
        with np.errstate(invalid="ignore", divide="ignore"):
            for lo, hi, n in zip(lows, bounds, per, strict=True):
                if math.isinf(hi) or math.isinf(lo):
                    part = np.where(x >= hi, n, 0.0)
                else:
                    part = np.clip((x - lo) / (hi - lo), 0.0, 1.0) * n
                r = r + part
        return r

    with np.errstate(invalid="ignore", divide="ignore"):
        frac = (rank_at(upper) - rank_at(lower)) / total
    frac = np.where(lower >= upper, 0.0, frac)
    frac = np.where(np.isnan(lower) | np.isnan(upper) | (total == 0), np.nan, frac)
    return frac


def histogram_quantile(q: np.ndarray, vec: Vec, annots: Annotations) -> Vec:
    bad = q[np.isnan(q) | (q < 0) | (q > 1)]
    for v in np.unique(bad):
        shown = "NaN" if math.isnan(v) else repr(float(v)).removesuffix(".0")
        annots.warn(f"PromQL warning: quantile value should be between 0 and 1, got {shown}")
    return _per_histogram(vec, [q], annots, _bucket_quantile)


def histogram_fraction(lower: np.ndarray, upper: np.ndarray, vec: Vec, annots: Annotations) -> Vec:
    return _per_histogram(vec, [lower, upper], annots, _bucket_fraction)
