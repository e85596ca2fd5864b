"""Native-histogram evaluation: the histogram_* functions and range functions over series that
carry histogram samples, following Prometheus 3's ``promql/functions.go``.

Only rows (series) that hold a histogram come here; float rows keep the vectorised float path.
A range function walks the steps of such a row one by one: each window is split into its float
and histogram samples, and Prometheus's rule for that function decides what a mixed window
gives (ignored histograms with an info, or a warning and no result).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from sloanalysis.nativehist import (
    CUSTOM_BUCKETS_SCHEMA,
    NAN_RESULT,
    NAN_SKEW,
    BucketView,
    FloatHistogram,
    IncompatibleHistograms,
    bucket_view,
    fraction,
    fraction_of_buckets,
    has_nan_observations,
    quantile,
    quantile_noted,
    variance,
)
from sloanalysis.promql import aggregate as agg
from sloanalysis.promql import densehist
from sloanalysis.promql.rangefuncs import EXTRAPOLATED, RANGE_FUNCTIONS, Window
from sloanalysis.promql.values import Annotations, Vec, hist_cells, is_histogram
from sloanalysis.store import METRIC_NAME, Labels

# -- annotations (texts as Prometheus's util/annotations prints them) ---------------------------


def mixed_warning(metric: str, pos: str) -> str:
    return f'PromQL warning: encountered a mix of histograms and floats for metric name "{metric}" ({pos})'


def schema_mix_warning(metric: str, pos: str) -> str:
    return (
        "PromQL warning: vector contains a mix of histograms with exponential and custom buckets "
        f'schemas for metric name "{metric}" ({pos})'
    )


def ignored_info(metric: str, pos: str) -> str:
    return (
        "PromQL info: ignored histograms in a range containing both floats and histograms for "
        f'metric name "{metric}" ({pos})'
    )


def reconciled_info(operation: str, pos: str) -> str:
    return f"PromQL info: mismatched custom buckets were reconciled during {operation} ({pos})"


# -- vectors --------------------------------------------------------------------------------------


def scale_cells(cells: np.ndarray, factor: float) -> np.ndarray:
    """Every histogram cell multiplied by ``factor`` (None cells stay None)."""
    out = cells.copy()
    for idx in zip(*np.nonzero(is_histogram(cells)), strict=True):
        out[idx] = cells[idx].scale(factor)
    return out


def stack(*parts: Vec) -> Vec:
    """Rows of several vectors over the same steps, one after the other."""
    n_steps = parts[0].values.shape[1] if parts else 0
    parts = tuple(p for p in parts if p.labels)
    if not parts:
        return Vec.empty(n_steps)
    if len(parts) == 1:
        return parts[0]
    labels = [lab for p in parts for lab in p.labels]
    values = np.concatenate([p.values for p in parts])
    present = np.concatenate([p.present for p in parts])
    drop = None
    if any(p.drop is not None for p in parts):
        marks = [p.drop if p.drop is not None else np.zeros(len(p.labels), bool) for p in parts]
        drop = np.concatenate(marks)
    hist = None
    if any(p.hist is not None for p in parts):
        hist = np.concatenate([p.hist if p.hist is not None else hist_cells(p.values.shape) for p in parts])
    dense: dict[int, densehist.DenseRow] = {}
    offset = 0
    for p in parts:
        dense.update({offset + i: d for i, d in (p.dense or {}).items()})
        offset += len(p.labels)
    return Vec(labels, values, present, hist=hist, dense=dense or None, drop=drop)


def _map_histograms(
    vec: Vec,
    fn: Callable[[FloatHistogram, int, int], float | None],
    dense_views: Callable[[BucketView, int, int], float | None] | None = None,
    dense_block: Callable[[densehist.DenseRow, np.ndarray], np.ndarray] | None = None,
) -> Vec:
    """Float results of ``fn(histogram, step, row)`` on each histogram point; name dropped. Rows
    held densely go through ``dense_block(row, steps)`` (NaN where it leaves a step to the rest)
    and then ``dense_views(buckets, step, row)`` instead, when given."""
    mask = vec.hist_mask()
    values = np.full(vec.values.shape, np.nan)
    present = np.zeros(vec.values.shape, dtype=bool)
    assert vec.hist is not None or not mask.any()
    if (dense_views is not None or dense_block is not None) and vec.dense and densehist.ENABLED:
        mask = mask.copy()
        for i, row in vec.dense.items():
            steps = np.flatnonzero(mask[i] & row.valid)
            if dense_block is not None and steps.size:
                got_block = dense_block(row, steps)
                done = ~np.isnan(got_block)
                values[i, steps[done]] = got_block[done]
                present[i, steps[done]] = True
                mask[i, steps[done]] = False
                steps = steps[~done]
            if dense_views is None:  # the rest (NaN answers of the block) per histogram below
                continue
            for t, view in densehist.bucket_views(row, steps):
                got = dense_views(view, t, i)
                if got is not None:
                    values[i, t] = got
                    present[i, t] = True
            mask[i, steps] = False
    for i, t in zip(*np.nonzero(mask), strict=True):
        assert vec.hist is not None
        got = fn(vec.hist[i, t], int(t), int(i))
        if got is not None:
            values[i, t] = got
            present[i, t] = True
    keep = present.any(axis=1)
    rows = np.flatnonzero(keep)
    # The name goes, as from any function's result; marked rather than dropped here so that the
    # engine can delay its removal (Prometheus's DropName) when that option is on.
    drop = np.ones(len(rows), dtype=bool)
    return Vec([vec.labels[i] for i in rows], values[rows], present[rows], drop=drop)


def histogram_property(name: str, vec: Vec) -> Vec:
    """``histogram_count/sum/avg/stddev/stdvar`` of each histogram point (floats are ignored)."""
    fns: dict[str, Callable[[FloatHistogram], float]] = {
        "histogram_count": lambda h: h.count,
        "histogram_sum": lambda h: h.sum,
        "histogram_avg": lambda h: h.sum / h.count if h.count else math.nan,
        "histogram_stdvar": variance,
        "histogram_stddev": lambda h: math.sqrt(variance(h)),
    }
    fn = fns[name]
    block = _DENSE_PROPERTIES.get(name)
    return _map_histograms(
        vec,
        lambda h, _t, _i: fn(h),
        dense_block=None if block is None else lambda row, steps: block(row.data[steps]),
    )


def _dense_avg(data: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(data[:, 0] != 0, data[:, 1] / data[:, 0], np.nan)


# histogram_count/sum/avg of dense rows: columns of the row (a NaN result goes the per-point way,
# which gives the same NaN).
_DENSE_PROPERTIES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "histogram_count": lambda data: data[:, 0],
    "histogram_sum": lambda data: data[:, 1],
    "histogram_avg": _dense_avg,
}


def _nan_info(text: str, labels: Labels, pos: str) -> str:
    """Prometheus's NaN-observation infos: ``for metric name "x"`` when the series has a name."""
    name = dict(labels).get(METRIC_NAME, "")
    return f"PromQL info: {text}" + (f' for metric name "{name}"' if name else "") + f" ({pos})"


