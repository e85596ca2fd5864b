"""Native histograms of one bucket layout as dense numpy rows, the fast path of the common case.

A series whose histograms keep one schema, zero threshold and set of custom bounds (what a
scraped histogram does between restarts) becomes a matrix with one row per sample: count, sum,
zero count, then one column per bucket index seen (positive, then negative), plus a mask of the
buckets each histogram lists. ``rate``/``increase``, ``sum``/``avg`` and the bucket walks of
``histogram_quantile``/``histogram_fraction`` then run over whole rows at once.

The arithmetic is the per-histogram arithmetic of :mod:`sloanalysis.nativehist`, element for
element and in the same order (a bucket missing on one side is ``0.0 + c``, a sum of series adds
them one by one), so both paths give bit-identical results; anything outside the common case
(mixed layouts, counter-reset hints, floats among histograms) stays on the per-point path.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np

from sloanalysis.nativehist import (
    Bucket,
    BucketView,
    FloatHistogram,
    bucket_upper,
    custom_bounds,
    make_histogram,
    position,
)

Layout = tuple[int, float, tuple[float, ...], str]
"""(schema, zero threshold, custom bounds, counter-reset hint) shared by a dense row."""

ENABLED = True  # the fast path; tests switch it off to compare with the per-point path
TOTALS = 3  # leading columns: count, sum, zero count


@dataclass
class DenseRow:
    """One series' histograms over the steps (or samples) of a query in one layout."""

    layout: Layout
    pos_idx: tuple[int, ...]
    neg_idx: tuple[int, ...]
    data: np.ndarray  # (T, 3 + P + N): count, sum, zero count, positive then negative buckets
    has: np.ndarray  # (T, P + N) bool: the buckets each histogram lists
    valid: np.ndarray  # (T,) bool: where the row holds a histogram

    def histogram(self, t: int) -> FloatHistogram:
        return self._build(self.data[t].tolist(), self.has[t].tolist())

    def _build(self, vals: list[float], has: list[bool] | None) -> FloatHistogram:
        """The histogram of one row of ``data`` (``has`` None: every column listed)."""
        schema, zt, custom, hint = self.layout
        n_pos = len(self.pos_idx)
        pos_vals, neg_vals = vals[TOTALS : TOTALS + n_pos], vals[TOTALS + n_pos :]
        if has is None:
            pos = tuple(zip(self.pos_idx, pos_vals, strict=True))
            neg = tuple(zip(self.neg_idx, neg_vals, strict=True))
        else:
            pos_has, neg_has = has[:n_pos], has[n_pos:]
            pos = tuple((i, c) for i, c, ok in zip(self.pos_idx, pos_vals, pos_has, strict=True) if ok)
            neg = tuple((i, c) for i, c, ok in zip(self.neg_idx, neg_vals, neg_has, strict=True) if ok)
        return make_histogram(vals[0], vals[1], schema, zt, vals[2], pos, neg, custom, hint)

    def cells(self) -> np.ndarray:
        """The histograms as the object array ``Vec.hist`` holds (None where not valid); each
        is a :class:`LazyHistogram` that reads its row only when one of its fields is read."""
        out = np.full(self.valid.shape, None, dtype=object)
        steps = np.flatnonzero(self.valid).tolist()
        new = object.__new__
        cells = []
        for t in steps:
            h = new(LazyHistogram)
            h.__dict__["_source"] = (self, t)
            cells.append(h)
        out[steps] = cells
        return out

    def put(self, t: int, h: FloatHistogram) -> None:
        """Store ``h`` (of this row's layout, buckets among its columns) at step ``t``."""
        col = {i: k for k, i in enumerate(self.pos_idx)}
        ncol = {i: len(self.pos_idx) + k for k, i in enumerate(self.neg_idx)}
        self.data[t] = 0.0
        self.has[t] = False
        self.data[t, :TOTALS] = (h.count, h.sum, h.zero_count)
        for cols, buckets in ((col, h.positive), (ncol, h.negative)):
            for i, c in buckets:
                self.data[t, TOTALS + cols[i]] = c
                self.has[t, cols[i]] = True
        self.valid[t] = True


