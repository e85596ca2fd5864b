"""Native-histogram edge cases where Prometheus 3 has a rule of its own, each worked by hand.

- Dividing a histogram by zero leaves only its count, sum and zero bucket (``FloatHistogram.Div``:
  "division by zero removes all buckets"); x/0 is +Inf and 0/0 NaN, as for floats.
- Adding or subtracting histograms with different custom bounds merges them onto the bounds both
  share and says so in an info.
- A quantile of a histogram whose observations are all NaN (a NaN sum, no bucket) is NaN, with the
  info that NaN observations made it so.
- histogram_count/sum/avg read their selectors without buckets, through Prometheus's stats
  iterator, which gives each sample a counter-reset hint of its own; aggregating a "reset" with a
  "not_reset" sample then warns. Nothing else does (no such hints without it), and nothing under a
  subquery does either.
- Classic buckets and a native histogram with the same labels (``le`` aside) are not evaluated
  at all by histogram_quantile/histogram_fraction: a warning, no result.
- The ``fill`` binary modifier (experimental upstream) is refused, not silently ignored.
"""

from __future__ import annotations

import pytest

from sloanalysis.promql import Engine, PromQLError
from sloanalysis.promql.promqltest import SKIP_FLAG, run_script
from sloanalysis.sources.notation import load_series


def _statuses(script: str) -> list[str]:
    results = run_script(script)
    return [r.status if r.status == "passed" else f"{r.status}: {r.detail}" for r in results]


def test_division_by_zero_keeps_only_count_sum_and_zero_bucket() -> None:
    script = """
load 1m
  lat {{schema:0 count:4 sum:6 z_bucket:1 z_bucket_w:0.001 buckets:[1 2]}}
  zero 0

eval instant at 1m lat / 0
  {} {{schema:0 count:Inf sum:Inf z_bucket:Inf z_bucket_w:0.001}}

eval instant at 1m lat / on() zero
  {} {{schema:0 count:Inf sum:Inf z_bucket:Inf z_bucket_w:0.001}}

eval instant at 1m lat * 0 / 0
  {} {{schema:0 count:NaN sum:NaN z_bucket:NaN z_bucket_w:0.001}}

eval instant at 1m lat / 2
  {} {{schema:0 count:2 sum:3 z_bucket:0.5 z_bucket_w:0.001 buckets:[0.5 1]}}
"""
    assert _statuses(script) == ["passed"] * 4


def test_custom_bounds_reconciled_by_addition_and_subtraction_give_an_info() -> None:
    # a: 1 at or below 5, 1 in (5, 10]; b: 2 at or below 10. Only 10 is a bound of both, so a
    # counts 2 at or below 10, and a + b 4, a - b 0.
    script = """
load 1m
  lat{side="a"} {{schema:-53 count:2 sum:3 custom_values:[5 10] buckets:[1 1]}}
  lat{side="b"} {{schema:-53 count:2 sum:4 custom_values:[10] buckets:[2]}}

eval instant at 1m lat{side="a"} + ignoring(side) lat{side="b"}
  expect info msg: PromQL info: mismatched custom buckets were reconciled during addition
  {} {{schema:-53 count:4 sum:7 custom_values:[10] buckets:[4]}}

eval instant at 1m lat{side="a"} - ignoring(side) lat{side="b"}
  expect info msg: PromQL info: mismatched custom buckets were reconciled during subtraction
  {} {{schema:-53 count:0 sum:-1 custom_values:[10] buckets:[0] counter_reset_hint:gauge}}

eval instant at 1m lat{side="a"} + ignoring(side) lat{side="a"}
  expect no_info
  {} {{schema:-53 count:4 sum:6 custom_values:[5 10] buckets:[2 2]}}
"""
    assert _statuses(script) == ["passed"] * 3


