"""Classic-histogram functions over ``le`` bucket series: ``histogram_quantile``, ``histogram_fraction``.

Buckets of one histogram are the series sharing all labels but ``__name__`` and ``le``. The set
of buckets present can vary by step, so steps are processed in groups with the same presence
pattern; within a group every bucket operation is one numpy call over those steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from sloanalysis._go import format_float
from sloanalysis.promql.values import Annotations, Vec, get_label, remove_labels
from sloanalysis.store import METRIC_NAME, Labels

# Steps per block when a histogram's buckets are processed block by block.
_BLOCK_STEPS = 8192
BucketFn = Callable[[np.ndarray, np.ndarray, list[np.ndarray], Annotations, str], np.ndarray]


def _parse_le(text: str) -> float | None:
    try:
        return float(text.strip().replace("Inf", "inf"))
    except ValueError:
        return None


def _per_histogram(vec: Vec, params: list[np.ndarray], annots: Annotations, fn: BucketFn, pos: str) -> Vec:
    """``fn`` over each histogram's buckets; ``pos`` (``1:25``) ends its annotations, as in Prometheus."""
    groups: dict[Labels, list[tuple[float, int]]] = {}
    for i, lab in enumerate(vec.labels):
        bound = _parse_le(get_label(lab, "le"))
        if bound is None or math.isnan(bound):
            if vec.present[i].any():
                annots.warn(
                    'PromQL warning: bucket label "le" is missing or has a malformed value of '
                    f'"{get_label(lab, "le")}"{_for_metric(get_label(lab, METRIC_NAME))}{_at(pos)}'
                )
            continue
        # Histograms are told apart by name too; the name is dropped only from the output.
        groups.setdefault(remove_labels(lab, ["le"]), []).append((bound, i))
    t = vec.values.shape[1]
    labels: list[Labels] = []
    values = np.full((len(groups), t), np.nan)
    present = np.zeros((len(groups), t), dtype=bool)
    for key, members in groups.items():
        members.sort(key=lambda m: m[0])
        bounds = np.array([m[0] for m in members])
        rows = np.array([m[1] for m in members])
        pres = vec.present[rows]
        any_p = pres.any(axis=0)
        if not any_p.any():
            continue
        out = values[len(labels)]
        name_and_pos = _for_metric(get_label(key, METRIC_NAME)) + _at(pos)
        for pattern, steps in _presence_patterns(pres, any_p):
            sel = rows[pattern]
            # Blocks of steps keep the (buckets x steps) temporaries in cache.
            for a in range(0, steps.size, _BLOCK_STEPS):
                cols = steps[a : a + _BLOCK_STEPS]
                first, last = int(cols[0]), int(cols[-1])
                at: slice | np.ndarray = slice(first, last + 1) if last - first + 1 == cols.size else cols
                block = vec.values[sel, at] if isinstance(at, slice) else vec.values[np.ix_(sel, at)]
                ub, counts = _coalesce(bounds[pattern], block)
                out[at] = fn(ub, counts, [p[at] for p in params], annots, name_and_pos)
        present[len(labels)] = any_p
        labels.append(remove_labels(key, [METRIC_NAME]))
    return Vec(labels, values[: len(labels)], present[: len(labels)])


def _for_metric(name: str) -> str:
    """Prometheus 3's ``for metric name "x"`` annotation suffix (none for a nameless series)."""
    return f' for metric name "{name}"' if name else ""


def _at(pos: str) -> str:
    return f" ({pos})" if pos else ""