_FIELDS = ("count", "sum", "schema", "zero_threshold", "zero_count", "positive", "negative",
           "custom_values", "counter_reset_hint")  # fmt: skip


class LazyHistogram(FloatHistogram):
    """A :class:`FloatHistogram` whose fields come from step ``t`` of a :class:`DenseRow` the
    first time any is read (the fast paths read the dense row and never build most of them);
    it then turns into a plain :class:`FloatHistogram`."""

    def _materialise(self) -> None:
        row, t = self.__dict__.pop("_source")
        built = row.histogram(t)
        self.__dict__.update({f: built.__dict__[f] for f in _FIELDS})
        object.__setattr__(self, "__class__", FloatHistogram)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FloatHistogram):
            return NotImplemented
        self._materialise()
        return self == other

    def __hash__(self) -> int:
        self._materialise()
        return hash(self)

    def __repr__(self) -> str:
        self._materialise()
        return repr(self)

    def __reduce_ex__(self, protocol: Any) -> Any:  # pickle and copy: a plain histogram
        self._materialise()
        return self.__reduce_ex__(protocol)


def _lazy_field(name: str) -> property:
    def get(self: LazyHistogram) -> object:
        self._materialise()
        return self.__dict__[name]

    return property(get)


for _name in _FIELDS:  # properties, as the dataclass's defaults are class attributes
    setattr(LazyHistogram, _name, _lazy_field(_name))


def layout_of(h: FloatHistogram) -> Layout:
    return (h.schema, h.zero_threshold, h.custom_values, h.counter_reset_hint)


_LAYOUT = attrgetter("schema", "zero_threshold", "custom_values", "counter_reset_hint")
_TOTALS = attrgetter("count", "sum", "zero_count")
_POSITIVE = attrgetter("positive")
_NEGATIVE = attrgetter("negative")


def from_histograms(hists: np.ndarray) -> DenseRow | None:
    """The samples ``hists`` (all histograms) as one dense row, or None when their layouts
    differ. Columns are the bucket indices seen anywhere, in ascending order."""
    hs = hists.tolist()
    if not hs or any(h is None for h in hs):
        return None
    if len(set(map(_LAYOUT, hs))) != 1:
        return None
    n = len(hs)
    same = _same_buckets(hs)
    if same is not None:
        return same
    pos_idx, pos_rows, pos_cols, pos_vals = _scatter([h.positive for h in hs])
    neg_idx, neg_rows, neg_cols, neg_vals = _scatter([h.negative for h in hs])
    n_pos = len(pos_idx)
    data = np.zeros((n, TOTALS + n_pos + len(neg_idx)))
    data[:, 0] = [h.count for h in hs]
    data[:, 1] = [h.sum for h in hs]
    data[:, 2] = [h.zero_count for h in hs]
    has = np.zeros((n, n_pos + len(neg_idx)), dtype=bool)
    data[pos_rows, TOTALS + pos_cols] = pos_vals
    has[pos_rows, pos_cols] = True
    data[neg_rows, TOTALS + n_pos + neg_cols] = neg_vals
    has[neg_rows, n_pos + neg_cols] = True
    return DenseRow(layout_of(hs[0]), pos_idx, neg_idx, data, has, np.ones(n, dtype=bool))


_CACHE: dict[int, tuple[weakref.ref[np.ndarray], int, DenseRow | None]] = {}


def cached(histograms: np.ndarray, keep: np.ndarray) -> Callable[[], DenseRow | None]:
    """A source of ``from_histograms(histograms[keep])`` for a store series' histogram array,
    converted once while that array lives (queries over the same store reuse it)."""

    def source() -> DenseRow | None:
        key, n_keep = id(histograms), int(keep.sum())
        hit = _CACHE.get(key)
        if hit is not None and hit[0]() is histograms and hit[1] == n_keep:
            return hit[2]
        row = from_histograms(histograms[keep])
        if row is not None and row.layout[3] != "unknown":
            row = None  # counter-reset hints: the per-point path
        _CACHE[key] = (weakref.ref(histograms, lambda _ref: _CACHE.pop(key, None)), n_keep, row)
        return row

    return source


