"""The dense fast path for native histograms (``promql.densehist``) gives bit-identical answers to
the per-point path: the same floats (NaN where NaN), the same presence, the same histograms
(bucket lists included) and the same annotations, on series chosen to reach every branch: counter
resets inside and at the start of windows, bucket sets that grow, negative and zero buckets,
custom buckets, NaN sums, a series whose layout changes (per-point path) next to uniform ones."""

from __future__ import annotations

import copy
import math
import pickle
import struct
from typing import Any

import numpy as np
import pytest

from sloanalysis.nativehist import CUSTOM_BUCKETS_SCHEMA, FloatHistogram
from sloanalysis.promql import densehist
from sloanalysis.promql.engine import Engine
from sloanalysis.store import SeriesStore

STEP = 15_000
N = 120


def _counter(rng: np.random.Generator, n_buckets: int, start: int, reset_at: tuple[int, ...]) -> np.ndarray:
    """Cumulative bucket counts (n, n_buckets) with resets at the given sample positions."""
    inc = rng.poisson(3.0, size=(N, n_buckets)).astype(float)
    out = np.cumsum(inc, axis=0)
    for r in reset_at:
        out[r:] -= out[r - 1]
    out[:start] = 0.0
    return out


def _store() -> SeriesStore:
    rng = np.random.default_rng(7)
    ts = np.arange(N, dtype=np.int64) * STEP
    store = SeriesStore()

    def add(name: str, inst: str, hists: list[FloatHistogram]) -> None:
        cells = np.empty(N, dtype=object)
        cells[:] = hists
        store.add({"__name__": name, "instance": inst, "job": "j"}, ts, np.full(N, math.nan), cells)

    # Exponential, every bucket listed, resets inside windows and right after a window's first sample.
    c = _counter(rng, 6, 0, (40, 41, 90))
    add("lat", "a", [FloatHistogram(r.sum(), r.sum() * 0.3, 1, 0.0, 0.0, tuple(enumerate(r, -2))) for r in c])
    # Buckets appear over time, negative buckets and a zero bucket with a threshold.
    c = _counter(rng, 5, 0, (70,))
    hs = []
    for k, r in enumerate(c):
        pos = tuple((i, float(v)) for i, v in enumerate(r[:3]) if k > 20 * i)
        neg = ((1, float(r[3])), (2, float(r[4])))
        zc = float(r[0]) / 2
        total = sum(v for _, v in pos) + r[3] + r[4] + zc
        hs.append(FloatHistogram(total, -total * 0.1, 0, 0.001, zc, pos, neg))
    add("lat", "b", hs)
    # Custom buckets, and a NaN sum half the time.
    c = _counter(rng, 4, 5, (60,))
    bounds = (0.1, 0.25, 1.0)
    add(
        "lat",
        "c",
        [
            FloatHistogram(
                r.sum(),
                math.nan if k % 2 else r.sum(),
                CUSTOM_BUCKETS_SCHEMA,
                positive=tuple(enumerate(r)),
                custom_values=bounds,
            )
            for k, r in enumerate(c)
        ],
    )
    # A schema change halfway: the per-point path for this series.
    c = _counter(rng, 4, 0, ())
    add(
        "lat",
        "d",
        [
            FloatHistogram(r.sum(), 1.0, 1 if k < 60 else 0, positive=tuple(enumerate(r)))
            for k, r in enumerate(c)
        ],
    )
    # Same layout as "a" in another job, to be summed with it.
    c = _counter(rng, 6, 0, (55,))
    add("lat", "e", [FloatHistogram(r.sum(), r.sum(), 1, 0.0, 0.0, tuple(enumerate(r, -2))) for r in c])
    # Same layout as "a" but other buckets (0 to 3, of which 2 only from sample 30): summed
    # with "a" over the union of their buckets.
    c = _counter(rng, 4, 0, (80,))
    add(
        "lat",
        "f",
        [
            FloatHistogram(
                r.sum(), r.sum(), 1, 0.0, 0.0, tuple((i, v) for i, v in enumerate(r) if i != 2 or k >= 30)
            )
            for k, r in enumerate(c)
        ],
    )
    return store