_QUANTILE_NOTES = {
    NAN_RESULT: "input to histogram_quantile has NaN observations, result is NaN",
    NAN_SKEW: "input to histogram_quantile has NaN observations, result is skewed higher",
}
_FRACTION_NOTE = "input to histogram_fraction has NaN observations, which are excluded from all fractions"


def histogram_quantile(q: np.ndarray, vec: Vec, annots: Annotations, pos: str) -> Vec:
    """Native ``histogram_quantile``; ``pos`` (of the quantile argument, as Prometheus reports
    them) goes into the infos about NaN observations."""
    qs = q.tolist()

    def of_view(view: BucketView, t: int, i: int) -> float:
        qt = qs[t]
        if math.isnan(qt) or qt < 0 or qt > 1 or view.count == 0:  # quantile()'s early answers
            return quantile(qt, _EMPTY if view.count == 0 else _ONE)
        value, note = quantile_noted(qt, view)
        if note is not None:
            annots.info(_nan_info(_QUANTILE_NOTES[note], vec.labels[i], pos))
        return value

    return _map_histograms(vec, lambda h, t, i: of_view(bucket_view(h), t, i), of_view)


def histogram_fraction(
    lower: np.ndarray, upper: np.ndarray, vec: Vec, annots: Annotations | None = None, pos: str = ""
) -> Vec:
    """Native ``histogram_fraction``; NaN observations give an info at ``pos`` (of the lower bound
    argument, as Prometheus reports it)."""
    los, his = lower.tolist(), upper.tolist()

    def of_view(view: BucketView, t: int, i: int) -> float:
        lo, hi = los[t], his[t]
        if view.count == 0 or math.isnan(lo) or math.isnan(hi) or lo >= hi:  # fraction()'s early answers
            return fraction(lo, hi, _EMPTY if view.count == 0 else _ONE)
        if annots is not None and has_nan_observations(view):
            annots.info(_nan_info(_FRACTION_NOTE, vec.labels[i], pos))
        return fraction_of_buckets(lo, hi, view)

    return _map_histograms(
        vec,
        lambda h, t, i: of_view(bucket_view(h), t, i),
        of_view,
        lambda row, steps: densehist.fractions(row, steps, lower, upper),
    )


