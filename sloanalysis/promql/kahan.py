"""Neumaier-compensated summation and the quantile rule shared by several operators.

Prometheus sums with Kahan-Neumaier compensation; doing the same, element-wise over numpy
arrays, keeps results identical to the reference even for ill-conditioned inputs.
"""

from __future__ import annotations

import numpy as np


def kahan_inc(inc: np.ndarray, total: np.ndarray, comp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One compensated addition ``total + inc`` per element; returns (new total, new comp)."""
    with np.errstate(invalid="ignore", over="ignore"):
        t = total + inc
        big = np.abs(total) >= np.abs(inc)
        c = np.where(big, (total - t) + inc, (inc - t) + total)
        new_comp = np.where(np.isinf(t), 0.0, comp + c)
    return t, new_comp


def quantile_sorted(q: np.ndarray, sorted_vals: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Prometheus ``quantile`` per row of a row-sorted matrix whose first ``counts`` are valid.

    Rows must be sorted with NaN first (Prometheus orders NaN below every number).
    """
    rows = sorted_vals.shape[0]
    out = np.full(rows, np.nan)
    n = counts.astype(np.float64)
    with np.errstate(invalid="ignore"):
        rank = q * (n - 1)
        lower = np.maximum(0.0, np.floor(rank))
        upper = np.minimum(n - 1, lower + 1)
        weight = rank - np.floor(rank)
    ok = (counts > 0) & ~np.isnan(q) & (q >= 0) & (q <= 1)
    r = np.arange(rows)
    li = np.where(ok, lower, 0).astype(np.intp)
    ui = np.where(ok, upper, 0).astype(np.intp)
    if sorted_vals.shape[1]:
        with np.errstate(invalid="ignore"):
            val = sorted_vals[r, li] * (1 - weight) + sorted_vals[r, ui] * weight
        out = np.where(ok, val, out)
    out = np.where((counts > 0) & (q < 0), -np.inf, out)
    out = np.where((counts > 0) & (q > 1), np.inf, out)
    return out


def sort_nan_first(mat: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row of ``mat`` (invalid cells ignored) with NaN first; returns (sorted, counts)."""
    isnan = np.isnan(mat) & valid
    key = np.where(valid, np.where(isnan, -np.inf, mat), np.inf)
    key.sort(axis=1)
    nan_count = isnan.sum(axis=1)
    cols = np.arange(mat.shape[1])
    key = np.where(cols[None, :] < nan_count[:, None], np.nan, key)
    return key, valid.sum(axis=1)
