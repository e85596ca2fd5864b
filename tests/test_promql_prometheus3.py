"""Prometheus 3 edge cases on float samples: classic-histogram fractions over negative buckets,
and annotations worded and placed as current Prometheus prints them.

Expected numbers are worked by hand from Prometheus's ``BucketFraction`` (promql/quantile.go):
cumulative bucket counts, linear interpolation inside a bucket, a first bucket whose upper
bound is <= 0 has no lower bound and counts whole below any value inside it. Annotation texts
follow util/annotations/annotations.go (``... for metric name "x" (line:col)``).
"""

from __future__ import annotations

import math

import pytest

from sloanalysis.promql import Engine
from sloanalysis.promql.promqltest import run_script
from sloanalysis.sources.notation import load_series

MIN = 60_000

# Cumulative counts: 10 observations <= -3, 14 <= -1, 100 in all.
NEGATIVE = ['neg_bucket{le="-3"} 10', 'neg_bucket{le="-1"} 14', 'neg_bucket{le="+Inf"} 100']


@pytest.mark.parametrize(
    ("lower", "upper", "fraction"),
    [
        # -4 lies in the first bucket (-Inf, -3]: all 10 count below it. -2 is half way
        # through (-3, -1]: 10 + 4/2 = 12 below it. (12 - 10) / 100.
        ("-4", "-2", 0.02),
        ("-Inf", "-2", 0.12),
        ("-3", "-1", 0.04),  # bucket boundaries: exactly the bucket's 4
        ("-1", "+Inf", 0.86),
        ("-10", "-5", 0.0),  # both inside the first bucket: 10 - 10
        ("-2", "-4", 0.0),  # lower >= upper
    ],
)
def test_histogram_fraction_with_negative_buckets(lower: str, upper: str, fraction: float) -> None:
    res = Engine(load_series(NEGATIVE, MIN)).instant(f"histogram_fraction({lower}, {upper}, neg_bucket)", 0)
    assert res.values[0, 0] == pytest.approx(fraction, abs=1e-12)


def test_histogram_fraction_first_bucket_above_zero_starts_at_zero() -> None:
    # le=2 is the first bucket and positive: its lower bound is 0, so 1 is half of its 4.
    store = load_series(['pos_bucket{le="2"} 4', 'pos_bucket{le="+Inf"} 8'], MIN)
    res = Engine(store).instant("histogram_fraction(0, 1, pos_bucket)", 0)
    assert res.values[0, 0] == pytest.approx(0.25)
    assert math.isnan(Engine(store).instant("histogram_fraction(NaN, 1, pos_bucket)", 0).values[0, 0])


SORT_WARNING = (
    "PromQL warning: sort is ineffective for range queries since results are always ordered by labels"
)


def test_type_and_unit_labels_go_with_the_name_and_do_not_split_matching() -> None:
    """Prometheus 3's type-and-unit labels (PROM-39): ``__type__`` and ``__unit__`` leave with
    ``__name__`` and default vector matching looks through them, so a counter in bytes and a
    gauge in bytes with otherwise equal labels match; ``on(...)`` matching is unchanged."""
    eng = Engine(
        load_series(
            [
                'disk_used{__type__="counter", __unit__="bytes", pvc="a"} 0+30x10',
                'disk_size{__type__="gauge", __unit__="bytes", pvc="a"} 120+0x10',
            ],
            MIN,
        )
    )
    at = 10 * MIN
    assert eng.instant("-disk_used", at).labels == [(("pvc", "a"),)]
    ratio = eng.instant("disk_used / disk_size", at)
    assert ratio.labels == [(("pvc", "a"),)] and ratio.values[0, 0] == 300 / 120
    assert eng.instant("rate(disk_used[5m])", at).labels == [(("pvc", "a"),)]
    kept = eng.instant('disk_used{__type__="counter"}', at)
    assert dict(kept.labels[0])["__unit__"] == "bytes"  # a selector keeps them, as it keeps the name
    assert eng.instant("disk_used / on(__type__) disk_size", at).labels == []


def test_limit_ratio_takes_its_ratio_at_every_step() -> None:
    """Prometheus bug #15971: a range query reads an aggregation's parameter step by step.

    The ratio climbs 0, 0.1, ..., 1 over ten minutes, so the sampled subset grows from nothing
    to all twelve series; at every step ``r`` and ``r - 1`` split the series between them, and
    each step agrees with an instant query at that time. A ratio read once, at the first step,
    would keep it at 0 throughout.
    """
    eng = Engine(load_series([f'm{{i="{i}"}} 1+0x10' for i in range(12)], MIN))
    ratio = "time() / 600"
    grown = eng.range(f"count(limit_ratio({ratio}, m))", 0, 10 * MIN, MIN)
    counts = [int(v) if p else 0 for v, p in zip(grown.values[0], grown.present[0], strict=True)]
    assert counts[0] == 0 and counts[-1] == 12
    assert counts == sorted(counts) and len(set(counts)) > 2
    for t in range(11):
        at = eng.instant(f"count(limit_ratio({t / 10}, m))", t * MIN)
        assert (int(at.values[0, 0]) if at.labels else 0) == counts[t]
    both = eng.range(f"count(limit_ratio({ratio}, m) or limit_ratio({ratio} - 1, m))", 0, 10 * MIN, MIN)
    assert both.values[0].tolist() == [12.0] * 11
    overlap = eng.range(f"limit_ratio({ratio}, m) and limit_ratio({ratio} - 1, m)", 0, 10 * MIN, MIN)
    assert overlap.labels == []


