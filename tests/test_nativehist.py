"""Native histograms: the notation, the store, and the engine's functions, operators and
aggregations over them. Expected values are worked out by hand in the comments.

The reference histogram H = {{schema:0 sum:5 count:4 buckets:[1 2 1]}} has, at schema 0
(base 2), one observation in (0.5, 1], two in (1, 2] and one in (2, 4].
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sloanalysis.errors import DataError
from sloanalysis.nativehist import (
    FloatHistogram,
    IncompatibleHistograms,
    fraction,
    histogram_string,
    parse_histogram,
    quantile,
    variance,
)
from sloanalysis.promql import Engine
from sloanalysis.promql.promqltest import run_file, run_script, summarize
from sloanalysis.sources.notation import expand_values, load_series, nhcb_series
from sloanalysis.store import SeriesStore

H = "{{schema:0 sum:5 count:4 buckets:[1 2 1]}}"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "promqltest"


def _h() -> FloatHistogram:
    return parse_histogram(H)


# -- the notation ---------------------------------------------------------------------------------


def test_notation_reads_every_field() -> None:
    h = parse_histogram(
        "{{schema:1 sum:-3 count:9 z_bucket:2 z_bucket_w:0.5 buckets:[1 2] offset:-1 "
        "n_buckets:[3 0 1] n_offset:2 counter_reset_hint:gauge}}"
    )
    assert (h.schema, h.sum, h.count, h.zero_count, h.zero_threshold) == (1, -3, 9, 2, 0.5)
    assert h.positive == ((-1, 1.0), (0, 2.0))
    assert h.negative == ((2, 3.0), (3, 0.0), (4, 1.0))
    assert h.counter_reset_hint == "gauge"


def test_notation_rejects_unknown_keys_and_hints() -> None:
    with pytest.raises(ValueError):
        parse_histogram("{{schema:0 colour:1}}")
    with pytest.raises(ValueError):
        parse_histogram("{{counter_reset_hint:maybe}}")


def test_series_expansion_adds_and_repeats() -> None:
    # a+bx2 is a, a+b, a+2b; axN repeats; floats and blanks mix in.
    items = expand_values("{{count:1 sum:1}}+{{count:2 sum:3 buckets:[2]}}x2 _ 7 {{count:5}}x1")
    assert [i.count if isinstance(i, FloatHistogram) else i for i in items] == [1, 3, 5, None, 7, 5, 5]
    last = items[2]
    assert isinstance(last, FloatHistogram) and last.sum == 7 and last.positive == ((0, 4.0),)


def test_series_expansion_subtracts() -> None:
    items = expand_values("{{count:10 sum:10}}-{{count:3 sum:1}}x2")
    assert [i.count for i in items if isinstance(i, FloatHistogram)] == [10, 7, 4]


def test_bad_histogram_in_series_is_a_data_error() -> None:
    with pytest.raises(DataError):
        expand_values("{{schema:0 nonsense}}")


# -- the store ------------------------------------------------------------------------------------


def test_store_keeps_histograms_aligned_through_merges() -> None:
    store = load_series([f"m 1 {H} _ 3"], 60_000)
    # A second add out of order: merged and sorted, the histogram stays with its timestamp.
    series = store.add((("__name__", "m"),), np.array([150_000]), np.array([2.5]))
    assert series.timestamps.tolist() == [0, 60_000, 150_000, 180_000]
    assert series.histograms is not None
    assert [h is not None for h in series.histograms] == [False, True, False, False]
    assert math.isnan(series.values[1])


def test_float_series_carry_no_histogram_array() -> None:
    store = SeriesStore()
    s = store.add({"__name__": "f"}, [0, 1], [1.0, 2.0])
    assert s.histograms is None


# -- statistics of one histogram --------------------------------------------------------------------


def test_quantile_interpolates_exponentially() -> None:
    # rank 0.5*4 = 2 falls in (1, 2] after 1 observation: halfway on a log scale is sqrt(2).
    assert quantile(0.5, _h()) == pytest.approx(math.sqrt(2))
    assert quantile(1.0, _h()) == 4.0
    assert quantile(0.0, _h()) == 0.5
    assert quantile(-0.1, _h()) == -math.inf and quantile(1.1, _h()) == math.inf


def test_quantile_of_custom_buckets_is_linear() -> None:
    # Buckets (-Inf,1]:2 (1,3]:2 (3,+Inf]:0; rank 3 of 4 is halfway into (1,3] -> 2.
    h = parse_histogram("{{schema:-53 count:4 sum:6 custom_values:[1 3] buckets:[2 2 0]}}")
    assert quantile(0.75, h) == pytest.approx(2.0)
    # rank 1 lies in the first bucket, whose lower bound counts as 0: halfway to 1.
    assert quantile(0.25, h) == pytest.approx(0.5)


def test_fraction_between_bounds() -> None:
    # Everything up to 2: buckets (0.5,1] and (1,2] = 3 of 4.
    assert fraction(0, 2, _h()) == pytest.approx(0.75)
    # Up to 1.5: 1 + 2*log2(1.5) observations (log-scale interpolation in (1,2]).
    assert fraction(0, 1.5, _h()) == pytest.approx((1 + 2 * math.log2(1.5)) / 4)
    assert fraction(3, 1, _h()) == 0.0
    assert math.isnan(fraction(0, 1, FloatHistogram(count=0, sum=0)))


def test_variance_uses_geometric_bucket_means() -> None:
    mean = 5 / 4
    points = [(1, math.sqrt(0.5)), (2, math.sqrt(2)), (1, math.sqrt(8))]
    expected = sum(c * (v - mean) ** 2 for c, v in points) / 4
    assert variance(_h()) == pytest.approx(expected)


def test_counter_reset_detection() -> None:
    h = _h()
    assert not h.detect_reset(h)
    assert parse_histogram("{{count:3 buckets:[3]}}").detect_reset(h)  # total count fell
    assert parse_histogram("{{count:5 buckets:[0 5]}}").detect_reset(h)  # bucket (0.5,1] emptied
    # A coarser schema merges the previous buckets first: schema -1 bucket 0 is (0.25, 1],
    # bucket 1 is (1, 4]; 1 <= 1 and 3 <= 4, so no reset.
    assert not parse_histogram("{{schema:-1 count:5 buckets:[1 4]}}").detect_reset(h)
    with pytest.raises(IncompatibleHistograms):
        h.add(parse_histogram("{{schema:-53 custom_values:[1] buckets:[1]}}"))


def test_adding_custom_histograms_with_other_bounds_keeps_the_common_ones() -> None:
    a = parse_histogram("{{schema:-53 count:3 custom_values:[1 2] buckets:[1 1 1]}}")
    b = parse_histogram("{{schema:-53 count:2 custom_values:[2 5] buckets:[1 1 0]}}")
    total, reconciled = a.add(b)
    # Common bound 2: (-Inf,2] gets 1+1 from a and 1 from b; (2,+Inf] gets 1 from a, 1+0 from b.
    assert reconciled and total.custom_values == (2.0,)
    assert total.positive == ((0, 3.0), (1, 2.0))


def test_string_form_used_by_count_values() -> None:
    h = parse_histogram(
        "{{schema:0 sum:10 count:20 z_bucket_w:0.001 z_bucket:2 buckets:[1 2] n_buckets:[1 2]}}"
    )
    assert histogram_string(h) == (
        "{count:20, sum:10, [-2,-1):2, [-1,-0.5):1, [-0.001,0.001]:2, (0.5,1]:1, (1,2]:2}"
    )


def test_buckets_list_negative_zero_positive() -> None:
    h = parse_histogram("{{schema:0 count:4 z_bucket:1 z_bucket_w:0.5 buckets:[1] n_buckets:[2]}}")
    assert h.buckets() == [
        (-1.0, -0.5, 2.0, True, False),
        (-0.5, 0.5, 1.0, True, True),
        (0.5, 1.0, 1.0, False, True),
    ]


# -- the engine -----------------------------------------------------------------------------------


def _engine() -> Engine:
    return Engine(
        load_series(
            [
                f'h{{a="1"}} {H}x10',
                f'h{{a="2"}} {H}x10',
                # +1 in (0.5,1] and +1 in (1,2] every minute.
                "c_total {{schema:0 sum:0 count:0}}+{{schema:0 sum:1 count:2 buckets:[1 1]}}x10",
                "mixed 1 2 " + H,
            ],
            60_000,
        )
    )


def _one(expr: str, at_ms: int = 600_000) -> tuple[list[dict[str, str]], list[object]]:
    res = _engine().instant(expr, at_ms)
    out: list[object] = []
    for i in range(len(res.labels)):
        cell = res.histograms[i, 0] if res.histograms is not None else None
        out.append(cell if cell is not None else float(res.values[i, 0]))
    return [dict(lab) for lab in res.labels], out


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("histogram_count(h)", 4.0),
        ("histogram_sum(h)", 5.0),
        ("histogram_avg(h)", 1.25),
        ("histogram_quantile(0.5, h)", math.sqrt(2)),
        ("histogram_fraction(0, 2, h)", 0.75),
    ],
)
def test_histogram_functions(expr: str, value: float) -> None:
    labels, values = _one(expr)
    assert labels == [{"a": "1"}, {"a": "2"}]  # the metric name is dropped
    assert values == [pytest.approx(value)] * 2


def test_rate_extrapolates_like_floats() -> None:
    # Samples 6m..10m in (5m, 10m]: 4 increments of count 2 over 240 s; the first sample is 60 s
    # after the window start (within 1.1 x the 60 s spacing), so extrapolate by 300/240.
    _, values = _one("rate(c_total[5m])")
    (h,) = values
    assert isinstance(h, FloatHistogram)
    assert h.count == pytest.approx(8 * 1.25 / 300)
    assert h.positive == ((0, pytest.approx(4 * 1.25 / 300)), (1, pytest.approx(4 * 1.25 / 300)))
    assert _one("histogram_fraction(0, 1, rate(c_total[5m]))")[1] == [pytest.approx(0.5)]


def test_rate_over_a_counter_reset() -> None:
    store = load_series(
        ["r_total {{count:4 sum:4 buckets:[4]}} {{count:1 sum:1 buckets:[1]}} {{count:3 sum:3 buckets:[3]}}"],
        60_000,
    )
    res = Engine(store).instant("increase(r_total[5m])", 120_000)
    assert res.histograms is not None
    h = res.histograms[0, 0]
    # Raw increase 1 (after the reset) + 2 = 3; window (-3m, 2m]: the start is 180 s before the
    # first sample, more than 1.1 x 60 s, so extrapolate 30 s: 3 * 150/120.
    assert h.count == pytest.approx(3.75)


def test_sum_avg_and_scalar_arithmetic() -> None:
    _, (total,) = _one("sum(h)")
    assert (
        isinstance(total, FloatHistogram) and total.count == 8 and total.positive == ((0, 2), (1, 4), (2, 2))
    )
    _, (mean,) = _one("avg(h)")
    assert isinstance(mean, FloatHistogram) and mean.count == 4
    _, doubled = _one("h * 2")
    assert all(isinstance(d, FloatHistogram) and d.sum == 10 for d in doubled)
    _, halved = _one("h / 2")
    assert all(isinstance(d, FloatHistogram) and d.count == 2 for d in halved)
    assert _one("count(h)")[1] == [2.0]


def test_incompatible_operations_drop_the_point_with_an_info() -> None:
    res = _engine().instant("h + 1", 600_000)
    assert res.labels == [] and res.infos and "histogram + float" in res.infos[0]


def test_mixed_series_in_functions() -> None:
    engine = _engine()
    # rate over a window holding floats and a histogram: no result, a warning.
    res = engine.instant("rate(mixed[5m])", 120_000)
    assert res.labels == [] and "mix of histograms and floats" in res.warnings[0]
    # max_over_time ignores the histogram, with an info.
    res = engine.instant("max_over_time(mixed[5m])", 120_000)
    assert float(res.values[0, 0]) == 2.0 and res.infos
    # abs() skips histogram samples silently.
    assert engine.instant("abs(mixed)", 120_000).labels == []


def test_float_query_results_carry_no_histograms() -> None:
    res = Engine(load_series(["x 1 2 3"], 60_000)).range("x * 2", 0, 120_000, 60_000)
    assert res.histograms is None


# -- loaders and the shared scripts -------------------------------------------------------------


def test_load_with_nhcb_builds_custom_bucket_histograms() -> None:
    store = load_series(
        ['t_bucket{le="1"} 2', 't_bucket{le="5"} 5', 't_bucket{le="+Inf"} 6', "t_sum 11"], 60_000
    )
    ((labels, ts, _, hs),) = nhcb_series(store)
    assert dict(labels) == {"__name__": "t"} and ts.tolist() == [0]
    h = hs[0]
    assert (h.schema, h.count, h.sum, h.custom_values) == (-53, 6.0, 11.0, (1.0, 5.0))
    assert h.positive == ((0, 2.0), (1, 3.0), (2, 1.0))


def test_promqltest_compares_histograms() -> None:
    script = f"""