def _same_buckets(hs: list[FloatHistogram]) -> DenseRow | None:
    """:func:`from_histograms` when every histogram lists the same positive buckets and no
    negative ones (a histogram that keeps its buckets listed): one numpy conversion."""
    n_pos = len(hs[0].positive)
    if any(map(_NEGATIVE, hs)) or set(map(len, map(_POSITIVE, hs))) != {n_pos}:
        return None
    flat = chain.from_iterable(chain.from_iterable(h.positive for h in hs))
    pairs = np.fromiter(flat, dtype=np.float64, count=len(hs) * n_pos * 2).reshape(len(hs), n_pos, 2)
    idx = pairs[0, :, 0]
    if not (pairs[:, :, 0] == idx).all():
        return None
    data = np.empty((len(hs), TOTALS + n_pos))
    totals = chain.from_iterable(map(_TOTALS, hs))
    data[:, :TOTALS] = np.fromiter(totals, dtype=np.float64, count=len(hs) * TOTALS).reshape(len(hs), TOTALS)
    data[:, TOTALS:] = pairs[:, :, 1]
    pos_idx = tuple(int(i) for i in idx.tolist())
    has = np.ones((len(hs), n_pos), dtype=bool)
    return DenseRow(layout_of(hs[0]), pos_idx, (), data, has, np.ones(len(hs), dtype=bool))


def _scatter(
    buckets: list[tuple[tuple[int, float], ...]],
) -> tuple[tuple[int, ...], np.ndarray, np.ndarray, np.ndarray]:
    """Column indices, and the (row, column, value) of every listed bucket."""
    lens = np.array([len(b) for b in buckets], dtype=np.intp)
    flat = [p for b in buckets for p in b]
    if not flat:
        empty = np.zeros(0, dtype=np.intp)
        return (), empty, empty, np.zeros(0)
    idx = np.array([p[0] for p in flat], dtype=np.int64)
    vals = np.array([p[1] for p in flat], dtype=np.float64)
    columns = np.unique(idx)
    rows = np.repeat(np.arange(len(buckets), dtype=np.intp), lens)
    return tuple(columns.tolist()), rows, np.searchsorted(columns, idx), vals