@pytest.mark.parametrize(
    ("expr", "position"),
    [
        ("sort(m)", "1:1"),
        ("sort_desc(m)", "1:1"),
        ('sort_by_label(m, "a")', "1:1"),
        ('sum(sort_by_label_desc(m, "a"))', "1:5"),
    ],
)
def test_sort_in_a_range_query_warns(expr: str, position: str) -> None:
    eng = Engine(load_series(['m{a="1"} 1 2 3', 'm{a="2"} 3 2 1'], MIN))
    assert eng.range(expr, 0, 2 * MIN, MIN).warnings == [f"{SORT_WARNING} ({position})"]
    assert eng.instant(expr, MIN).warnings == []


def test_bad_bucket_label_names_metric_and_position() -> None:
    store = load_series(['req_bucket{le="x"} 1', 'req_bucket{le="+Inf"} 2'], MIN)
    res = Engine(store).instant("histogram_quantile(0.5, req_bucket)", 0)
    assert res.warnings == [
        'PromQL warning: bucket label "le" is missing or has a malformed value of "x" '
        'for metric name "req_bucket" (1:25)'
    ]


def test_forced_monotonicity_info_names_metric_and_position() -> None:
    store = load_series(['lat_bucket{le="1"} 5', 'lat_bucket{le="2"} 3', 'lat_bucket{le="+Inf"} 6'], MIN)
    res = Engine(store).instant("histogram_quantile(0.5, lat_bucket)", 0)
    assert res.infos == [
        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see "
        "https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) "
        'for metric name "lat_bucket" (1:25)'
    ]


def test_quantile_warning_has_the_parameter_position() -> None:
    store = load_series(['lat_bucket{le="1"} 1', 'lat_bucket{le="+Inf"} 2'], MIN)
    res = Engine(store).instant("histogram_quantile(1.5, lat_bucket)", 0)
    assert res.warnings == ["PromQL warning: quantile value should be between 0 and 1, got 1.5 (1:20)"]


def test_runner_accepts_messages_with_or_without_position() -> None:
    # Scripts written for Prometheus <= 3.5 spell the position, later ones leave it out.
    script = (
        "load 1m\n  m 1 2 3\n\n"
        "eval range from 0 to 2m step 1m sort(m)\n"
        f"  expect warn msg: {SORT_WARNING} (1:1)\n  m 1 2 3\n\n"
        "eval range from 0 to 2m step 1m sort(m)\n"
        f"  expect warn msg: {SORT_WARNING}\n  m 1 2 3\n\n"
        "eval range from 0 to 2m step 1m sort(m)\n"
        f"  expect warn msg: {SORT_WARNING} (1:2)\n  m 1 2 3\n"
    )
    assert [r.status for r in run_script(script)] == ["passed", "passed", "failed"]


def test_limit_ratio_out_of_range_warns_with_capping_and_position() -> None:
    eng = Engine(load_series(['m{a="1"} 1', 'm{a="2"} 2'], MIN))
    assert eng.instant("limit_ratio(1.5, m)", 0).warnings == [
        "PromQL warning: ratio value should be between -1 and 1, got 1.5, capping to 1 (1:13)"
    ]
    assert eng.instant("limit_ratio(-2, m)", 0).warnings == [
        "PromQL warning: ratio value should be between -1 and 1, got -2, capping to -1 (1:13)"
    ]


@pytest.mark.parametrize(
    ("expr", "position"),
    [  # the printer's spacing and durations differ from the text; the position is the text's
        ("histogram_quantile( 0.5 ,  lat_bucket )", "1:28"),
        ("histogram_quantile(0.5, sum  by(le) (lat_bucket))", "1:25"),
    ],
)
def test_annotation_positions_follow_the_query_text(expr: str, position: str) -> None:
    store = load_series(['lat_bucket{le="1"} 5', 'lat_bucket{le="2"} 3', 'lat_bucket{le="+Inf"} 6'], MIN)
    (info,) = Engine(store).instant(expr, 0).infos
    assert info.endswith(f"({position})")


def test_counter_info_position_with_rewritten_duration() -> None:
    eng = Engine(load_series(["foo 1 2 3"], MIN))
    assert eng.instant("rate( foo [300s] )", 2 * MIN).infos == [
        "PromQL info: metric might not be a counter, name does not end in "
        '_total/_sum/_count/_bucket: "foo" (1:7)'
    ]
