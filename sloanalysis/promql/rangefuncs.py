"""Functions over range vectors (``rate``, ``*_over_time``, ...), vectorised over steps.

Each function gets one series' samples ``ts``/``vals`` and, for the S steps whose window is not
empty, the slice bounds ``lo``/``hi`` (``hi > lo``). Window contents are walked column by
column (k-th sample of every window at once), which keeps Prometheus's sequential arithmetic
(Kahan sums, running means) while each numpy call covers all steps. Counters of resets and
changes use prefix sums, so their cost does not grow with the window length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from sloanalysis.promql.kahan import kahan_inc, quantile_sorted, sort_nan_first
from sloanalysis.promql.parse import PromQLError


@dataclass
class Window:
    """Windows of one series at the S active steps."""

    ts: np.ndarray
    vals: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    start: np.ndarray  # window start (exclusive) per active step, ms
    end: np.ndarray  # window end (inclusive) per active step, ms
    step_t: np.ndarray  # evaluation timestamp of each active step, ms
    range_ms: int
    params: list[np.ndarray]  # scalar arguments, per active step

    @property
    def count(self) -> np.ndarray:
        return self.hi - self.lo


Result = tuple[np.ndarray, np.ndarray]  # (values, ok) over the S active steps


def _columns(w: Window, first: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(k-th value, k-th timestamp, mask) for k = first, first+1, ... over all windows."""
    maxlen = int(w.count.max()) if w.lo.size else 0
    last = w.vals.size - 1
    for k in range(first, maxlen):
        idx = w.lo + k
        mask = idx < w.hi
        safe = np.minimum(idx, last)
        yield w.vals[safe], w.ts[safe], mask


def _all(w: Window) -> np.ndarray:
    return np.ones(w.lo.size, dtype=bool)


# Above this many window cells, sums use prefix sums instead of exact column-wise Kahan
# summation (relative error ~1e-16 x series length: far below what a dashboard can show).
FAST_CELLS = 2_000_000


def _fast_sums(w: Window) -> np.ndarray | None:
    if int(w.count.sum()) <= FAST_CELLS or not np.isfinite(w.vals).all():
        return None
    center = float(w.vals.mean())  # centring keeps the running sum small
    csum = np.concatenate([[0.0], np.cumsum(w.vals - center)])
    return csum[w.hi] - csum[w.lo] + w.count * center


def sum_over_time(w: Window) -> Result:
    fast = _fast_sums(w)
    if fast is not None:
        return fast, _all(w)
    total = np.zeros(w.lo.size)
    comp = np.zeros(w.lo.size)
    for f, _, m in _columns(w):
        t, c = kahan_inc(f, total, comp)
        total = np.where(m, t, total)
        comp = np.where(m, c, comp)
    return np.where(np.isinf(total), total, total + comp), _all(w)


def avg_over_time(w: Window) -> Result:
    fast = _fast_sums(w)
    if fast is not None:
        return fast / w.count, _all(w)
    # Direct mean with compensation until the running sum would overflow, then incremental mean.
    total = w.vals[w.lo].copy()
    comp = np.zeros(w.lo.size)
    mean = np.zeros(w.lo.size)
    incr = np.zeros(w.lo.size, dtype=bool)
    count = np.ones(w.lo.size)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        for f, _, m in _columns(w, 1):
            count = np.where(m, count + 1, count)
            new_total, new_comp = kahan_inc(f, total, comp)
            direct = m & ~incr
            fits = direct & ~np.isinf(new_total)
            total = np.where(fits, new_total, total)
            comp = np.where(fits, new_comp, comp)
            switch = direct & np.isinf(new_total)
            mean = np.where(switch, total / (count - 1), mean)
            comp = np.where(switch, comp / (count - 1), comp)
            incr = incr | switch
            go = m & incr
            q = (count - 1) / count
            nm, nc = kahan_inc(f / count, q * mean, q * comp)
            mean = np.where(go, nm, mean)
            comp = np.where(go, nc, comp)
        res = np.where(incr, mean + comp, total / count + comp / count)
    return res, _all(w)


