"""Series selection, instant-vector lookback and range-vector windows, vectorised over steps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sloanalysis._go import match_op
from sloanalysis.errors import DataError
from sloanalysis.promql.parse import PromQLError
from sloanalysis.store import METRIC_NAME, STALE_NAN_BITS, Matcher, Series, SeriesStore, is_stale

# MatchOp values are not hashable; their str() is stable ("MatchOp.Equal", ...).


def matcher_groups(
    vs: Any, *, prometheus2: bool = False, decoded: Mapping[str, str] | None = None
) -> list[list[Matcher]]:
    """Alternative matcher sets of a selector (``or`` inside braces gives several); regexes
    as Prometheus 3 compiles them (``.`` matches a newline) or, with ``prometheus2``, as 2.x.
    ``decoded``: values the parser misread from byte escapes, as Go reads them."""
    raw_groups = vs.matchers.or_matchers or [vs.matchers.matchers]
    decoded = decoded or {}
    groups = []
    for raw in raw_groups:
        try:
            group = [
                Matcher.of(
                    m.name, match_op(m.op), decoded.get(m.value, m.value), dot_matches_newline=not prometheus2
                )
                for m in raw
            ]
        except DataError as exc:
            raise PromQLError(str(exc)) from None
        if vs.name:
            group.insert(0, Matcher.of(METRIC_NAME, "=", vs.name))
        groups.append(group)
    return groups


def select(
    store: SeriesStore, vs: Any, *, prometheus2: bool = False, decoded: Mapping[str, str] | None = None
) -> list[Series]:
    """Series matching the selector, each once, sorted by labels as Prometheus's index returns them."""
    groups = matcher_groups(vs, prometheus2=prometheus2, decoded=decoded)
    if len(groups) == 1:
        return sorted(store.select(groups[0]), key=lambda s: s.labels)
    seen: set[int] = set()
    out = []
    for group in groups:
        for s in store.select(group):
            if id(s) not in seen:
                seen.add(id(s))
                out.append(s)
    return sorted(out, key=lambda s: s.labels)


# Below this many keys numpy's binary search is as cheap as working out the grid.
_GRID_MIN_KEYS = 512
# Scrape timestamps are a few regular runs (one per gap or restart); beyond this many runs per
# key the arithmetic per run stops paying and the binary search is used.
_GRID_MAX_RUNS_PER_KEY = 1 / 64


def count_at_or_before(ts: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``np.searchsorted(ts, keys, side="right")`` for sorted int64 ``ts`` and ``keys``.

    A scrape target's timestamps are a few runs on one interval ``d`` (``ts[i+1] - ts[i] == d``),
    broken only by gaps. Within a run starting at sample ``a`` (time ``t0``) and ending before
    sample ``b``, a key ``t0 <= k < ts[b]`` has ``a + (k - t0) // d + 1`` samples at or before it
    (at most ``b``): exact integer arithmetic, found run by run over the sorted keys instead of
    a 17-level binary search per key. Other inputs (unsorted keys, floats, many gaps, few keys)
    take the binary search. ``side="left"`` is ``count_at_or_before(ts, keys - 1)`` for ints.
    """
    n = ts.size
    if (
        keys.size < _GRID_MIN_KEYS
        or n < 2
        or ts.dtype != np.int64
        or keys.dtype != np.int64
        or not bool((keys[1:] >= keys[:-1]).all())
    ):
        return np.searchsorted(ts, keys, side="right")
    gaps = np.diff(ts)
    d = int(gaps[0])
    starts = np.flatnonzero(gaps != d) + 1
    if d <= 0 or starts.size > keys.size * _GRID_MAX_RUNS_PER_KEY:
        return np.searchsorted(ts, keys, side="right")
    run_first = [0, *starts.tolist()]
    run_end = [*starts.tolist(), n]
    # Keys from each run's first sample on, up to the next run's first sample.
    key_from = np.searchsorted(keys, ts[run_first], side="left").tolist()
    key_to = [*key_from[1:], keys.size]
    out = np.empty(keys.size, dtype=np.intp)
    out[: key_from[0]] = 0
    for a, b, lo, hi in zip(run_first, run_end, key_from, key_to, strict=True):
        if hi > lo:
            part = out[lo:hi]
            np.floor_divide(keys[lo:hi] - ts[a], d, out=part)
            part += a + 1
            np.minimum(part, b, out=part)
    return out


def instant_lookup(
    ts: np.ndarray, vals: np.ndarray, eval_times: np.ndarray, lookback_ms: int, closed: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latest sample at or before each eval time within the lookback window.

    Returns (values, present, sample timestamps). A stale marker as the latest sample hides
    the series, which is how staleness ends a series.
    """
    n = eval_times.size
    if ts.size == 0:
        return np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64)
    idx = count_at_or_before(ts, eval_times)
    idx -= 1
    np.maximum(idx, 0, out=idx)
    sample_t = ts.take(idx)
    v = np.asarray(vals.take(idx), dtype=np.float64)
    # Age of the sample; negative where no sample precedes the eval time (idx was -1), which
    # as unsigned is huge: one comparison checks both "exists" and "recent enough".
    age = np.asarray(eval_times - sample_t, dtype=np.int64).view(np.uint64)
    present = age <= lookback_ms if closed else age < lookback_ms
    present &= v.view(np.uint64) != np.uint64(STALE_NAN_BITS)
    return v, present, sample_t


def without_stale(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """Samples of a series minus stale markers (range selectors never return them)."""
    stale = is_stale(series.values)
    if not stale.any():
        return series.timestamps, series.values
    keep = ~stale
    return series.timestamps[keep], series.values[keep]
