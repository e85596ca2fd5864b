"""Series selection, instant-vector lookback and range-vector windows, vectorised over steps."""

from __future__ import annotations

from typing import Any

import numpy as np

from sloanalysis._go import match_op
from sloanalysis.errors import DataError
from sloanalysis.promql.parse import PromQLError
from sloanalysis.store import METRIC_NAME, Matcher, Series, SeriesStore, is_stale

# MatchOp values are not hashable; their str() is stable ("MatchOp.Equal", ...).


def matcher_groups(vs: Any) -> list[list[Matcher]]:
    """Alternative matcher sets of a selector (``or`` inside braces gives several)."""
    raw_groups = vs.matchers.or_matchers or [vs.matchers.matchers]
    groups = []
    for raw in raw_groups:
        try:
            group = [Matcher.of(m.name, match_op(m.op), m.value) for m in raw]
        except DataError as exc:
            raise PromQLError(str(exc)) from None
        if vs.name:
            group.insert(0, Matcher.of(METRIC_NAME, "=", vs.name))
        groups.append(group)
    return groups


def select(store: SeriesStore, vs: Any) -> list[Series]:
    """Series matching the selector, each once, sorted by labels as Prometheus's index returns them."""
    groups = matcher_groups(vs)
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


def instant_lookup(
    ts: np.ndarray, vals: np.ndarray, eval_times: np.ndarray, lookback_ms: int, closed: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latest sample at or before each eval time within the lookback window.

    Returns (values, present, sample timestamps). A stale marker as the latest sample hides
    the series, which is how staleness ends a series.
    """
    idx = np.searchsorted(ts, eval_times, side="right") - 1
    ok = idx >= 0
    safe = np.maximum(idx, 0)
    if ts.size == 0:
        n = eval_times.size
        return np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64)
    sample_t = ts[safe]
    age_ok = sample_t >= eval_times - lookback_ms if closed else sample_t > eval_times - lookback_ms
    v = vals[safe]
    present = ok & age_ok & ~is_stale(v)
    return v, present, sample_t


def without_stale(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """Samples of a series minus stale markers (range selectors never return them)."""
    stale = is_stale(series.values)
    if not stale.any():
        return series.timestamps, series.values
    keep = ~stale
    return series.timestamps[keep], series.values[keep]