_EMPTY = FloatHistogram(0.0, 0.0)
_ONE = FloatHistogram(1.0, 0.0)


# -- range functions over rows holding histograms --------------------------------------------------

FLOAT_ONLY = frozenset(
    {
        "deriv", "predict_linear", "stddev_over_time", "stdvar_over_time", "min_over_time",
        "max_over_time", "quantile_over_time", "mad_over_time", "double_exponential_smoothing",
        "holt_winters", "ts_of_min_over_time", "ts_of_max_over_time",
    }
)  # fmt: skip
ANY_SAMPLE = frozenset(
    {"count_over_time", "present_over_time", "ts_of_last_over_time", "ts_of_first_over_time"}
)


@dataclass
class _Layout:
    schema: np.ndarray
    custom: np.ndarray
    gauge: np.ndarray


_FLOAT_CELL = FloatHistogram(0.0, 0.0)


@dataclass
class RowWindows:
    """One series with histogram samples and the per-step window bounds over it."""

    labels: Labels
    ts: np.ndarray
    vals: np.ndarray
    hists: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    start: np.ndarray
    end: np.ndarray
    steps: np.ndarray
    range_ms: int
    params: Sequence[np.ndarray]
    prometheus2: bool
    pos: str
    flags: np.ndarray | None = None  # see pair_flags
    flag_sums: np.ndarray | None = None
    _layout: _Layout | None = None
    _dense: densehist.DenseRow | bool | None = False  # False: not built yet
    dense_source: Callable[[], densehist.DenseRow | None] | None = None  # a cached conversion

    def dense(self) -> densehist.DenseRow | None:
        """The samples as one dense row when they are all histograms of one layout without
        counter-reset hints (the common case), else None."""
        if self._dense is False:
            source = self.dense_source
            got = source() if source is not None else densehist.from_histograms(self.hists)
            self._dense = got if got is not None and got.layout[3] == "unknown" else None
        return self._dense if isinstance(self._dense, densehist.DenseRow) else None

    def layout(self) -> _Layout:
        """Schema, custom-bucket and gauge flags of every sample (floats count as neither)."""
        dense = self.dense()
        if self._layout is None and dense is not None:
            n = self.hists.size
            self._layout = _Layout(
                np.full(n, dense.layout[0], dtype=np.int64),
                np.full(n, dense.layout[0] == CUSTOM_BUCKETS_SCHEMA, dtype=bool),
                np.zeros(n, dtype=bool),  # dense() holds no counter-reset hints
            )
        if self._layout is None:
            hs = [h if h is not None else _FLOAT_CELL for h in self.hists]
            self._layout = _Layout(
                np.array([h.schema for h in hs], dtype=np.int64),
                np.array([h.uses_custom_buckets for h in hs], dtype=bool),
                np.array([h.counter_reset_hint == "gauge" for h in hs], dtype=bool),
            )
        return self._layout

    @property
    def metric(self) -> str:
        return dict(self.labels).get(METRIC_NAME, "")


Cell = float | FloatHistogram | None


RowResult = tuple[np.ndarray, np.ndarray, np.ndarray, "densehist.DenseRow | None"]


def range_row(name: str, row: RowWindows, annots: Annotations) -> RowResult:
    """(values, present, histograms, the histograms as a dense row or None) of a range function
    over one series holding histograms."""
    n = row.steps.size
    values = np.zeros(n)
    present = np.zeros(n, dtype=bool)
    hists = hist_cells((n,))
    is_h = is_histogram(row.hists)
    if name in ("changes", "resets", "rate", "increase"):
        row.flags = pair_flags(name, row, is_h)
        row.flag_sums = np.cumsum(row.flags)
    if name in ("rate", "increase") and densehist.ENABLED and row.dense() is not None:
        return _dense_rate(name, row, annots)
    for k in np.flatnonzero(row.hi > row.lo).tolist():
        got = _one_window(name, row, k, int(row.lo[k]), int(row.hi[k]), is_h, annots)
        if isinstance(got, FloatHistogram):
            values[k], present[k], hists[k] = np.nan, True, got
        elif got is not None:
            values[k], present[k] = got, True
    return values, present, hists, None