def _presence_patterns(pres: np.ndarray, any_p: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(buckets present, steps) for each distinct presence pattern among the steps in ``any_p``."""
    steps = np.flatnonzero(any_p)
    sub = pres[:, steps]
    if bool(sub.all()):  # the usual case: all buckets scraped together
        yield np.ones(pres.shape[0], dtype=bool), steps
        return
    # One integer key per step (its column of presence bits), then a 1-D unique: far cheaper
    # than np.unique(axis=0), which sorts rows as structured records.
    packed = np.packbits(sub, axis=0)
    if packed.shape[0] <= 8:
        keys = np.zeros(steps.size, dtype=np.uint64)
        for row in packed:
            keys = (keys << np.uint64(8)) | row.astype(np.uint64)
        _, firsts, inverse = np.unique(keys, return_index=True, return_inverse=True)
    else:  # more than 64 buckets: fall back to row-unique on the packed bytes
        _, firsts, inverse = np.unique(packed.T, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(firsts.size + 1))
    for k in range(firsts.size):
        yield sub[:, firsts[k]], steps[order[bounds[k] : bounds[k + 1]]]


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
    with np.errstate(invalid="ignore", divide="ignore"):
        # The sequential fix below only changes anything if some bucket is within the tolerance
        # of its predecessor; and the envelope only if counts ever decrease.
        d = np.abs(counts[1:] - counts[:-1])
        if not ((d != 0) & (d / counts[1:] <= 1e-12)).any():
            if bool((counts[1:] >= counts[:-1]).all()):
                return counts, np.zeros(counts.shape[1], dtype=bool)
            return _envelope(counts)
    c = counts.copy()
    prev = c[0].copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(1, c.shape[0]):
            cur = c[i]
            d = np.abs(cur - prev)
            close = (d != 0) & (d / cur <= 1e-12)
            c[i] = np.where(close, prev, cur)
            prev = np.where((d != 0) & ~close, cur, prev)
    return _envelope(c)


def _envelope(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Running maximum over buckets, and the steps where it changed anything."""
    env = np.empty_like(c)
    env[0] = c[0]
    forced = np.zeros(c.shape[1], dtype=bool)
    for i in range(1, c.shape[0]):
        # Row by row: contiguous rows, unlike maximum.accumulate(axis=0)'s strided walk.
        np.maximum(env[i - 1], c[i], out=env[i])
        forced |= env[i] > c[i]
    return env, forced


def _bucket_quantile(
    bounds: np.ndarray, counts: np.ndarray, params: list[np.ndarray], annots: Annotations, suffix: str
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
            + suffix
        )
    nb = bounds.size
    if nb < 2:
        return _q_edges(q, out)
    obs = c[-1]
    rank = q * obs
    # First bucket (excluding +Inf) whose cumulative count reaches the rank. Counts are
    # non-decreasing here and NaN-free wherever the rank is not NaN (the envelope carries a NaN
    # up to the total), so that is the number of buckets below the rank.
    with np.errstate(invalid="ignore"):
        b = np.count_nonzero(c[:-1] < rank[None, :], axis=0)
    b = np.where(np.isnan(rank), nb - 1, b)
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
    with np.errstate(invalid="ignore"):  # inf - inf in buckets of infinite counts
        per = np.diff(np.vstack([np.zeros((1, s)), c]), axis=0)

    def rank_at(x: np.ndarray) -> np.ndarray:
        r = np.zeros(s)
        with np.errstate(invalid="ignore", divide="ignore"):
            for lo, hi, n in zip(lows, bounds, per, strict=True):
                if math.isinf(lo):
                    # A first bucket with no lower bound (its upper bound is <= 0) cannot be
                    # interpolated: Prometheus's BucketFraction counts all of it below any x in it.
                    part = np.where(x > lo, n, 0.0)
                elif math.isinf(hi):
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


def histogram_quantile(
    q: np.ndarray, vec: Vec, annots: Annotations, *, q_pos: str = "", vec_pos: str = ""
) -> Vec:
    """``q_pos``/``vec_pos``: positions of the arguments, which end the annotations about them."""
    bad = q[np.isnan(q) | (q < 0) | (q > 1)]
    for v in np.unique(bad):
        annots.warn(
            f"PromQL warning: quantile value should be between 0 and 1, got {format_float(v)}{_at(q_pos)}"
        )
    return _per_histogram(vec, [q], annots, _bucket_quantile, vec_pos)


def histogram_fraction(
    lower: np.ndarray, upper: np.ndarray, vec: Vec, annots: Annotations, *, vec_pos: str = ""
) -> Vec:
    return _per_histogram(vec, [lower, upper], annots, _bucket_fraction, vec_pos)
