"""Range functions over many series that share one timestamp array, all at once.

Series scraped from one target carry identical sample times, so window bounds, first/last
sample times and everything derived from them (extrapolation intervals, average gaps) are the
same for all of them: they are computed once per step here, as (S,) arrays, while only the
per-series values are gathered, row by row, into (k, S) matrices. The arithmetic is the very
function the per-series path uses (``rangefuncs.extrapolate`` etc.), applied with numpy
broadcasting, so every element sees the same operations in the same order: results are
bit-identical to evaluating series one at a time. ``rate``-style functions work in column
blocks (gather, correct, extrapolate while the block is in cache), spread over a few threads
for big inputs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np

from sloanalysis.promql.rangefuncs import (
    Window,
    _reset_correction,
    extrapolate,
    extrapolation_times,
    instant_change,
)
from sloanalysis.promql.selectors import count_at_or_before

BATCHED = frozenset(
    {
        "changes",
        "count_over_time",
        "delta",
        "first_over_time",
        "idelta",
        "increase",
        "irate",
        "last_over_time",
        "present_over_time",
        "rate",
        "resets",
        "ts_of_first_over_time",
        "ts_of_last_over_time",
    }
)
# Cells (series x steps) per block of the fused arithmetic: temporaries stay cache-sized.
_BLOCK_CELLS = 1 << 17


def shared_time_groups(timestamps: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rows whose timestamp arrays are equal, as (row indices, the shared timestamps)."""
    reps: list[tuple[np.ndarray, list[int]]] = []
    by_shape: dict[tuple[int, int, int], list[int]] = {}
    for i, ts in enumerate(timestamps):
        key = (ts.size, int(ts[0]), int(ts[-1])) if ts.size else (0, 0, 0)
        for r in by_shape.setdefault(key, []):
            rep, rows = reps[r]
            if rep is ts or np.array_equal(rep, ts):
                rows.append(i)
                break
        else:
            by_shape[key].append(len(reps))
            reps.append((ts, [i]))
    return [(np.asarray(rows, dtype=np.intp), ts) for ts, rows in reps]


def _gather_into(values: Sequence[np.ndarray], idx: np.ndarray, out: np.ndarray) -> None:
    """``out[r] = values[r][idx]`` for every row; runs of consecutive indices become slice copies.

    With a step equal to the scrape interval, window ends advance one sample per step except
    at gaps in the data, so a block is mostly one or a few runs.
    """
    n = idx.size
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1 if n > 1 else np.empty(0, dtype=np.intp)
    if breaks.size > 8:
        for r, v in enumerate(values):
            np.take(v, idx, out=out[r])
        return
    edges = [0, *breaks.tolist(), n]
    for r, v in enumerate(values):
        row = out[r]
        for a, b in pairwise(edges):
            first = int(idx[a])
            row[a:b] = v[first : first + (b - a)]


def _merge(starts: np.ndarray, ends: np.ndarray) -> list[tuple[int, int]]:
    """Union of the half-open spans ``[starts[j], ends[j])`` (both non-decreasing)."""
    out: list[tuple[int, int]] = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


class _Corrections:
    """Counter-reset corrections of k series: the sum of the values before each drop in a window.

    As in ``rangefuncs._reset_correction`` (prefix sums over the drops alone, hence the same
    floats); but with window bounds that never move back, only one contiguous run of steps per
    series holds a drop, so only that run is stored. Everywhere else the correction is 0.0.
    """

    def __init__(
        self,
        ts: np.ndarray,
        values: Sequence[np.ndarray],
        first_i: np.ndarray,
        last_i: np.ndarray,
        start: np.ndarray,
        end: np.ndarray,
        range_ms: int,
    ) -> None:
        self.runs: list[tuple[int, int, int, np.ndarray]] = []  # (row, first step, end step, values)
        monotone = bool((first_i[1:] >= first_i[:-1]).all() and (last_i[1:] >= last_i[:-1]).all())
        for r, v in enumerate(values):
            at = np.flatnonzero(v[1:] < v[:-1]) + 1
            if at.size == 0:
                continue
            drops = v[at - 1]
            if not monotone or not np.isfinite(drops).all():
                w = Window(ts, v, first_i, last_i + 1, start, end, end, range_ms, [])
                self.runs.append((r, 0, first_i.size, _reset_correction(w)))
                continue
            p = np.concatenate([[0.0], np.cumsum(drops)])
            # Steps whose window holds drop j: from the first window reaching it to the first
            # one opening at or after it. Overlapping spans of nearby drops are merged.
            s0 = np.searchsorted(last_i, at, side="left")
            s1 = np.searchsorted(first_i, at, side="left")
            spans = [(int(s0[0]), int(s1[-1]))] if at.size > 64 else _merge(s0, s1)
            for a, b in spans:
                if b > a:
                    upto_last = np.searchsorted(at, last_i[a:b], side="right")
                    upto_first = np.searchsorted(at, first_i[a:b], side="right")
                    self.runs.append((r, a, b, p[upto_last] - p[upto_first]))

    def fill(self, a: int, b: int, out: np.ndarray) -> None:
        """Corrections of steps ``a:b`` into ``out`` (k, b - a)."""
        out[...] = 0.0
        for r, s0, s1, vals in self.runs:
            lo, hi = max(s0, a), min(s1, b)
            if hi > lo:
                out[r, lo - a : hi - a] = vals[lo - s0 : hi - s0]


