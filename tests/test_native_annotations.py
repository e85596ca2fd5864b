"""Prometheus 3's annotations about native histograms that carry NaN observations (a NaN sum and
fewer observations in buckets than counted) and about sums of histograms whose counter-reset
hints conflict, worked out by hand on small histograms.

``x`` below counts 4 observations of which 2 are NaN: one in (0.5, 1], one in (1, 2] (schema 0).
A NaN sum makes the quantile walk the buckets upwards: rank 0.5 * 4 = 2 is reached at the top of
(1, 2], so the 0.5 quantile is 2, skewed higher by the NaNs; rank 0.9 * 4 = 3.6 is never reached,
so the 0.9 quantile is NaN. The share of observations up to 1 is 1 of 4 (NaNs stay in the
denominator).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sloanalysis.nativehist import FloatHistogram
from sloanalysis.promql.engine import Engine
from sloanalysis.store import SeriesStore

NAN_X = FloatHistogram(4.0, math.nan, positive=((0, 1.0), (1, 1.0)))
INF_X = FloatHistogram(2.0, math.nan, positive=((0, 1.0), (1, 1.0)))  # +Inf and -Inf: no NaN


def _store(**series: list[FloatHistogram]) -> SeriesStore:
    store = SeriesStore()
    for name, hs in series.items():
        metric, _, inst = name.partition("_")
        cells = np.empty(len(hs), dtype=object)
        cells[:] = hs
        ts = np.arange(len(hs), dtype=np.int64) * 60_000
        store.add({"__name__": metric, "instance": inst or "a"}, ts, np.full(len(hs), math.nan), cells)
    return store


def test_quantile_skewed_by_nan_observations() -> None:
    res = Engine(_store(x=[NAN_X])).instant("histogram_quantile(0.5, x)", 0)
    assert res.values[0, 0] == pytest.approx(2.0)
    assert res.infos == [
        "PromQL info: input to histogram_quantile has NaN observations, result is skewed higher"
        ' for metric name "x" (1:20)'
    ]


def test_quantile_beyond_the_buckets_is_nan() -> None:
    res = Engine(_store(x=[NAN_X])).instant("histogram_quantile(0.9, x)", 0)
    assert math.isnan(res.values[0, 0])
    assert res.infos == [
        "PromQL info: input to histogram_quantile has NaN observations, result is NaN"
        ' for metric name "x" (1:20)'
    ]


def test_fraction_excludes_nan_observations() -> None:
    res = Engine(_store(x=[NAN_X])).instant("histogram_fraction(0, 1, x)", 0)
    assert res.values[0, 0] == pytest.approx(0.25)
    assert res.infos == [
        "PromQL info: input to histogram_fraction has NaN observations, which are excluded from all "
        'fractions for metric name "x" (1:20)'
    ]


def test_nameless_input_has_no_metric_name_in_the_info() -> None:
    res = Engine(_store(x=[NAN_X])).instant("histogram_quantile(0.5, x * 1)", 0)
    assert res.infos == [
        "PromQL info: input to histogram_quantile has NaN observations, result is skewed higher (1:20)"
    ]


def test_infinite_observations_alone_give_no_info() -> None:
    """A NaN sum from +Inf and -Inf observations, every observation in a bucket: nothing to say."""
    for expr in ("histogram_quantile(0.5, x)", "histogram_fraction(0, 1, x)"):
        assert Engine(_store(x=[INF_X])).instant(expr, 0).infos == []


def test_sum_of_conflicting_counter_reset_hints_warns() -> None:
    reset = FloatHistogram(1.0, 1.0, positive=((0, 1.0),), counter_reset_hint="reset")
    not_reset = FloatHistogram(1.0, 1.0, positive=((0, 1.0),), counter_reset_hint="not_reset")
    store = _store(x_a=[reset], x_b=[not_reset])
    for expr in ("sum(x)", "avg(x)"):
        res = Engine(store).instant(expr, 0)
        assert res.warnings == [
            "PromQL warning: conflicting counter resets during histogram aggregation (1:1)"
        ]
        assert res.histograms is not None and res.histograms[0, 0].count == pytest.approx(
            2.0 if expr == "sum(x)" else 1.0
        )


def test_sum_over_time_of_conflicting_hints_warns_at_its_argument() -> None:
    reset = FloatHistogram(1.0, 1.0, positive=((0, 1.0),), counter_reset_hint="reset")
    not_reset = FloatHistogram(2.0, 2.0, positive=((0, 2.0),), counter_reset_hint="not_reset")
    res = Engine(_store(x=[reset, not_reset])).instant("sum_over_time(x[2m])", 60_000)
    assert res.warnings == ["PromQL warning: conflicting counter resets during histogram aggregation (1:15)"]


def test_agreeing_hints_do_not_warn() -> None:
    h = FloatHistogram(1.0, 1.0, positive=((0, 1.0),), counter_reset_hint="not_reset")
    assert Engine(_store(x_a=[h], x_b=[h])).instant("sum(x)", 0).warnings == []