def align(row: DenseRow, pos_idx: tuple[int, ...], neg_idx: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``row``'s data and bucket mask over the wider columns ``pos_idx``/``neg_idx``."""
    if row.pos_idx == pos_idx and row.neg_idx == neg_idx:
        return row.data, row.has
    n_pos = len(pos_idx)
    cols = np.concatenate(
        [
            np.searchsorted(np.array(pos_idx, dtype=np.int64), np.array(row.pos_idx, dtype=np.int64)),
            n_pos + np.searchsorted(np.array(neg_idx, dtype=np.int64), np.array(row.neg_idx, dtype=np.int64)),
        ]
    ).astype(np.intp)
    data = np.zeros((row.data.shape[0], TOTALS + n_pos + len(neg_idx)))
    data[:, :TOTALS] = row.data[:, :TOTALS]
    data[:, TOTALS + cols] = row.data[:, TOTALS:]
    has = np.zeros((row.data.shape[0], n_pos + len(neg_idx)), dtype=bool)
    has[:, cols] = row.has
    return data, has


def add_rows(rows: list[tuple[DenseRow, np.ndarray]], average: bool) -> DenseRow:
    """``sum``/``avg`` of rows of one layout, each taken where its mask is set: at each step the
    histograms present add up in row order, as ``FloatHistogram.add`` adds them."""
    pos_idx = tuple(sorted(set().union(*(r.pos_idx for r, _ in rows))))
    neg_idx = tuple(sorted(set().union(*(r.neg_idx for r, _ in rows))))
    first = rows[0][0]
    n_steps = first.data.shape[0]
    acc = np.zeros((n_steps, TOTALS + len(pos_idx) + len(neg_idx)))
    acc_has = np.zeros((n_steps, len(pos_idx) + len(neg_idx)), dtype=bool)
    started = np.zeros(n_steps, dtype=bool)
    n = np.zeros(n_steps)
    for row, mask in rows:
        data, has = align(row, pos_idx, neg_idx)
        init = mask & ~started
        acc[init] = data[init]
        acc_has[init] = has[init]
        more = mask & started
        if more.any():
            a, d, h, ah = acc[more], data[more], has[more], acc_has[more]
            a[:, :TOTALS] = a[:, :TOTALS] + d[:, :TOTALS]
            a[:, TOTALS:] = np.where(h, np.where(ah, a[:, TOTALS:], 0.0) + d[:, TOTALS:], a[:, TOTALS:])
            acc[more] = a
            acc_has[more] = ah | h
        started |= mask
        n += mask
    if average:
        acc[started] = acc[started] / n[started, None]
    return DenseRow(first.layout, pos_idx, neg_idx, acc, acc_has, started)


# -- the bucket walks of histogram_quantile and histogram_fraction ---------------------------------


_Static = tuple[int, int, float, float, bool, bool]
"""(data column, bucket-mask column, lower, upper, lower inclusive, upper inclusive)."""


def _static_buckets(row: DenseRow) -> tuple[list[_Static], list[_Static]]:
    """Negative buckets (descending index, so ascending value) and positive ones with their
    bounds as :meth:`FloatHistogram.buckets` clips them; the zero bucket goes between."""
    schema, zt, custom, _ = row.layout
    n_pos = len(row.pos_idx)
    positives: list[_Static] = []
    negatives: list[_Static] = []
    if schema == -53:
        for k, idx in enumerate(row.pos_idx):
            lo, hi = custom_bounds(custom, idx)
            positives.append((TOTALS + k, k, lo, hi, lo == -math.inf, True))
        return negatives, positives
    for k in reversed(range(len(row.neg_idx))):
        idx = row.neg_idx[k]
        lo, hi = -bucket_upper(schema, idx), -bucket_upper(schema, idx - 1)
        hi = min(hi, -zt) if hi > -zt else hi
        negatives.append((TOTALS + n_pos + k, n_pos + k, lo, hi, True, False))
    for k, idx in enumerate(row.pos_idx):
        lo, hi = bucket_upper(schema, idx - 1), bucket_upper(schema, idx)
        positives.append((TOTALS + k, k, max(lo, zt), hi, False, True))
    return negatives, positives


def bucket_views(row: DenseRow, steps: np.ndarray) -> Iterator[tuple[int, BucketView]]:
    """For each step ``t`` in ``steps``, what ``quantile``/``fraction`` read of its histogram:
    the buckets :meth:`FloatHistogram.buckets` would list, from precomputed bounds."""
    _, zt, _, _ = row.layout
    n_pos = len(row.pos_idx)
    negatives, positives = _static_buckets(row)
    custom_schema = row.layout[0] == -53
    for t in steps.tolist():
        vals = row.data[t].tolist()
        has = row.has[t].tolist()
        neg: list[Bucket] = [(lo, hi, vals[c], li, ui) for c, hc, lo, hi, li, ui in negatives if has[hc]]
        pos: list[Bucket] = [(lo, hi, vals[c], li, ui) for c, hc, lo, hi, li, ui in positives if has[hc]]
        if not custom_schema and (zt != 0 or vals[2] != 0):
            neg.append((-zt, zt, vals[2], True, True))
        yield t, BucketView(vals[0], vals[1], custom_schema, any(has[n_pos:]), any(has[:n_pos]), neg + pos)


def fractions(row: DenseRow, steps: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """``histogram_fraction`` at ``steps`` of the row, for the common steps at once: a non-zero
    count, a sum that is not NaN, ``lower < upper``. Steps sharing their listed buckets and
    bounds form one group, in which the buckets holding the bounds are found once and the ranks
    are running sums over the bucket columns, so each step's float operations are those of
    :func:`sloanalysis.nativehist.fraction_of_buckets`. NaN where the step is not such a step."""
    out = np.full(steps.size, np.nan)
    data = row.data[steps]
    lo, hi = lower[steps], upper[steps]
    ok = (data[:, 0] != 0) & ~np.isnan(data[:, 1]) & (lo < hi)  # (lo < hi is False for NaN)
    _, zt, _, _ = row.layout
    custom = row.layout[0] == -53
    zero_listed = ~custom & ((zt != 0) | (data[:, 2] != 0))
    groups: dict[tuple[bytes, bool, float, float], list[int]] = {}
    has = row.has[steps]
    for k in np.flatnonzero(ok).tolist():
        groups.setdefault((has[k].tobytes(), bool(zero_listed[k]), float(lo[k]), float(hi[k])), []).append(k)
    negatives, positives = _static_buckets(row)
    n_pos = len(row.pos_idx)
    for (mask_bytes, zero, lo_v, hi_v), members in groups.items():
        mask = np.frombuffer(mask_bytes, dtype=bool)
        has_neg, has_pos = bool(mask[n_pos:].any()), bool(mask[:n_pos].any())
        listed = [(c, b_lo, b_hi) for c, hc, b_lo, b_hi, _, _ in negatives if mask[hc]]
        if zero:
            listed.append((2, -zt, zt))
        listed += [(c, b_lo, b_hi) for c, hc, b_lo, b_hi, _, _ in positives if mask[hc]]
        lower_at, upper_at = _bound_buckets(listed, lo_v, hi_v, custom, has_neg, has_pos)
        g = np.array(members, dtype=np.intp)
        counts = data[g][:, [c for c, _, _ in listed]]
        ranks = np.cumsum(np.concatenate([np.zeros((g.size, 1)), counts], axis=1), axis=1)
        total = data[g, 0]
        lower_rank = _rank_at(lower_at, ranks, counts, total)
        upper_rank = _rank_at(upper_at, ranks, counts, total)
        out[g] = (upper_rank - lower_rank) / total
    return out


def _bound_buckets(
    listed: list[tuple[int, float, float]],
    lower: float,
    upper: float,
    custom: bool,
    has_neg: bool,
    has_pos: bool,
) -> tuple[tuple[int, float | None] | None, tuple[int, float | None] | None]:
    """Where the walk of ``fraction_of_buckets`` sets the lower and the upper rank: (bucket
    position, how far into it or None for its start), None when never."""
    lower_at: tuple[int, float | None] | None = None
    upper_at: tuple[int, float | None] | None = None
    for j, (_, b_lo, b_hi) in enumerate(listed):
        zero_bucket = b_lo <= 0 <= b_hi
        if zero_bucket:
            if not has_neg and has_pos:
                b_lo = 0.0
            elif not has_pos and has_neg:
                b_hi = 0.0
        if lower_at is None and b_lo >= lower:
            lower_at = (j, None)
        if upper_at is None and b_lo >= upper:
            upper_at = (j, None)
        if lower_at is not None and upper_at is not None:
            break
        linear = custom or zero_bucket
        if lower_at is None and b_lo < lower < b_hi:
            lower_at = (j, position(lower, b_lo, b_hi, linear))
        if upper_at is None and b_lo < upper < b_hi:
            upper_at = (j, position(upper, b_lo, b_hi, linear))
        if lower_at is not None and upper_at is not None:
            break
    return lower_at, upper_at


def _rank_at(
    at: tuple[int, float | None] | None, ranks: np.ndarray, counts: np.ndarray, total: np.ndarray
) -> np.ndarray:
    if at is None:
        return total
    j, into = at
    rank = ranks[:, j] if into is None else ranks[:, j] + counts[:, j] * into
    return np.where(rank > total, total, rank)
