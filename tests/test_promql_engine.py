"""Direct tests of the PromQL engine API."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sloanalysis.promql as promql
from sloanalysis.errors import UserError
from sloanalysis.promql import Engine, PromQLError, QueryResult, parse
from sloanalysis.promql.promqltest import run_script
from sloanalysis.sources.notation import load_series, parse_series_notation
from sloanalysis.store import STALE_NAN, SeriesStore, is_stale


def _store(lines: list[str], interval_ms: int = 60_000) -> SeriesStore:
    return load_series(lines, interval_ms)


def test_public_names() -> None:
    assert promql.__all__ == sorted(promql.__all__)
    assert set(promql.__all__) == {"Engine", "PromQLError", "QueryResult", "parse"}
    assert issubclass(PromQLError, UserError)


@pytest.mark.parametrize(
    ("text", "position"),
    [("sum(rate(x[5m])", "1:"), ("foo{", "1:5"), ("rate(x[5m]) +", "1:"), ("bogus_fn(x)", "1:1")],
)
def test_parse_errors_have_positions(text: str, position: str) -> None:
    with pytest.raises(PromQLError) as err:
        parse(text)
    assert str(err.value).startswith(position)
    assert "parse error" in str(err.value)


def test_parse_error_wording_follows_prometheus() -> None:
    with pytest.raises(
        PromQLError, match=r'expected type range vector in call to function "rate", got instant vector'
    ):
        parse("rate(x)")


def test_many_to_many_is_an_error() -> None:
    eng = Engine(_store(['a{x="1", y="1"} 1', 'a{x="1", y="2"} 2', 'b{x="1"} 3']))
    with pytest.raises(PromQLError, match="found duplicate series for the match group"):
        eng.instant("b + on(x) a", 0)
    with pytest.raises(PromQLError, match="many-to-one matching must be explicit"):
        eng.instant("a + on(x) b", 0)
    res = eng.instant("a + on(x) group_left b", 0)
    assert sorted(res.values[:, 0]) == [4.0, 5.0]


def test_query_result_shapes_and_frame() -> None:
    eng = Engine(_store(['up{job="a"} 1 1 _ 1', 'up{job="b", zone="z"} 0 0 0 0']))
    res = eng.range("up", 0, 180_000, 60_000)
    assert isinstance(res, QueryResult)
    assert res.kind == "matrix"
    assert res.steps.dtype == np.int64 and res.steps.tolist() == [0, 60_000, 120_000, 180_000]
    assert res.values.shape == res.present.shape == (2, 4)
    # The gap at 2m is filled by the 5m lookback.
    assert res.present.all()
    frame = res.to_frame()
    assert list(frame.columns) == ["timestamp", "value", "__name__", "job", "zone"]
    assert len(frame) == 8
    assert isinstance(frame["timestamp"].dtype, pd.DatetimeTZDtype)
    assert set(frame["zone"].astype(str)) == {"", "z"}

    inst = eng.instant("up", 60_000)
    assert inst.kind == "vector" and inst.values.shape == (2, 1)
    assert eng.instant("1 + 1", 0).kind == "scalar"
    assert eng.instant('"hi"', 0).string == "hi"


def test_raw_range_vector_result() -> None:
    eng = Engine(_store(["m 1 2 3"]))
    res = eng.instant("m[2m]", 120_000)
    assert res.kind == "matrix" and res.raw is not None
    ts, vals = res.raw[0]
    assert ts.tolist() == [60_000, 120_000] and vals.tolist() == [2.0, 3.0]
    assert len(res.to_frame()) == 2


def test_range_query_rejects_range_vectors() -> None:
    eng = Engine(_store(["m 1 2 3"]))
    with pytest.raises(PromQLError, match='invalid expression type "range vector"'):
        eng.range("m[1m]", 0, 60_000, 60_000)


def test_prometheus2_switch_closes_range_windows() -> None:
    eng3 = Engine(_store(["m 1 2 3"]))
    eng2 = Engine(_store(["m 1 2 3"]), prometheus2=True)
    # (0, 60s] holds one sample in 3.x; [0, 60s] holds two in 2.x.
    assert eng3.instant("count_over_time(m[1m])", 60_000).values[0, 0] == 1
    assert eng2.instant("count_over_time(m[1m])", 60_000).values[0, 0] == 2
    # Windows that start between samples agree.
    q = "count_over_time(m[1m])"
    assert eng3.instant(q, 70_000).values[0, 0] == eng2.instant(q, 70_000).values[0, 0] == 1


def test_prometheus2_extrapolation_order() -> None:
    # 5 10 20 at 15s: the zero point lies 10s before the first sample, between half an
    # interval (7.5s) and the 1.1-interval threshold (16.5s), where 2.x and 3.x differ.
    store = _store(["c_total 5 10 20"], 15_000)
    assert Engine(store).instant("increase(c_total[1m])", 30_000).values[0, 0] == pytest.approx(18.75)
    assert Engine(store, prometheus2=True).instant("increase(c_total[1m])", 30_000).values[
        0, 0
    ] == pytest.approx(20)


def test_stale_marker_ends_series() -> None:
    store = SeriesStore()
    store.add({"__name__": "m"}, [0, 60_000], [1.0, STALE_NAN])
    res = Engine(store).range("m", 0, 120_000, 30_000)
    assert res.present[0].tolist() == [True, True, False, False, False]


def test_rate_over_long_range_is_vectorised() -> None:
    ts = np.arange(0, 6 * 3_600_000, 15_000, dtype=np.int64)
    store = SeriesStore()
    for i in range(5):
        store.add({"__name__": "x_total", "i": str(i)}, ts, np.arange(ts.size, dtype=float) * (i + 1))
    res = Engine(store).range("rate(x_total[5m])", 300_000, int(ts[-1]), 15_000)
    rates = np.nanmax(np.where(res.present, res.values, np.nan), axis=1)
    np.testing.assert_allclose(sorted(rates), [(i + 1) / 15 for i in range(5)])


def test_notation() -> None:
    ts, vals = parse_series_notation("1+2x2 _ stale _x2 Inf -3", 10_000)
    assert ts.tolist() == [0, 10_000, 20_000, 40_000, 70_000, 80_000]
    assert vals[:3].tolist() == [1.0, 3.0, 5.0]
    assert is_stale(vals)[3] and np.isinf(vals[4]) and vals[5] == -3


def test_runner_reports_failures_and_skips() -> None:
    script = """