def window_bounds(
    ts: np.ndarray, start: np.ndarray, end: np.ndarray, left_closed: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Slice bounds ``lo, hi`` (``hi >= lo``) of the windows ``(start, end]`` (``[start, end]``
    when ``left_closed``) in the sorted sample times ``ts``.

    ``hi`` counts the samples at or before each end, ``lo`` those at or before each start (before
    it when left-closed: at or before ``start - 1``, times being integers). A left-open window's
    start is usually an earlier step's end (a range that is a multiple of the step): then its
    ``lo`` is that step's count, and only the first steps need counting of their own.
    """
    counted = count_at_or_before(ts, end)
    m = None if left_closed else _steps_back(start, end)
    if m is None:
        lo = count_at_or_before(ts, start - 1 if left_closed else start)
    else:
        lo = np.empty_like(counted)
        lo[:m] = count_at_or_before(ts, start[:m])
        lo[m:] = counted[:-m]
    return lo, np.maximum(counted, lo)


def _steps_back(start: np.ndarray, end: np.ndarray) -> int | None:
    """``m`` with ``start[j] == end[j - m]`` for every ``j >= m`` (``0 < m < size``), if any."""
    if start.size < 2:
        return None
    step = int(end[1]) - int(end[0])
    back = int(end[0]) - int(start[0])
    if step <= 0 or back <= 0 or back % step or back // step >= start.size:
        return None
    m = back // step
    return m if np.array_equal(start[m:], end[:-m]) else None


def evaluate(
    name: str,
    ts: np.ndarray,
    values: Sequence[np.ndarray],
    start: np.ndarray,
    end: np.ndarray,
    range_ms: int,
    left_closed: bool,
    prometheus2: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """``name`` over windows ``(start, end]`` of k series sharing ``ts``: (values, ok), each (k, S).

    Values where ``ok`` is false are unspecified.
    """
    k, s = len(values), start.size
    lo, hi = window_bounds(ts, start, end, left_closed)
    count = hi - lo
    if k == 0 or ts.size == 0:
        return np.zeros((k, s)), np.zeros((k, s), dtype=bool)
    # Empty windows get in-range (meaningless) indices; their results are zeroed below, as the
    # per-series path leaves them. Clipping keeps both index arrays non-decreasing.
    first_i = np.minimum(lo, ts.size - 1)
    last_i = np.maximum(hi - 1, 0)
    res, good = _compute(name, ts, values, first_i, last_i, start, end, count, range_ms, prometheus2)
    empty = np.flatnonzero(count == 0)
    if empty.size:
        res[:, empty] = 0.0
    return res, np.broadcast_to(good, (k, s)).copy()


def _compute(
    name: str,
    ts: np.ndarray,
    values: Sequence[np.ndarray],
    first_i: np.ndarray,
    last_i: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    count: np.ndarray,
    range_ms: int,
    prometheus2: bool,
) -> tuple[np.ndarray, np.ndarray]:
    k, s = len(values), count.size
    if name == "count_over_time":
        return np.broadcast_to(count.astype(np.float64), (k, s)).copy(), count > 0
    if name == "present_over_time":
        return np.ones((k, s)), count > 0
    if name in ("first_over_time", "last_over_time"):
        out = np.empty((k, s))
        _gather_into(values, first_i if name == "first_over_time" else last_i, out)
        return out, count > 0
    if name == "ts_of_first_over_time":
        return np.broadcast_to(ts[first_i] / 1000.0, (k, s)).copy(), count > 0
    if name == "ts_of_last_over_time":
        return np.broadcast_to(ts[last_i] / 1000.0, (k, s)).copy(), count > 0
    if name in ("resets", "changes"):
        out = np.empty((k, s))
        for r, v in enumerate(values):
            if name == "resets":
                flags = np.concatenate([[0], (v[1:] < v[:-1]).astype(np.int64)])
            else:
                both_nan = np.isnan(v[1:]) & np.isnan(v[:-1])
                flags = np.concatenate([[0], ((v[1:] != v[:-1]) & ~both_nan).astype(np.int64)])
            p = np.cumsum(flags)
            out[r] = (p[last_i] - p[first_i]).astype(np.float64)
        return out, count > 0
    if name in ("irate", "idelta"):
        prev_i = np.maximum(last_i - 1, 0)
        dt = (ts[last_i] - ts[prev_i]).astype(np.float64)
        v1, v0 = np.empty((k, s)), np.empty((k, s))
        _gather_into(values, last_i, v1)
        _gather_into(values, prev_i, v0)
        return instant_change(v1, v0, dt, name == "irate"), (count >= 2) & (dt != 0)
    res = _extrapolated(name, ts, values, first_i, last_i, start, end, count, range_ms, prometheus2)
    return res, count >= 2


def _extrapolated(
    name: str,
    ts: np.ndarray,
    values: Sequence[np.ndarray],
    first_i: np.ndarray,
    last_i: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    count: np.ndarray,
    range_ms: int,
    prometheus2: bool,
) -> np.ndarray:
    """``rate``/``increase``/``delta``, fused block by block: gather, correct, extrapolate."""
    k, s = len(values), count.size
    corr = None if name == "delta" else _Corrections(ts, values, first_i, last_i, start, end, range_ms)
    first_t, last_t = ts[first_i], ts[last_i]
    res = np.empty((k, s))
    width = min(s, max(256, _BLOCK_CELLS // max(k, 1)))
    geometry = None
    if corr is not None:
        geometry = step_geometry(first_t, last_t, start, end, count, range_ms, name == "rate", prometheus2)

    def run(blocks: range) -> None:
        first_v, last_v, corr_v = np.empty((k, width)), np.empty((k, width)), np.empty((k, width))
        for a in blocks:
            b = min(a + width, s)
            n = b - a
            _gather_into(values, first_i[a:b], first_v[:, :n])
            _gather_into(values, last_i[a:b], last_v[:, :n])
            if corr is not None:
                corr.fill(a, b, corr_v[:, :n])
            res[:, a:b] = _extrapolate_block(
                first_v[:, :n],
                last_v[:, :n],
                None if corr is None else corr_v[:, :n],
                first_t[a:b],
                last_t[a:b],
                start[a:b],
                end[a:b],
                count[a:b],
                range_ms,
                name == "rate",
                prometheus2,
                None if geometry is None else (geometry[0][a:b], geometry[1][a:b]),
            )

    _in_parallel(run, range(0, s, width), k * s)
    return res


def _extrapolate_block(
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
    geometry: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``extrapolate`` for a block of k series, skipping the counter zero-point clamp where it
    provably cannot apply.

    Without the clamp the extrapolation factor depends only on sample times, so it is one
    number per step. The clamp replaces the distance to the window start by
    ``sampled * first / increase`` when that is smaller, i.e. when ``first * sampled /
    to_start < increase``. Each cell is tested that way with ``sampled / to_start`` shrunk by
    1e-9 (far above rounding), so no clamped cell is missed; the rest keep ``increase *
    factor``, the very operations ``extrapolate`` performs there. The flagged cells (where a
    counter starts or restarts near zero) take ``extrapolate`` itself, gathered one by one.
    A product near the smallest normal float could lose the margin to rounding, so cells with
    a tiny first value (below 2**-960, not zero: zero multiplies exactly) are flagged too.
    """
    args = (first_t, last_t, start, end, count, range_ms, is_rate, prometheus2)
    if correction is None:
        return extrapolate(first_v, last_v, None, *args)
    if geometry is None:
        geometry = step_geometry(first_t, last_t, start, end, count, range_ms, is_rate, prometheus2)
    factor, scale = geometry
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        result = last_v - first_v
        result = result + correction
        out = result * factor
        flagged = first_v * scale < result
        flagged |= (first_v.view(np.uint64) - np.uint64(1)) < _TINY_BITS
    if not flagged.any():  # the common case: cheaper to check than to list nothing
        return out
    rows, cols = np.nonzero(flagged)
    if rows.size > first_v.size // 8:  # cheaper to recompute everything than to gather
        return extrapolate(first_v, last_v, correction, *args)
    cells = (first_v[rows, cols], last_v[rows, cols], correction[rows, cols])
    times = (first_t[cols], last_t[cols], start[cols], end[cols], count[cols])
    out[rows, cols] = extrapolate(*cells, *times, range_ms, is_rate, prometheus2)
    return out


def step_geometry(
    first_t: np.ndarray,
    last_t: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    count: np.ndarray,
    range_ms: int,
    is_rate: bool,
    prometheus2: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Per step: the unclamped extrapolation factor and the clamp test's scale (see
    :func:`_extrapolate_block`).

    Both depend only on the window's shape (distances of the first and last sample to its
    edges, the span between them, the sample count), which on a scrape grid stays the same
    for long runs of steps: each run's shape is computed once and repeated. The result is the
    same, element for element, as computing every step.
    """
    runs = _shape_runs(first_t, last_t, start, end, count)
    if runs is None:
        return _geometry(first_t, last_t, start, end, count, range_ms, is_rate, prometheus2)
    firsts, lengths = runs
    factor, scale = _geometry(
        first_t[firsts],
        last_t[firsts],
        start[firsts],
        end[firsts],
        count[firsts],
        range_ms,
        is_rate,
        prometheus2,
    )
    return np.repeat(factor, lengths), np.repeat(scale, lengths)


def _shape_runs(
    first_t: np.ndarray, last_t: np.ndarray, start: np.ndarray, end: np.ndarray, count: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """(first step, length) of each run of steps whose windows have one shape; None when the
    runs are too short to pay for finding them."""
    s = count.size
    if s < 1024:
        return None
    to_first, to_last, span = first_t - start, end - last_t, last_t - first_t
    same = to_first[1:] == to_first[:-1]
    same &= to_last[1:] == to_last[:-1]
    same &= span[1:] == span[:-1]
    same &= count[1:] == count[:-1]
    breaks = np.flatnonzero(~same)
    if breaks.size > s // 8:
        return None
    firsts = np.concatenate([[0], breaks + 1])
    return firsts, np.diff(np.append(firsts, s))


def _geometry(
    first_t: np.ndarray,
    last_t: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    count: np.ndarray,
    range_ms: int,
    is_rate: bool,
    prometheus2: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """``extrapolate``'s factor without the clamp, step by step, and the clamp test's scale."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        to_start, to_end, sampled, avg_gap, threshold = extrapolation_times(
            first_t, last_t, start, end, count
        )
        if prometheus2:
            clamp_against = to_start
            interval = sampled + np.where(to_start < threshold, to_start, avg_gap / 2)
            interval = interval + np.where(to_end < threshold, to_end, avg_gap / 2)
            factor = interval / sampled
        else:
            clamp_against = np.where(to_start >= threshold, avg_gap / 2, to_start)
            to_end = np.where(to_end >= threshold, avg_gap / 2, to_end)
            factor = (sampled + clamp_against + to_end) / sampled
        if is_rate:
            factor = factor / (range_ms / 1000.0)
        # Infinite where nothing can clamp (no distance to the start; steps with fewer than two
        # samples, which are not reported): 0 * inf is NaN and NaN < x is false.
        scale = np.where((count >= 2) & (clamp_against > 0), sampled / clamp_against, np.inf) * (1 - 1e-9)
    return factor, scale


# Positive floats below 2**-960 (subnormals included) are the bit patterns 1 .. _TINY_BITS,
# so ``bits - 1 < _TINY_BITS`` picks them; zero wraps around and negative floats lie above.
# Times scales down to 1e-13 (1 ms sampled against centuries), they stay above 2**-1022.
_TINY_BITS = np.uint64(np.array([2.0**-960]).view(np.uint64)[0] - 1)


# Big evaluations split their blocks over threads: numpy releases the GIL inside each kernel,
# and every block writes its own columns, so results do not depend on the split.
_PARALLEL_CELLS = 1 << 21
_MAX_WORKERS = 4
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _workers() -> int:
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return max(1, min(_MAX_WORKERS, len(usable)))


def _in_parallel(run: Callable[[range], None], blocks: range, cells: int) -> None:
    global _pool
    workers = _workers()
    if workers < 2 or cells < _PARALLEL_CELLS or len(blocks) < 2:
        run(blocks)
        return
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_MAX_WORKERS, thread_name_prefix="promql")
        pool = _pool
    parts = [blocks[w::workers] for w in range(workers)]
    futures = [pool.submit(run, part) for part in parts[1:]]
    run(parts[0])
    for future in futures:
        future.result()
