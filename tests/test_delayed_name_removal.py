"""Delayed ``__name__`` removal (Prometheus 3's ``promql-delayed-name-removal``), worked by hand.

Two counters share ``env="1"``: ``a_total`` grows 1 per second and ``b_total`` 2 per second,
sampled every minute. ``rate(...[2m])`` at 4m sees the samples at 3m and 4m, extrapolated to the
whole window, so it is exactly 1 and 2. With names dropped at once both rates are ``{env="1"}``;
with delayed removal they stay apart until the end of the query.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sloanalysis.promql import Engine, PromQLError
from sloanalysis.promql.promqltest import run_script
from sloanalysis.store import SeriesStore

AT = 240_000  # 4m


def _store() -> SeriesStore:
    store = SeriesStore()
    ts = np.arange(0, 300_000, 60_000)
    store.add({"__name__": "a_total", "env": "1"}, ts, ts / 1000.0)
    store.add({"__name__": "b_total", "env": "1"}, ts, 2 * ts / 1000.0)
    return store


def _engines() -> tuple[Engine, Engine]:
    store = _store()
    return Engine(store), Engine(store, delayed_name_removal=True)


def _answer(engine: Engine, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
    res = engine.instant(expr, AT)
    return {lab: float(res.values[i, 0]) for i, lab in enumerate(res.labels)}


def test_off_by_default_as_in_prometheus() -> None:
    assert Engine(SeriesStore()).delayed_name_removal is False


def test_sum_by_env_over_two_rates() -> None:
    now, delayed = _engines()
    # At once: rate leaves two {env="1"} rows, Prometheus's duplicate label set error.
    with pytest.raises(PromQLError, match="same labelset"):
        now.instant('sum by (env) (rate({env="1"}[2m]))', AT)
    assert _answer(delayed, 'sum by (env) (rate({env="1"}[2m]))') == {(("env", "1"),): 3.0}


def test_sum_by_name() -> None:
    now, delayed = _engines()
    # Delayed: groups a_total and b_total, both marked, both become {} at the end (upstream's
    # "accidental side effect"); at once, rate itself already collides.
    for engine in (now, delayed):
        with pytest.raises(PromQLError, match="same labelset"):
            engine.instant('sum by (__name__) (rate({env="1"}[2m]))', AT)
    # One group, marked: the name still goes. Unmarked rows keep it.
    assert _answer(delayed, "sum by (__name__) (rate(a_total[2m]))") == {(): 1.0}
    assert _answer(delayed, "sum by (__name__) (a_total)") == {(("__name__", "a_total"),): 240.0}
    # A group is marked if any member is: a_total (240, kept) plus its own rate moved to env="2"
    # (1, marked) make one group a_total whose name goes.
    expr = 'sum by (__name__) (a_total or label_replace(rate(a_total[2m]), "env", "2", "", ""))'
    assert _answer(delayed, expr) == {(): 241.0}


def test_label_replace_reads_and_keeps_the_name() -> None:
    now, delayed = _engines()
    expr = 'label_replace(rate(a_total[2m]), "__name__", "r_$1", "__name__", "(.+)")'
    # At once the name is gone before label_replace sees it: "(.+)" does not match "".
    assert _answer(now, expr) == {(("env", "1"),): 1.0}
    # Delayed: the match writes __name__, which keeps it.
    assert _answer(delayed, expr) == {(("__name__", "r_a_total"), ("env", "1")): 1.0}
    copied = 'label_replace(rate({env="1"}[2m]), "was", "$1", "__name__", "(.+)")'
    assert _answer(delayed, copied) == {
        (("env", "1"), ("was", "a_total")): 1.0,
        (("env", "1"), ("was", "b_total")): 2.0,
    }


def test_label_join_into_the_name_keeps_it() -> None:
    _, delayed = _engines()
    expr = 'label_join(rate(b_total[2m]), "__name__", "_", "__name__", "env")'
    assert _answer(delayed, expr) == {(("__name__", "b_total_1"), ("env", "1")): 2.0}


def test_operators_and_functions_mark_like_upstream() -> None:
    _, delayed = _engines()
    # A filter keeps the name; bool, arithmetic and functions drop it at the end.
    assert _answer(delayed, "a_total > 100") == {(("__name__", "a_total"), ("env", "1")): 240.0}
    assert _answer(delayed, "a_total > bool 100") == {(("env", "1"),): 1.0}
    assert _answer(delayed, "-a_total") == {(("env", "1"),): -240.0}
    assert _answer(delayed, "abs(a_total)") == {(("env", "1"),): 240.0}
    assert _answer(delayed, "last_over_time(a_total[1m])") == {(("__name__", "a_total"), ("env", "1")): 240.0}
    # topk passes each chosen row's mark on: b_total's rate is the larger, and its name goes.
    assert _answer(delayed, 'topk(1, rate({env="1"}[2m]))') == {(("env", "1"),): 2.0}


def test_range_query_merges_rows_that_meet_at_the_end() -> None:
    store = SeriesStore()
    store.add({"__name__": "x"}, [0], [1.0])
    store.add({"__name__": "y"}, [0, 600_000], [3.0, 4.0])
    res = Engine(store, delayed_name_removal=True).range("-x or -y", 0, 600_000, 300_000)
    # x only at 0 (at 5m its sample is exactly 5m old, outside the lookback); y at 0 and 10m,
    # but `or` keeps y only where x has nothing. Both become {} and merge into one series.
    assert res.labels == [()]
    assert res.present[0].tolist() == [True, False, True]
    assert res.values[0, [0, 2]].tolist() == [-1.0, -4.0]


def test_runner_compares_raw_native_histogram_samples() -> None:
    script = """