def _dense_rate(name: str, row: RowWindows, annots: Annotations) -> RowResult:
    """``rate``/``increase`` of a series kept in one layout (:meth:`RowWindows.dense`): every
    window without a counter reset after its second sample at once, as ``last - first`` (or
    ``last`` when the reset is between the first two) times the extrapolation factor of
    :func:`_extrapolation_factor`, in the same float operations; the other windows go through
    :func:`_histogram_rate` and are stored into the same columns."""
    samples = row.dense()
    assert samples is not None and row.flags is not None and row.flag_sums is not None
    n = row.steps.size
    out = densehist.DenseRow(
        (samples.layout[0], samples.layout[1], samples.layout[2], "gauge"),
        samples.pos_idx,
        samples.neg_idx,
        np.zeros((n, samples.data.shape[1])),
        np.zeros((n, samples.has.shape[1]), dtype=bool),
        np.zeros(n, dtype=bool),
    )
    ks = np.flatnonzero(row.hi - row.lo >= 2)
    a, b = row.lo[ks], row.hi[ks]
    later_reset = (row.flag_sums[b - 1] - row.flag_sums[a + 1]) > 0
    for k, ka, kb in zip(
        ks[later_reset].tolist(), a[later_reset].tolist(), b[later_reset].tolist(), strict=True
    ):
        got = _histogram_rate(name, row, k, ka, kb, annots)
        if got is not None:
            out.put(k, got)
    fast = ~later_reset
    ks, a, b = ks[fast], a[fast], b[fast]
    first_reset = row.flags[a + 1]
    last = samples.data[b - 1]
    prev = np.where(first_reset[:, None], 0.0, samples.data[a])
    result = last - prev
    out.has[ks] = samples.has[b - 1] | (samples.has[a] & ~first_reset[:, None])
    # _extrapolation_factor, vectorised.
    first_t, last_t = row.ts[a], row.ts[b - 1]
    to_start = (first_t - row.start[ks]) / 1000.0
    to_end = (row.end[ks] - last_t) / 1000.0
    sampled = (last_t - first_t) / 1000.0
    average = sampled / (b - a - 1)
    threshold = average * 1.1
    to_start = np.where(to_start >= threshold, average / 2, to_start)
    first_count, result_count = samples.data[a, 0], result[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = sampled * (first_count / result_count)
    capped = (result_count > 0) & (first_count >= 0) & (bound < to_start)
    to_start = np.where(capped, bound, to_start)
    to_end = np.where(to_end >= threshold, average / 2, to_end)
    factor = (sampled + to_start + to_end) / sampled
    if name == "rate":
        factor = factor / (row.range_ms / 1000.0)
    out.data[ks] = result * factor[:, None]
    out.valid[ks] = True
    return np.where(out.valid, np.nan, 0.0), out.valid.copy(), out.cells(), out


def _float_result(name: str, row: RowWindows, k: int, ts: np.ndarray, vals: np.ndarray) -> float | None:
    """The float function over the given samples as the window of step ``k``."""
    if ts.size == 0:
        return None
    w = Window(
        ts, vals, np.array([0]), np.array([ts.size]), row.start[k : k + 1], row.end[k : k + 1],
        row.steps[k : k + 1], row.range_ms, [p[k : k + 1] for p in row.params],
    )  # fmt: skip
    fn = RANGE_FUNCTIONS.get(name)
    res, ok = fn(w) if fn is not None else EXTRAPOLATED[name](w, row.prometheus2)
    return float(res[0]) if bool(ok[0]) else None


def _one_window(
    name: str, row: RowWindows, k: int, a: int, b: int, is_h: np.ndarray, annots: Annotations
) -> Cell:
    hm = is_h[a:b]
    n_h = int(hm.sum())
    n_f = (b - a) - n_h
    f_ts, f_vals = row.ts[a:b][~hm], row.vals[a:b][~hm]
    if name in FLOAT_ONLY:
        if n_f and n_h:
            annots.info(ignored_info(row.metric, row.pos))
        return _float_result(name, row, k, f_ts, f_vals)
    if name in ANY_SAMPLE or name == "absent_over_time":
        return _float_result(name, row, k, row.ts[a:b], row.vals[a:b])
    if name in ("last_over_time", "first_over_time"):
        at = b - 1 if name == "last_over_time" else a
        return row.hists[at] if is_h[at] else float(row.vals[at])
    if name in ("changes", "resets"):
        # Pairs (j-1, j) with a < j < b: flags a+1 .. b-1.
        assert row.flag_sums is not None
        return float(row.flag_sums[b - 1] - row.flag_sums[a])
    if n_f and n_h and name not in ("irate", "idelta"):
        annots.warn(mixed_warning(row.metric, row.pos))
        return None
    if not n_h:
        return _float_result(name, row, k, f_ts, f_vals)
    if name in ("sum_over_time", "avg_over_time"):
        return _sum_histograms(list(row.hists[a:b]), name == "avg_over_time", annots, row)
    if name in ("rate", "increase", "delta"):
        return _histogram_rate(name, row, k, a, b, annots)
    if name in ("irate", "idelta"):
        return _instant(name, row, k, a, b, is_h, annots)
    return None


def _uniform_pair_flags(name: str, row: RowWindows, is_h: np.ndarray) -> np.ndarray | None:
    """:func:`pair_flags` vectorised for the common series: histograms only, one bucket layout
    (same schema, zero threshold and custom bounds), no counter-reset hints."""
    if row.hists.size < 2 or not is_h.all():
        return None
    dense_row = row.dense()
    if dense_row is None:
        return None
    dense = dense_row.data
    cur, prev = dense[1:], dense[:-1]
    flags = np.zeros(row.hists.size, dtype=bool)
    if name == "changes":
        same = (cur == prev) | (np.isnan(cur) & np.isnan(prev))
        flags[1:] = ~same.all(axis=1)
    else:
        shrank = (cur[:, 3:] < prev[:, 3:]) & (prev[:, 3:] != 0)
        flags[1:] = (cur[:, 0] < prev[:, 0]) | (cur[:, 2] < prev[:, 2]) | shrank.any(axis=1)
    return flags


def pair_flags(name: str, row: RowWindows, is_h: np.ndarray) -> np.ndarray:
    """Per sample ``j``: does going from sample ``j-1`` to ``j`` count as a reset (``resets``,
    ``rate``, ``increase``) or a change (``changes``)? A switch between float and histogram
    counts as both. Computed once per series, so overlapping windows share the work."""
    fast = _uniform_pair_flags(name, row, is_h)
    if fast is not None:
        return fast
    flags = np.zeros(row.ts.size, dtype=bool)
    for j in range(1, row.ts.size):
        ph, ch = is_h[j - 1], is_h[j]
        if ph != ch:
            flags[j] = True
        elif ch:
            prev, cur = row.hists[j - 1], row.hists[j]
            flags[j] = cur.detect_reset(prev) if name != "changes" else not cur.same_as(prev)
        else:
            pv, cv = float(row.vals[j - 1]), float(row.vals[j])
            if name != "changes":
                flags[j] = cv < pv
            else:
                flags[j] = not (pv == cv or (math.isnan(pv) and math.isnan(cv)))
    return flags


def _sum_histograms(
    hs: list[FloatHistogram], average: bool, annots: Annotations, row: RowWindows
) -> FloatHistogram | None:
    _check_hints(hs, annots, row.pos)
    total = hs[0]
    for h in hs[1:]:
        try:
            total, reconciled = total.add(h)
        except IncompatibleHistograms:
            annots.warn(schema_mix_warning(row.metric, row.pos))
            return None
        if reconciled:
            annots.info(reconciled_info("aggregation", row.pos))
    return total.divide(float(len(hs))) if average else total


def _not_counter(metric: str, pos: str) -> str:
    return f'PromQL warning: this native histogram metric is not a counter: "{metric}" ({pos})'


def _not_gauge(metric: str, pos: str) -> str:
    return f'PromQL warning: this native histogram metric is not a gauge: "{metric}" ({pos})'


def _histogram_rate(
    name: str, row: RowWindows, k: int, a: int, b: int, annots: Annotations
) -> FloatHistogram | None:
    """Prometheus's ``histogramRate`` plus the extrapolation of ``extrapolatedRate`` over the
    histogram samples ``a .. b-1`` of the row (all of the window's samples are histograms)."""
    if b - a < 2:
        return None
    is_counter = name != "delta"
    metric, pos = row.metric, row.pos
    layout = row.layout()
    hs = row.hists
    prev, last = hs[a], hs[b - 1]
    if is_counter and (layout.gauge[a] or layout.gauge[b - 1]):
        annots.warn(_not_counter(metric, pos))
    flags = row.flags
    if is_counter and flags is not None and bool(flags[a + 1]):
        second = hs[a + 1]
        prev = FloatHistogram(0.0, 0.0, schema=second.schema, custom_values=second.custom_values)
    if last.uses_custom_buckets != prev.uses_custom_buckets:
        annots.warn(schema_mix_warning(metric, pos))
        return None
    min_schema = min(last.schema, prev.schema)
    if is_counter and b - a > 2:
        if layout.gauge[a + 1 : b - 1].any():
            annots.warn(_not_counter(metric, pos))
        min_schema = min(min_schema, int(layout.schema[a + 1 : b - 1].min()))
        if (layout.custom[a + 1 : b - 1] != layout.custom[b - 1]).any():
            annots.warn(schema_mix_warning(metric, pos))
            return None
    try:
        result, reconciled = last.to_schema(min_schema).sub(prev)
        if reconciled:
            annots.info(reconciled_info("subtraction", pos))
        if is_counter and flags is not None:
            # A reset between samples j-1 and j adds sample j-1 back (after a reset between the
            # first two, the first counts as empty, which adds nothing).
            for j in (np.flatnonzero(flags[a + 2 : b]) + a + 2).tolist():
                result, reconciled = result.add(hs[j - 1])
                if reconciled:
                    annots.info(reconciled_info("addition", pos))
    except IncompatibleHistograms:
        annots.warn(schema_mix_warning(metric, pos))
        return None
    if not is_counter and not (layout.gauge[a] and layout.gauge[b - 1]):
        annots.warn(_not_gauge(metric, pos))
    first_t, last_t = int(row.ts[a]), int(row.ts[b - 1])
    factor = _extrapolation_factor(row, k, first_t, last_t, b - a, hs[a].count, result.count, is_counter)
    if name == "rate":
        factor /= row.range_ms / 1000.0
    return result.scale(factor, hint="gauge")


def _extrapolation_factor(
    row: RowWindows,
    k: int,
    first_t: int,
    last_t: int,
    n_samples: int,
    first_count: float,
    result_count: float,
    is_counter: bool,
) -> float:
    range_start, range_end = int(row.start[k]), int(row.end[k])
    to_start = (first_t - range_start) / 1000.0
    to_end = (range_end - last_t) / 1000.0
    sampled = (last_t - first_t) / 1000.0
    average = sampled / (n_samples - 1)
    threshold = average * 1.1
    if to_start >= threshold:
        to_start = average / 2
    if is_counter and result_count > 0 and first_count >= 0:
        to_start = min(to_start, sampled * (first_count / result_count))
    if to_end >= threshold:
        to_end = average / 2
    return (sampled + to_start + to_end) / sampled


def _instant(
    name: str, row: RowWindows, k: int, a: int, b: int, is_h: np.ndarray, annots: Annotations
) -> Cell:
    """``irate``/``idelta`` of the last two samples of the window."""
    if b - a < 2:
        return None
    j0, j1 = b - 2, b - 1
    metric, pos = row.metric, row.pos
    if not is_h[j0] and not is_h[j1]:
        return _float_result(name, row, k, row.ts[j0:b], row.vals[j0:b])
    if is_h[j0] != is_h[j1]:
        annots.warn(mixed_warning(metric, pos))
        return None
    h0, h1 = row.hists[j0], row.hists[j1]
    is_rate = name == "irate"
    if not is_rate and (h0.counter_reset_hint != "gauge" or h1.counter_reset_hint != "gauge"):
        annots.warn(_not_gauge(metric, pos))
    if is_rate and "gauge" in (h0.counter_reset_hint, h1.counter_reset_hint):
        annots.warn(_not_counter(metric, pos))
    if is_rate and h1.detect_reset(h0):
        result = h1
    else:
        try:
            result, reconciled = h1.sub(h0)
        except IncompatibleHistograms:
            annots.warn(schema_mix_warning(metric, pos))
            return None
        if reconciled:
            annots.info(reconciled_info("subtraction", pos))
    result = replace(result, counter_reset_hint="gauge")
    if is_rate:
        result = result.divide((int(row.ts[j1]) - int(row.ts[j0])) / 1000.0)
    return result


# -- aggregation ----------------------------------------------------------------------------------


def sum_avg(op: str, vec: Vec, grouping: Sequence[str], without: bool, annots: Annotations, pos: str) -> Vec:
    """``sum``/``avg`` over a vector holding histograms: a group's histograms add up; a group
    mixing floats and histograms at a step gives nothing there, with a warning."""
    floats = agg.aggregate(op, vec.floats_only(), grouping, without, None, Annotations())
    index = {lab: i for i, lab in enumerate(floats.labels)}
    groups: dict[Labels, list[int]] = {}
    for i, lab in enumerate(vec.labels):
        groups.setdefault(agg.group_labels(lab, grouping, without), []).append(i)
    hm = vec.hist_mask()
    fm = vec.present & ~hm
    t_count = vec.values.shape[1]
    labels: list[Labels] = []
    values: list[np.ndarray] = []
    present: list[np.ndarray] = []
    cells: list[np.ndarray] = []
    dense: dict[int, densehist.DenseRow] = {}
    for key, rows in groups.items():
        v, p, h = np.zeros(t_count), np.zeros(t_count, dtype=bool), hist_cells((t_count,))
        if key in index:
            v, p = floats.values[index[key]].copy(), floats.present[index[key]].copy()
        any_f = fm[rows].any(axis=0)
        summed = _dense_sum(op, vec, rows, hm, any_f)
        if summed is not None:
            if any_f[summed.valid].any():
                annots.warn(
                    f"PromQL warning: encountered a mix of histograms and floats for aggregation ({pos})"
                )
                p[summed.valid & any_f] = False
            summed.valid &= ~any_f
            v[summed.valid], p[summed.valid] = np.nan, True
            h = summed.cells()
            if p.any():
                dense[len(labels)] = summed
        for t in np.flatnonzero(hm[rows].any(axis=0)) if summed is None else ():
            if any_f[t]:
                annots.warn(
                    f"PromQL warning: encountered a mix of histograms and floats for aggregation ({pos})"
                )
                p[t] = False
                continue
            assert vec.hist is not None
            hs = [vec.hist[r, t] for r in rows if hm[r, t]]
            total = _add_all(hs, annots, pos)
            if total is None:
                p[t] = False
                continue
            v[t], p[t], h[t] = np.nan, True, total.divide(float(len(hs))) if op == "avg" else total
        if p.any():
            labels.append(key)
            values.append(v)
            present.append(p)
            cells.append(h)
    n = len(labels)
    if not n:
        return Vec.empty(t_count)
    hist = np.array(cells, dtype=object).reshape(n, t_count)
    return Vec(labels, np.array(values), np.array(present), hist=hist, dense=dense or None)


def _dense_sum(
    op: str, vec: Vec, rows: list[int], hm: np.ndarray, any_f: np.ndarray
) -> densehist.DenseRow | None:
    """The group's sum/avg at every step at once, when each row holding histograms is held
    densely in one common layout (see :func:`densehist.add_rows`); else None."""
    if not densehist.ENABLED or not vec.dense:
        return None
    parts = []
    for r in rows:
        m = hm[r]
        if not m.any():
            continue
        d = vec.dense.get(r)
        if d is None or (m & ~d.valid).any():
            return None
        parts.append((d, m))
    if not parts or any(d.layout != parts[0][0].layout for d, _ in parts):
        return None
    return densehist.add_rows(parts, average=op == "avg")


def collision_warning(operation: str, pos: str) -> str:
    """Prometheus's ``HistogramCounterResetCollisionWarning``."""
    return f"PromQL warning: conflicting counter resets during histogram {operation} ({pos})"


def _check_hints(hs: list[FloatHistogram], annots: Annotations, pos: str) -> None:
    """Adding a histogram hinted as a counter reset to one hinted as none is a collision."""
    hints = {h.counter_reset_hint for h in hs}
    if "reset" in hints and "not_reset" in hints:
        annots.warn(collision_warning("aggregation", pos))


def _add_all(hs: list[FloatHistogram], annots: Annotations, pos: str) -> FloatHistogram | None:
    _check_hints(hs, annots, pos)
    total = hs[0]
    for h in hs[1:]:
        try:
            total, reconciled = total.add(h)
        except IncompatibleHistograms:
            annots.warn(schema_mix_warning("", pos))
            return None
        if reconciled:
            annots.info(reconciled_info("aggregation", pos))
    return total