def _extreme(w: Window, better: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Result:
    cur = w.vals[w.lo].copy()
    for f, _, m in _columns(w, 1):
        take = m & (better(f, cur) | np.isnan(cur))
        cur = np.where(take, f, cur)
    return cur, _all(w)


def _sparse_extreme(w: Window, pick: np.ufunc) -> np.ndarray:
    """Range max/min via a doubling table: O(n log n) once, then O(1) per window.

    ``np.fmax``/``np.fmin`` skip NaN unless all are NaN, which is exactly how Prometheus's
    running comparison treats NaN.
    """
    table = [w.vals]
    longest = int(w.count.max())
    k = 1
    while (1 << k) <= longest:
        prev, half = table[-1], 1 << (k - 1)
        table.append(pick(prev[:-half], prev[half:]))
        k += 1
    level = np.floor(np.log2(w.count)).astype(np.intp)
    out = np.empty(w.lo.size)
    for lv in np.unique(level):
        sel = level == lv
        t = table[lv]
        out[sel] = pick(t[w.lo[sel]], t[w.hi[sel] - (1 << lv)])
    return out


def max_over_time(w: Window) -> Result:
    if int(w.count.max()) > 8:
        return _sparse_extreme(w, np.fmax), _all(w)
    return _extreme(w, np.greater)


def min_over_time(w: Window) -> Result:
    if int(w.count.max()) > 8:
        return _sparse_extreme(w, np.fmin), _all(w)
    return _extreme(w, np.less)


def _ts_of_extreme(w: Window, better: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Result:
    cur = w.vals[w.lo].copy()
    when = w.ts[w.lo].copy()
    for f, t, m in _columns(w, 1):
        take = m & (better(f, cur) | np.isnan(cur))
        cur = np.where(take, f, cur)
        when = np.where(take, t, when)
    return when / 1000.0, _all(w)


def ts_of_max_over_time(w: Window) -> Result:
    return _ts_of_extreme(w, np.greater_equal)


def ts_of_min_over_time(w: Window) -> Result:
    return _ts_of_extreme(w, np.less_equal)


def count_over_time(w: Window) -> Result:
    return w.count.astype(np.float64), _all(w)


def present_over_time(w: Window) -> Result:
    return np.ones(w.lo.size), _all(w)


def last_over_time(w: Window) -> Result:
    return w.vals[w.hi - 1], _all(w)


def first_over_time(w: Window) -> Result:
    return w.vals[w.lo], _all(w)


def ts_of_last_over_time(w: Window) -> Result:
    return w.ts[w.hi - 1] / 1000.0, _all(w)


def ts_of_first_over_time(w: Window) -> Result:
    return w.ts[w.lo] / 1000.0, _all(w)


def _variance(w: Window) -> np.ndarray:
    s = w.lo.size
    count = np.zeros(s)
    mean, c_mean, aux, c_aux = np.zeros(s), np.zeros(s), np.zeros(s), np.zeros(s)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        for f, _, m in _columns(w):
            count = np.where(m, count + 1, count)
            delta = f - (mean + c_mean)
            nm, nc = kahan_inc(delta / count, mean, c_mean)
            mean, c_mean = np.where(m, nm, mean), np.where(m, nc, c_mean)
            na, nca = kahan_inc(delta * (f - (mean + c_mean)), aux, c_aux)
            aux, c_aux = np.where(m, na, aux), np.where(m, nca, c_aux)
        return (aux + c_aux) / count


def stdvar_over_time(w: Window) -> Result:
    return _variance(w), _all(w)


def stddev_over_time(w: Window) -> Result:
    with np.errstate(invalid="ignore"):
        return np.sqrt(_variance(w)), _all(w)


def _gather(w: Window) -> tuple[np.ndarray, np.ndarray]:
    """Windows as an (S, maxlen) matrix plus validity mask."""
    maxlen = int(w.count.max()) if w.lo.size else 0
    idx = w.lo[:, None] + np.arange(maxlen)[None, :]
    valid = idx < w.hi[:, None]
    mat = w.vals[np.minimum(idx, w.vals.size - 1)]
    return mat, valid


def _median_rows(mat: np.ndarray, valid: np.ndarray) -> np.ndarray:
    srt, counts = sort_nan_first(mat, valid)
    return quantile_sorted(np.full(mat.shape[0], 0.5), srt, counts)


def quantile_over_time(w: Window) -> Result:
    mat, valid = _gather(w)
    srt, counts = sort_nan_first(mat, valid)
    return quantile_sorted(w.params[0], srt, counts), _all(w)


def mad_over_time(w: Window) -> Result:
    mat, valid = _gather(w)
    median = _median_rows(mat, valid)
    with np.errstate(invalid="ignore"):
        dev = np.abs(mat - median[:, None])
    # A NaN sample makes the deviation undefined rather than being sorted away.
    has_nan = (np.isnan(mat) & valid).any(axis=1)
    return np.where(has_nan, np.nan, _median_rows(dev, valid)), _all(w)


def _prefix(flags: np.ndarray) -> np.ndarray:
    """Inclusive prefix sums, so a window [lo, hi) sums items lo+1..hi-1 as P[hi-1] - P[lo]."""
    return np.cumsum(flags)


def changes(w: Window) -> Result:
    v = w.vals
    both_nan = np.isnan(v[1:]) & np.isnan(v[:-1])
    flags = np.concatenate([[0], ((v[1:] != v[:-1]) & ~both_nan).astype(np.int64)])
    p = _prefix(flags)
    return (p[w.hi - 1] - p[w.lo]).astype(np.float64), _all(w)


def resets(w: Window) -> Result:
    v = w.vals
    flags = np.concatenate([[0], (v[1:] < v[:-1]).astype(np.int64)])
    p = _prefix(flags)
    return (p[w.hi - 1] - p[w.lo]).astype(np.float64), _all(w)


def _reset_correction(w: Window) -> np.ndarray:
    v = w.vals
    # Resets are rare: prefix sums over the drops alone (positions j, value before the drop)
    # equal the prefix sums over every sample, since adding 0.0 never changes a float sum.
    at = np.flatnonzero(v[1:] < v[:-1]) + 1
    if at.size == 0:
        return np.zeros(w.lo.size)
    drops = v[at - 1]
    if np.isfinite(drops).all():
        p = np.concatenate([[0.0], np.cumsum(drops)])
        last = np.searchsorted(at, w.hi - 1, side="right")
        first = np.searchsorted(at, w.lo, side="right")
        return p[last] - p[first]
    # Infinite values would poison the prefix sums; add window by window instead.
    total = np.zeros(w.lo.size)
    for k in range(1, int(w.count.max())):
        cur_i = np.minimum(w.lo + k, v.size - 1)
        m = (w.lo + k) < w.hi
        with np.errstate(invalid="ignore"):
            total = total + np.where(m & (v[cur_i] < v[cur_i - 1]), v[cur_i - 1], 0.0)
    return total


def extrapolation_times(
    first_t: np.ndarray, last_t: np.ndarray, start: np.ndarray, end: np.ndarray, count: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seconds to the window start and end, sampled span, average gap and the 1.1x gap threshold."""
    to_start = (first_t - start) / 1000.0
    to_end = (end - last_t) / 1000.0
    sampled = (last_t - first_t) / 1000.0
    avg_gap = sampled / np.maximum(count - 1, 1)
    return to_start, to_end, sampled, avg_gap, avg_gap * 1.1


def extrapolate(
    first_v: np.ndarray,
    last_v: np.ndarray,
    correction: np.ndarray | None,
    first_t: np.ndarray,
    last_t: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    count: np.ndarray,
    range_ms: int,
    is_rate: bool,
    prometheus2: bool,
) -> np.ndarray:
    """Prometheus's ``extrapolatedRate`` arithmetic, element-wise.

    Times and counts may be per step (S,) while values are (S,) or (k, S) for k series sharing
    those sample times: broadcasting keeps every element's operations, and so its rounding,
    the same either way. ``correction`` (counter resets) is ``None`` for ``delta``.
    """
    is_counter = correction is not None
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        result = last_v - first_v
        if correction is not None:
            result = result + correction
        to_start, to_end, sampled, avg_gap, threshold = extrapolation_times(
            first_t, last_t, start, end, count
        )
        if prometheus2:
            # Prometheus 2.x clamps at the counter's zero point before the threshold test.
            if is_counter:
                to_zero = sampled * (first_v / result)
                clamp = (result > 0) & (first_v >= 0) & (to_zero < to_start)
                to_start = np.where(clamp, to_zero, to_start)
            interval = sampled + np.where(to_start < threshold, to_start, avg_gap / 2)
            interval = interval + np.where(to_end < threshold, to_end, avg_gap / 2)
            factor = interval / sampled
        else:
            to_start = np.where(to_start >= threshold, avg_gap / 2, to_start)
            if is_counter:
                to_zero = np.where((result > 0) & (first_v >= 0), sampled * (first_v / result), to_start)
                to_start = np.minimum(to_start, to_zero)
            to_end = np.where(to_end >= threshold, avg_gap / 2, to_end)
            factor = (sampled + to_start + to_end) / sampled
        if is_rate:
            factor = factor / (range_ms / 1000.0)
        return result * factor


def _extrapolated(w: Window, is_counter: bool, is_rate: bool, prometheus2: bool) -> Result:
    first_i, last_i = w.lo, w.hi - 1
    res = extrapolate(
        w.vals[first_i],
        w.vals[last_i],
        _reset_correction(w) if is_counter else None,
        w.ts[first_i],
        w.ts[last_i],
        w.start,
        w.end,
        w.count,
        w.range_ms,
        is_rate,
        prometheus2,
    )
    return res, w.count >= 2


def rate(w: Window, prometheus2: bool = False) -> Result:
    return _extrapolated(w, True, True, prometheus2)


def increase(w: Window, prometheus2: bool = False) -> Result:
    return _extrapolated(w, True, False, prometheus2)


def delta(w: Window, prometheus2: bool = False) -> Result:
    return _extrapolated(w, False, False, prometheus2)


def instant_change(v1: np.ndarray, v0: np.ndarray, dt: np.ndarray, is_rate: bool) -> np.ndarray:
    """``irate``/``idelta`` of the last two samples; ``dt`` (ms) may broadcast against values."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        res = v1 - v0
        if is_rate:
            res = np.where(v1 < v0, v1, res) / (dt / 1000.0)
    return res


def _instant(w: Window, is_rate: bool) -> Result:
    i1 = w.hi - 1
    i0 = np.maximum(w.hi - 2, 0)
    dt = (w.ts[i1] - w.ts[i0]).astype(np.float64)
    ok = (w.count >= 2) & (dt != 0)
    return instant_change(w.vals[i1], w.vals[i0], dt, is_rate), ok


def irate(w: Window) -> Result:
    return _instant(w, True)


def idelta(w: Window) -> Result:
    return _instant(w, False)


def _regression(w: Window, intercept_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = w.lo.size
    n = np.zeros(s)
    sx, cx, sy, cy, sxy, cxy, sx2, cx2 = (np.zeros(s) for _ in range(8))
    init_y = w.vals[w.lo]
    const_y = np.ones(s, dtype=bool)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        for f, t, m in _columns(w):
            const_y = const_y & ~(m & (f != init_y))
            n = np.where(m, n + 1, n)
            x = (t - intercept_t) / 1e3
            for acc, term in (((sx, cx), x), ((sy, cy), f), ((sxy, cxy), x * f), ((sx2, cx2), x * x)):
                a, c = kahan_inc(term, acc[0], acc[1])
                acc[0][...] = np.where(m, a, acc[0])
                acc[1][...] = np.where(m, c, acc[1])
        sx, sy, sxy, sx2 = sx + cx, sy + cy, sxy + cxy, sx2 + cx2
        cov = sxy - sx * sy / n
        var = sx2 - sx * sx / n
        slope = cov / var
        intercept = sy / n - slope * sx / n
        const_inf = const_y & np.isinf(init_y)
        slope = np.where(const_y, np.where(const_inf, np.nan, 0.0), slope)
        intercept = np.where(const_y, np.where(const_inf, np.nan, init_y), intercept)
    return slope, intercept


def deriv(w: Window) -> Result:
    slope, _ = _regression(w, w.ts[w.lo])
    return slope, w.count >= 2


def predict_linear(w: Window) -> Result:
    slope, intercept = _regression(w, w.step_t)
    with np.errstate(invalid="ignore", over="ignore"):  # Inf slopes: as Go's float arithmetic
        return slope * w.params[0] + intercept, w.count >= 2


def double_exponential_smoothing(w: Window) -> Result:
    sf, tf = w.params
    bad_sf = (sf <= 0) | (sf >= 1)
    if bad_sf.any():
        raise PromQLError(f"invalid smoothing factor. Expected: 0 < sf < 1, got: {sf[bad_sf][0]:f}")
    bad_tf = (tf <= 0) | (tf >= 1)
    if bad_tf.any():
        raise PromQLError(f"invalid trend factor. Expected: 0 < tf < 1, got: {tf[bad_tf][0]:f}")
    ok = w.count >= 2
    v = w.vals
    nxt = np.minimum(w.lo + 1, v.size - 1)
    s1 = v[w.lo].copy()
    b = v[nxt] - v[w.lo]
    s0 = np.zeros(w.lo.size)
    with np.errstate(invalid="ignore", over="ignore"):
        for k, (f, _, m) in enumerate(_columns(w, 1), start=1):
            x = sf * f
            trend = b if k == 1 else tf * (s1 - s0) + (1 - tf) * b
            b = np.where(m, trend, b)
            y = (1 - sf) * (s1 + b)
            s0 = np.where(m, s1, s0)
            s1 = np.where(m, x + y, s1)
    return s1, ok


RANGE_FUNCTIONS: dict[str, Callable[[Window], Result]] = {
    "avg_over_time": avg_over_time,
    "changes": changes,
    "count_over_time": count_over_time,
    "deriv": deriv,
    "double_exponential_smoothing": double_exponential_smoothing,
    "first_over_time": first_over_time,
    "holt_winters": double_exponential_smoothing,
    "idelta": idelta,
    "irate": irate,
    "last_over_time": last_over_time,
    "mad_over_time": mad_over_time,
    "max_over_time": max_over_time,
    "min_over_time": min_over_time,
    "predict_linear": predict_linear,
    "present_over_time": present_over_time,
    "quantile_over_time": quantile_over_time,
    "resets": resets,
    "stddev_over_time": stddev_over_time,
    "stdvar_over_time": stdvar_over_time,
    "sum_over_time": sum_over_time,
    "ts_of_first_over_time": ts_of_first_over_time,
    "ts_of_last_over_time": ts_of_last_over_time,
    "ts_of_max_over_time": ts_of_max_over_time,
    "ts_of_min_over_time": ts_of_min_over_time,
}
EXTRAPOLATED: dict[str, Callable[[Window, bool], Result]] = {
    "delta": delta,
    "increase": increase,
    "rate": rate,
}
