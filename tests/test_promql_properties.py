"""No input crashes the engine: generated expressions either evaluate or raise a user error.

Generated from PromQL's grammar with the cases that used to crash in mind: subqueries whose range
is shorter than their step (no inner step at all), every parameterised aggregation over empty
input and over extreme parameters, and samples that are NaN, +-Inf, 1e308, -0 or stale. Any
exception other than PromQLError/UserError is an engine bug. Bounded and derandomized, so a run
takes seconds and always generates the same cases.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sloanalysis.errors import UserError
from sloanalysis.nativehist import FloatHistogram
from sloanalysis.promql import Engine
from sloanalysis.promql.promqltest import run_script
from sloanalysis.store import STALE_NAN, SeriesStore

MIN = 60_000
EXTREMES = [0.0, -0.0, 1.0, -1.0, 0.5, 1e308, -1e308, 5e-324, math.inf, -math.inf, math.nan]


def _store() -> SeriesStore:
    store = SeriesStore()
    ts = [i * MIN for i in range(21)]
    cycle = [*EXTREMES, 3.0, 2.0, 1e-300, -5.0]
    for name, offset in (("foo", 0), ("bar", 3)):
        for k in range(3):
            vals = [cycle[(i + offset + 5 * k) % len(cycle)] for i in range(21)]
            store.add({"__name__": name, "a": str(k)}, ts, vals)
    store.add({"__name__": "stale"}, ts[:5], [1.0, STALE_NAN, 2.0, STALE_NAN, math.inf])
    counter = [float(i * i) for i in range(21)]
    for le, part in (("-1", 0.0), ("0.5", 0.2), ("1", 0.5), ("+Inf", 1.0)):
        store.add({"__name__": "h_bucket", "le": le}, ts, [v * part for v in counter])
    store.add({"__name__": "h_bucket", "le": "2"}, ts, [math.nan] * 21)
    # Native histograms: exponential ones that grow and reset, with a NaN sum and an empty one;
    # custom-bucket ones whose bounds change; and one sharing the classic buckets' labels.
    for k in range(2):
        cells = [
            FloatHistogram(count=c, sum=c / 2 if i != 7 else math.nan, positive=((0, c / 2), (k + 1, c / 2)))
            for i, c in enumerate(float((i * (k + 1)) % 9) for i in range(21))
        ]
        _add_histograms(store, {"__name__": "nh", "a": str(k)}, ts, cells)
    bounds = [(1.0, 5.0), (5.0,), (1.0, 5.0, math.inf)]
    nhcb = [
        FloatHistogram(
            count=2.0, sum=3.0, schema=-53, positive=((0, 1.0), (1, 1.0)), custom_values=bounds[i % 3]
        )
        for i in range(21)
    ]
    _add_histograms(store, {"__name__": "nhcb"}, ts, nhcb)
    _add_histograms(store, {"__name__": "h_bucket"}, ts[:10], nhcb[:10])
    return store


def _add_histograms(
    store: SeriesStore, labels: dict[str, str], ts: list[int], cells: list[FloatHistogram]
) -> None:
    hs = np.empty(len(cells), dtype=object)
    hs[:] = cells
    store.add(labels, ts, [math.nan] * len(cells), histograms=hs)


ENGINE = Engine(_store())

numbers = st.sampled_from(
    ["0", "-0", "1", "-1", "0.5", "2", "1e308", "-1e308", "NaN", "Inf", "-Inf", "5e-324"]
)
ranges = st.sampled_from(["1s", "30s", "1m", "5m", "10m"])
steps = st.sampled_from(["", "1s", "1m", "5m", "7m", "1h"])
selectors = st.sampled_from(
    [
        "foo",
        "bar",
        'foo{a="1"}',
        'foo{a=~"[12]"}',
        "stale",
        "nothing",
        "h_bucket",
        'bar{a!~".*"}',
        "nh",
        "nhcb",
    ]
)
range_functions = st.sampled_from(
    [
        "rate",
        "increase",
        "delta",
        "deriv",
        "irate",
        "idelta",
        "resets",
        "changes",
        "min_over_time",
        "max_over_time",
        "avg_over_time",
        "sum_over_time",
        "stddev_over_time",
        "last_over_time",
        "present_over_time",
        "absent_over_time",
        "mad_over_time",
        "count_over_time",
    ]
)
simple_aggregations = st.sampled_from(["sum", "avg", "min", "max", "count", "stddev", "stdvar", "group"])
parameterised = st.sampled_from(["topk", "bottomk", "quantile", "limitk", "limit_ratio"])
vector_functions = st.sampled_from(
    [
        *(
            "abs",
            "ceil",
            "exp",
            "ln",
            "sqrt",
            "sgn",
            "round",
            "timestamp",
            "sort",
            "sort_desc",
            "-",
            "absent",
        ),
        *("histogram_count", "histogram_sum", "histogram_avg", "histogram_stddev"),
    ]
)
grouping = st.sampled_from(["", " by (a)", " without (a)", " by (le)"])
modifiers = st.sampled_from(["offset 1m", "offset -5m", "@ 0", "@ 120", "@ start()", "@ end()", "@ 1e10"])
binary_ops = st.sampled_from(
    ["+", "-", "*", "/", "%", "^", "atan2", "==", "!=", "> bool", "<", "and", "or", "unless"]
)


def _vectors(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda f, e: f"{f}({e})" if f != "-" else f"-({e})", vector_functions, inner),
        st.builds(lambda a, g, e: f"{a}{g} ({e})", simple_aggregations, grouping, inner),
        st.builds(lambda a, g, p, e: f"{a}{g} ({p}, {e})", parameterised, grouping, numbers, inner),
        st.builds(lambda g, e: f'count_values{g} ("v", {e})', grouping, inner),
        st.builds(lambda f, e, r, s: f"{f}(({e})[{r}:{s}])", range_functions, inner, ranges, steps),
        st.builds(lambda e, o, n: f"({e}) {o} {n}", inner, binary_ops, numbers),
        st.builds(
            lambda a, o, b: f"({a}) {o} on() group_left() ({b})", inner, st.sampled_from(["+", "*"]), inner
        ),
        st.builds(lambda q, e: f"histogram_quantile({q}, {e})", numbers, inner),
        st.builds(lambda lo, hi, e: f"histogram_fraction({lo}, {hi}, {e})", numbers, numbers, inner),
        st.builds(lambda e, n: f"clamp({e}, {n}, 1)", inner, numbers),
        st.builds(lambda e, n: f"round({e}, {n})", inner, numbers),
        st.builds(lambda a, e: f"topk(scalar({a}), {e})", inner, inner),
        st.builds(
            lambda q, e, r, s: f"quantile_over_time({q}, ({e})[{r}:{s}])", numbers, inner, ranges, steps
        ),
        st.builds(lambda e, r, n: f"predict_linear(({e})[{r}:], {n})", inner, ranges, numbers),
        st.builds(lambda e, r, o: f"max_over_time(({e})[{r}:] offset {o})", inner, ranges, modifiers),
        st.builds(lambda e: f'label_replace({e}, "b", "$1", "a", "(.*)")', inner),
        st.builds(lambda e: f'sort_by_label_desc({e}, "a")', inner),
    )


leaves = st.one_of(
    selectors,
    st.builds(lambda s, o: f"{s} {o}", selectors, modifiers),
    st.builds(lambda n: f"vector({n})", numbers),
    st.builds(lambda f, s, r: f"{f}({s}[{r}])", range_functions, selectors, ranges),
)
expressions = st.recursive(leaves, _vectors, max_leaves=4)


def _evaluates_or_user_error(run: Callable[[], object]) -> None:
    with contextlib.suppress(UserError):  # PromQLError is a UserError; anything else fails the test
        run()


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(expr=expressions, at_min=st.integers(min_value=0, max_value=25))
def test_instant_queries_never_crash(expr: str, at_min: int) -> None:
    _evaluates_or_user_error(lambda: ENGINE.instant(expr, at_min * MIN))


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    expr=expressions,
    start_min=st.integers(0, 15),
    span_min=st.integers(0, 10),
    step_s=st.sampled_from([1, 60, 420]),
)
def test_range_queries_never_crash(expr: str, start_min: int, span_min: int, step_s: int) -> None:
    start = start_min * MIN
    _evaluates_or_user_error(lambda: ENGINE.range(expr, start, start + span_min * MIN, step_s * 1000))


def test_subquery_without_inner_steps_over_topk() -> None:
    # Range 1m shorter than the 5m resolution: at 12m no multiple of 5m lies in (11m, 12m].
    res = ENGINE.instant("min_over_time((topk(1, foo))[1m:5m])", 12 * MIN)
    assert len(res.labels) == 0
    for agg in ("bottomk(1, foo)", "limitk(2, foo)", "limit_ratio(0.5, foo)", "quantile(0.5, foo)"):
        assert len(ENGINE.instant(f"max_over_time(({agg})[1m:5m])", 12 * MIN).labels) == 0


def test_internal_error_is_one_case_failure_and_the_run_goes_on(monkeypatch: object) -> None:
    import sloanalysis.promql.promqltest as runner

    script = "load 1m\n  m 1 2 3\n\neval instant at 1m m\n  m 2\n\neval instant at 2m m\n  m 3\n"
    calls = {"n": 0}
    real = Engine.instant

    def flaky(self: Engine, expr: str, at_ms: int) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("zero-size array to reduction operation maximum which has no identity")
        return real(self, expr, at_ms)

    monkeypatch.setattr(runner.Engine, "instant", flaky)  # type: ignore[attr-defined]
    results = run_script(script)
    assert [r.status for r in results] == ["failed", "passed"]
    assert results[0].line == 4
    assert "internal error: ValueError: zero-size array" in results[0].detail


_LOAD_VALUES = st.sampled_from(
    ["1", "NaN", "-Inf", "_", "stale", "1+1x3", "1e308", "-0", "1x", "1+", "{{schema:0 sum:1 count:1}}",
     "{{buckets:[1 2}}", "{{schema:99 sum:1}}", "0x10", "{{counter_reset_hint:xyz}}"]
)  # fmt: skip
_LOAD_NAMES = st.sampled_from(["m", 'm{a="1"}', 'm{le="0.5"}', 'm{le="+Inf"}', "m{", "m{a=1}", '"m"'])
_EVALS = st.sampled_from(
    [
        "eval instant at 1m m",
        "eval range from 0 to 2m step 1m rate(m[2m])",
        "eval instant at 1m histogram_quantile(0.5, m)",
        "eval range from 2m to 0 step 1m m",
        "eval range from 0 to 2m step 0 m",
        "eval_fail instant at 1m m",
        "eval instant at 1m m\n  expect warn regex: (",
        "eval instant at 1m m\n  {} {{schema:0}}",
        "eval instant at 1m m\n  expect range vector from 0 to 1m step 0",
        "eval instant at 1e400 m",
    ]
)


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    interval=st.sampled_from(["1m", "0", "1ms", "5m1h", "1.5m"]),
    series=st.lists(
        st.tuples(_LOAD_NAMES, st.lists(_LOAD_VALUES, min_size=1, max_size=4)), min_size=1, max_size=3
    ),
    evals=st.lists(_EVALS, min_size=1, max_size=3),
)
def test_promqltest_scripts_never_crash(
    interval: str, series: list[tuple[str, list[str]]], evals: list[str]
) -> None:
    # Malformed scripts are user errors naming a line; anything a case hits is that case's result.
    lines = "".join(f"  {name} {' '.join(values)}\n" for name, values in series)
    _evaluates_or_user_error(lambda: run_script(f"load {interval}\n{lines}\n" + "\n\n".join(evals) + "\n"))


def test_histogram_functions_of_nothing_keep_the_steps() -> None:
    # Found by the property search: an empty result over a store with native histograms once had
    # no steps at all, and scalar() of it could not be broadcast to the query's steps.
    for fn in ("histogram_quantile(0.5, {e})", "histogram_fraction(0, 1, {e})", "histogram_count({e})"):
        expr = "scalar(" + fn.format(e="vector(1) + on() group_left() nhcb") + ")"
        res = ENGINE.range(expr, 0, 10 * MIN, MIN)
        assert res.values.shape == (1, 11) and bool(np.isnan(res.values).all()), expr