QUERIES = [
    "sum(rate(lat{instance=~'a|f'}[1m]))",
    "histogram_quantile(0.75, sum(increase(lat{instance=~'a|f|e'}[2m])))",
    "histogram_fraction(0.5, 2, avg(rate(lat{instance=~'a|f'}[1m])))",
    "rate(lat[1m])",
    "increase(lat[2m])",
    "rate(lat{instance=~'a|e'}[1m])",
    "sum(rate(lat{instance=~'a|e'}[1m]))",
    "avg(rate(lat{instance=~'a|e'}[2m]))",
    "sum by (instance) (increase(lat[1m]))",
    "sum(rate(lat[1m]))",
    "histogram_quantile(0.9, rate(lat[1m]))",
    "histogram_quantile(0.1, rate(lat[1m]))",
    "histogram_quantile(0.5, sum(rate(lat{instance=~'a|e'}[1m])))",
    "histogram_quantile(1.5, rate(lat[1m]))",
    "histogram_fraction(0, 0.3, rate(lat[1m]))",
    "histogram_fraction(-1.5, 0.0005, rate(lat[1m]))",
    "histogram_fraction(0.2, 0.1, rate(lat[1m]))",
    "histogram_fraction(0, 1, avg(rate(lat{instance=~'a|e'}[2m])))",
    "histogram_count(rate(lat[1m]))",
    "histogram_sum(sum(rate(lat{instance=~'a|e'}[1m])))",
    "histogram_avg(rate(lat[1m]))",
    "histogram_fraction(0, 0.3, sum(rate(lat{instance=~'a|f'}[1m])))"
    " * histogram_count(sum(rate(lat{instance=~'a|f'}[1m])))",
]


def _bits(x: Any) -> Any:
    """A float as its bit pattern (so NaN == NaN and 0.0 != -0.0); other values unchanged."""
    if isinstance(x, float):
        return struct.pack("<d", x)
    if isinstance(x, tuple):
        return tuple(_bits(v) for v in x)
    return x


def _hist_key(h: FloatHistogram | None) -> Any:
    if h is None:
        return None
    fields = (h.count, h.sum, h.schema, h.zero_threshold, h.zero_count, h.positive, h.negative,
              h.custom_values, h.counter_reset_hint)  # fmt: skip
    return _bits(fields)


def _answer(store: SeriesStore, query: str, dense: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(densehist, "ENABLED", dense)
    monkeypatch.setattr(densehist, "_CACHE", {})
    res = Engine(store).range(query, 60_000, (N - 1) * STEP, STEP)
    hists = None
    if res.histograms is not None:
        hists = [[_hist_key(h) for h in row] for row in res.histograms.tolist()]
    values = [[_bits(v) for v in row] for row in res.values.tolist()]
    return res.labels, values, res.present.tolist(), hists, res.warnings, res.infos


@pytest.mark.parametrize("query", QUERIES)
def test_dense_path_is_bit_identical(query: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store()
    fast = _answer(store, query, True, monkeypatch)
    slow = _answer(store, query, False, monkeypatch)
    assert fast == slow
    assert any(any(row) for row in fast[2]) or fast[4], "the query should answer or warn"


def test_fast_path_is_taken_for_uniform_series(monkeypatch: pytest.MonkeyPatch) -> None:
    """The series that keep one layout are held densely; the one that changes schema is not."""
    store = _store()
    engine = Engine(store)
    seen: list[int] = []
    real = densehist.add_rows

    def spy(rows: Any, average: bool) -> densehist.DenseRow:
        seen.append(len(rows))
        return real(rows, average)

    monkeypatch.setattr(densehist, "add_rows", spy)
    engine.range("sum(rate(lat{instance=~'a|e|f'}[1m]))", 60_000, (N - 1) * STEP, STEP)
    assert seen == [3]
    seen.clear()
    engine.range("sum(rate(lat{instance=~'a|d'}[1m]))", 60_000, (N - 1) * STEP, STEP)
    assert seen == []  # "d" changes schema: the per-point sum


def test_lazy_histograms_compare_as_histograms() -> None:
    row = densehist.DenseRow(
        (0, 0.0, (), "gauge"), (0, 1), (), np.array([[3.0, 1.5, 0.0, 1.0, 2.0]]),
        np.array([[True, True]]), np.array([True]),
    )  # fmt: skip
    cell = row.cells()[0]
    plain = FloatHistogram(3.0, 1.5, 0, 0.0, 0.0, ((0, 1.0), (1, 2.0)), counter_reset_hint="gauge")
    assert cell == plain and plain == cell and hash(cell) == hash(plain)
    assert repr(cell) == repr(plain)
    again = row.cells()[0]
    copied = pickle.loads(pickle.dumps(again))
    assert type(copied) is FloatHistogram and copied == plain
    assert type(copy.deepcopy(row.cells()[0])) is FloatHistogram