load 1m
  m 1 2
  h {{schema:0 sum:1 count:1}}

eval instant at 1m m
  m 3

eval instant at 1m h
  h {{schema:0 sum:1 count:1}}

eval instant at 1m h
  h 1

eval instant at 1m m
  m 2
"""
    statuses = [r.status for r in run_script(script)]
    assert statuses == ["failed", "passed", "failed", "passed"]


# -- the batched range functions agree bit for bit with the per-series reference -------------


def _awkward_series(rng: np.random.Generator, ts: np.ndarray) -> np.ndarray:
    """A counter with resets, a gap-free float array with the odd NaN/Inf/negative value."""
    vals = np.cumsum(rng.poisson(3.0, ts.size).astype(float)) + rng.integers(0, 5)
    for _ in range(int(rng.integers(0, 4))):
        vals[int(rng.integers(1, ts.size)) :] -= float(rng.integers(1, 50))
    kind = int(rng.integers(0, 6))
    if kind == 0:
        vals[int(rng.integers(0, ts.size))] = np.nan
    elif kind == 1:
        vals[int(rng.integers(0, ts.size))] = np.inf
    elif kind == 2:
        vals = -vals
    elif kind == 3:
        vals[:] = 0.0
    return vals


@pytest.mark.parametrize("prometheus2", [False, True])
@pytest.mark.parametrize("step_ms", [15_000, 60_000, 7_000])
@pytest.mark.parametrize("small_blocks", [False, True])
def test_batched_range_functions_match_per_series_path(
    prometheus2: bool, step_ms: int, small_blocks: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sloanalysis.promql import rangebatch
    from sloanalysis.promql.rangefuncs import EXTRAPOLATED, RANGE_FUNCTIONS, Window

    if small_blocks:  # many column blocks, spread over threads
        monkeypatch.setattr(rangebatch, "_BLOCK_CELLS", 1024)
        monkeypatch.setattr(rangebatch, "_PARALLEL_CELLS", 0)

    rng = np.random.default_rng(7 + step_ms)
    ts = 1_000 + 15_000 * np.arange(400, dtype=np.int64)
    ts = np.delete(ts, np.arange(150, 170))  # a scrape gap longer than the window
    values = [_awkward_series(rng, ts) for _ in range(9)]
    steps = np.arange(int(ts[0]) - 60_000, int(ts[-1]) + 120_000, step_ms, dtype=np.int64)
    for range_ms in (60_000, 300_000):
        start, end = steps - range_ms, steps
        for name in sorted(rangebatch.BATCHED):
            got, ok = rangebatch.evaluate(name, ts, values, start, end, range_ms, prometheus2, prometheus2)
            for r, v in enumerate(values):
                lo = np.searchsorted(ts, start, side="left" if prometheus2 else "right")
                hi = np.maximum(np.searchsorted(ts, end, side="right"), lo)
                act = np.flatnonzero(hi > lo)
                w = Window(ts, v, lo[act], hi[act], start[act], end[act], steps[act], range_ms, [])
                fn = RANGE_FUNCTIONS.get(name)
                ref, ref_ok = fn(w) if fn is not None else EXTRAPOLATED[name](w, prometheus2)
                want_ok = np.zeros(steps.size, dtype=bool)
                want_ok[act] = ref_ok
                assert np.array_equal(ok[r], want_ok), (name, r)
                mine = got[r][act][ref_ok]
                theirs = np.asarray(ref, dtype=np.float64)[ref_ok]
                assert np.array_equal(mine.view(np.uint64), theirs.view(np.uint64)), (name, r, range_ms)