def test_quantile_of_only_nan_observations_is_nan_with_an_info() -> None:
    info = "PromQL info: input to histogram_quantile has NaN observations, result is NaN"
    script = f"""
load 1m
  odd {{{{schema:0 count:5 sum:NaN}}}}

eval instant at 1m histogram_quantile(0.3, odd)
  expect info msg: {info} for metric name "odd"
  {{}} NaN

eval instant at 1m histogram_quantile(0.9, odd)
  expect info msg: {info} for metric name "odd"
  {{}} NaN
"""
    assert _statuses(script) == ["passed"] * 2


# `up` grows, so each sample after the first is "not_reset"; `down` shrinks at 2m, a "reset".
# increase(req[2m]) at 2m sees the samples at 1m and 2m and extrapolates their change over 60 s
# to the 120 s window: up 1 -> 2, down (reset: 1 + 5 - 5) 1 -> 2, so the sum counts 4.
RESETS = """
load 1m
  req{pod="up"}   {{count:1 sum:1 buckets:[1]}} {{count:2 sum:2 buckets:[2]}} {{count:3 sum:3 buckets:[3]}}
  req{pod="down"} {{count:4 sum:4 buckets:[4]}} {{count:5 sum:5 buckets:[5]}} {{count:1 sum:1 buckets:[1]}}
"""
CONFLICT = "PromQL warning: conflicting counter resets during histogram aggregation"


def test_stats_functions_detect_resets_and_warn_on_conflicts() -> None:
    script = (
        RESETS
        + f"""
eval instant at 2m histogram_count(sum(req))
  expect warn msg: {CONFLICT}
  {{}} 4

eval instant at 2m histogram_sum(avg(req))
  expect warn msg: {CONFLICT}
  {{}} 2

eval instant at 1m histogram_count(sum(req))
  expect no_warn
  {{}} 7

eval instant at 2m sum(req)
  expect no_warn
  {{}} {{{{schema:0 count:4 sum:4 buckets:[4]}}}}

eval instant at 2m histogram_quantile(1, sum(req))
  expect no_warn
  {{}} 1

eval instant at 2m histogram_count(sum(last_over_time(req[90s:30s])))
  expect no_warn
  {{}} 4

eval instant at 2m histogram_count(sum(req) + 0 * sum(req))
  expect no_warn
  {{}} 4

eval instant at 2m histogram_count(sum(last_over_time(req[1m])))
  expect warn msg: {CONFLICT}
  {{}} 4

eval instant at 2m histogram_count(sum(increase(req[2m])))
  expect no_warn
  {{}} 4
"""
    )
    assert _statuses(script) == ["passed"] * 9


def test_classic_and_native_histograms_sharing_labels_give_no_result_and_a_warning() -> None:
    mixed = 'PromQL warning: vector contains a mix of classic and native histograms for metric name "lat"'
    script = f"""
load 1m
  lat{{le="1"}}    0+1x2
  lat{{le="+Inf"}} 0+2x2
  lat             {{{{schema:0 count:4 sum:2 buckets:[4]}}}}
  other{{le="1"}}    1
  other{{le="+Inf"}} 2

eval instant at 1m histogram_quantile(0.5, lat)
  expect warn msg: {mixed}

eval instant at 1m histogram_fraction(0, 1, lat)
  expect warn msg: {mixed}

eval instant at 1m histogram_quantile(0.5, {{__name__=~"lat|other"}})
  expect warn msg: {mixed}
  {{}} 1
"""
    assert _statuses(script) == ["passed"] * 3


def test_fill_modifier_is_refused_and_skipped_by_the_runner() -> None:
    eng = Engine(load_series(["a 1", "b 2"], 60_000))
    with pytest.raises(PromQLError, match="fill modifier is not supported"):
        eng.instant("a + fill(0) b", 0)
    (result,) = run_script("load 1m\n  a 1\n  b 2\n\neval instant at 0m a + fill(0) b\n  {} 3\n")
    assert (result.status, result.detail) == ("skipped", SKIP_FLAG)