load 1m
  m {H}

eval instant at 1m m
  m {H}

eval instant at 1m m
  m {{{{schema:0 sum:5 count:4 buckets:[1 2 2]}}}}
"""
    assert [r.status for r in run_script(script)] == ["passed", "failed"]


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared promqltest scripts not present")
def test_shared_scripts_pass_without_skips() -> None:
    results = [r for path in sorted(SHARED.glob("*.test")) for r in run_file(path)]
    _, failed, skipped, _ = summarize(results)
    assert (failed, skipped) == (0, 0), [r for r in results if r.status != "passed"][:3]


def test_parquet_round_trip_keeps_histograms(tmp_path: Path) -> None:
    text = (
        "h 1 {{schema:-53 sum:2.5 count:3 custom_values:[0.1 1] buckets:[1 2] counter_reset_hint:gauge}} "
        "{{schema:2 sum:1e-9 count:7 z_bucket:1 z_bucket_w:0.001 buckets:[1 0 5] offset:-3 n_buckets:[1]}}"
    )
    store = load_series([text, "f 1 2"], 60_000)
    store.to_parquet(tmp_path / "s.parquet")
    back = SeriesStore.from_parquet(tmp_path / "s.parquet")
    h_in, h_out = store.get({"__name__": "h"}), back.get({"__name__": "h"})
    assert (
        h_in is not None
        and h_out is not None
        and h_in.histograms is not None
        and h_out.histograms is not None
    )
    assert h_out.histograms[0] is None and h_out.values[0] == 1
    for a, b in zip(h_in.histograms[1:], h_out.histograms[1:], strict=True):
        assert a.compact() == b.compact()
    f = back.get({"__name__": "f"})
    assert f is not None and f.histograms is None


def test_custom_bucket_fraction_and_quantile_edges() -> None:
    # (-Inf,0.5]:1 (0.5,1]:2 (1,+Inf]:1. The first bucket spans 0 and the histogram has no
    # negative buckets, so it is read as [0, 0.5].
    h = parse_histogram("{{schema:-53 sum:5 count:4 custom_values:[0.5 1] buckets:[1 2 1]}}")
    assert fraction(0, 0.75, h) == pytest.approx((1 + 2 * 0.25 / 0.5) / 4)
    assert fraction(-1, 0.25, h) == pytest.approx(0.5 / 4)
    # From the top: rank 0.4 lands in (1, +Inf], which has no upper bound: its lower bound.
    assert quantile(0.9, h) == 1.0
    # From the bottom: rank 0.4 is 40% into [0, 0.5].
    assert quantile(0.1, h) == pytest.approx(0.2)


def test_uniform_series_shortcut_agrees_with_the_sample_walk() -> None:
    from sloanalysis.promql import nativefuncs

    # Resets: a count drop (3), a bucket emptied while the count grows (4), a bucket shrinking
    # (5: 5 -> 4) and a zero-bucket drop (6: 2 -> 1). Sample 2 repeats sample 1 (no change).
    text = (
        "{{count:2 sum:1 buckets:[1 1]}} {{count:4 sum:2 buckets:[2 2]}} {{count:4 sum:2 buckets:[2 2]}} "
        "{{count:1 sum:0 buckets:[1]}} {{count:5 sum:3 buckets:[0 5]}} "
        "{{count:6 sum:3 z_bucket:2 buckets:[0 4]}} {{count:7 sum:3 z_bucket:1 buckets:[0 6]}}"
    )
    items = [i for i in expand_values(text) if isinstance(i, FloatHistogram)]
    hists = np.empty(len(items), dtype=object)
    hists[:] = items
    n = len(items)
    row = nativefuncs.RowWindows(
        (), np.arange(n) * 1000, np.full(n, np.nan), hists, np.zeros(1, int), np.full(1, n),
        np.zeros(1), np.full(1, n * 1000.0), np.full(1, n * 1000), n * 1000, [], False, "1:1",
    )  # fmt: skip
    is_h = np.ones(n, dtype=bool)
    for name, expected in (("resets", [3, 4, 5, 6]), ("changes", [1, 3, 4, 5, 6])):
        fast = nativefuncs._uniform_pair_flags(name, row, is_h)
        assert fast is not None and np.flatnonzero(fast).tolist() == expected
        pairs = [(items[j], items[j - 1]) for j in range(1, n)]
        slow = [a.detect_reset(b) if name == "resets" else not a.same_as(b) for a, b in pairs]
        assert fast[1:].tolist() == slow