load 1m
  h {{count:0}}+{{count:1}}x4

eval instant at 2m h[2m]
  expect range vector from 1m to 2m step 60s
  h {{count:1}} {{count:2}}

eval instant at 2m h[2m]
  expect range vector from 1m to 2m step 60s
  h {{count:1}} {{count:3}}
"""
    right, wrong = run_script(script)
    assert right.status == "passed", right.detail
    assert wrong.status == "failed"


def test_query_command_enables_the_feature(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sloanalysis query --enable-feature promql-delayed-name-removal`, as Prometheus's flag."""
    import json

    from reporting import write_store_run

    from sloanalysis.cli.main import main

    run = write_store_run(_store(), tmp_path / "run")
    expr = 'label_replace(rate(a_total[2m]), "was", "$1", "__name__", "(.+)")'
    common = ["query", str(run), expr, "--at", str(AT / 1000), "--format", "json"]
    assert main(common) == 0
    assert [r.get("was") for r in json.loads(capsys.readouterr().out)] in ([None], [""])
    assert main([*common, "--enable-feature", "promql-delayed-name-removal"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r.get("was"), r["value"]) for r in rows] == [("a_total", 1.0)]


def test_native_histogram_functions_delay_the_name_too() -> None:
    """histogram_count/quantile/fraction mark the name rather than drop it, as Prometheus 3 does.

    ``lat_a`` (schema 0) holds 1 in (0.5,1], 2 in (1,2] and 1 in (2,4]: its median is rank 2 of
    4, halfway through (1,2] by count, which exponential interpolation puts at 2**0.5. ``lat_b``
    holds 2 in each of the same buckets, so 2 of its 6 observations are at or below 1.
    """
    script = """
load 5m
  lat_a{job="x"} {{schema:0 sum:5 count:4 buckets:[1 2 1]}}x4
  lat_b{job="x"} {{schema:0 sum:8 count:6 buckets:[2 2 2]}}x4

eval instant at 10m label_replace(histogram_count(lat_a), "was", "$1", "__name__", "(.*)")
  {job="x", was="lat_a"} 4

eval instant at 10m label_replace(histogram_quantile(0.5, lat_a), "was", "$1", "__name__", "(.*)")
  {job="x", was="lat_a"} 1.4142135623730951

eval instant at 10m label_replace(histogram_fraction(0, 1, lat_b), "was", "$1", "__name__", "(.*)")
  {job="x", was="lat_b"} 0.3333333333333333

eval instant at 10m histogram_sum(lat_b)
  {job="x"} 8

eval instant at 10m histogram_count({__name__=~"lat_.*"})
  expect fail
"""
    results = run_script(script)
    assert [r.status for r in results] == ["passed"] * 5, [r.detail for r in results]
    # Without the option the name is gone before label_replace can read it.
    store_answer = Engine(_native_store()).instant(
        'label_replace(histogram_count(lat_a), "was", "$1", "__name__", "(.*)")', 600_000
    )
    assert store_answer.labels == [(("job", "x"),)]


def _native_store() -> SeriesStore:
    from sloanalysis.nativehist import FloatHistogram

    store = SeriesStore()
    h = FloatHistogram(count=4.0, sum=5.0, positive=((0, 1.0), (1, 2.0), (2, 1.0)))
    cells = np.empty(3, dtype=object)
    cells[:] = [h, h, h]
    store.add({"__name__": "lat_a", "job": "x"}, [0, 300_000, 600_000], [np.nan] * 3, histograms=cells)
    return store
