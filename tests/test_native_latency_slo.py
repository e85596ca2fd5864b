"""A latency SLO over a native histogram (``latency: {histogram: x, threshold: 300ms, native: true}``).

The good events are ``histogram_fraction(0, t, sum(rate(x[w]))) * histogram_count(sum(rate(x[w])))``
and the total ``histogram_count(sum(rate(x[w])))``. The store holds two native-histogram counters
(schema 0: bucket -2 = (0.125, 0.25], -1 = (0.25, 0.5], 0 = (0.5, 1]) growing every minute:

- instance a: +6 in bucket -2, +3 in bucket -1, +1 in bucket 0 (10 per minute);
- instance b: +5 in bucket 0.

Summed: 6, 3, 6 per minute, 15 in all. Prometheus interpolates exponentially inside an exponential
bucket, so of (0.25, 0.5] the share at most 0.3 is log2(0.3/0.25) / log2(0.5/0.25) = log2(1.2):
the fraction at most 0.3 s is (6 + 3 log2 1.2) / 15, and at most 0.25 s exactly 6/15. (Averaging
per-instance fractions instead would give ((6 + 3 log2 1.2)/10 + 0) / 2.)
"""

from __future__ import annotations

import math

import numpy as np
import promql_parser
import pytest

from sloanalysis.nativehist import FloatHistogram
from sloanalysis.query import EmbeddedBackend
from sloanalysis.slo.budget import measure, measure_window
from sloanalysis.slo.formats import parse_slos
from sloanalysis.slo.native_latency import native_bucket_expr, native_total_expr
from sloanalysis.slo.spec import LatencySLI

MIN = 60_000
NAME = "http_request_duration_seconds"


def _spec(threshold: str = "300ms") -> str:
    return (
        "version: sloanalysis/v1\nservice: api\nslos:\n"
        f"  - {{name: lat, objective: 0.9, period: 1d, sli: {{latency: "
        f"{{histogram: {NAME}, threshold: {threshold}, native: true, matchers: 'job=\"api\"'}}}}}}\n"
    )


def _store() -> EmbeddedBackend:
    from sloanalysis.store import SeriesStore

    store = SeriesStore()
    minutes = np.arange(0, 31)
    for instance, per_minute in (("a", {-2: 6.0, -1: 3.0, 0: 1.0}), ("b", {0: 5.0})):
        total = sum(per_minute.values())
        hists = [
            FloatHistogram(
                count=float(total * k),
                sum=float(0.3 * total * k),
                positive=tuple((i, c * k) for i, c in sorted(per_minute.items())),
            )
            for k in minutes
        ]
        labels = {"__name__": NAME, "job": "api", "instance": instance}
        store.add(labels, minutes * MIN, np.full(minutes.size, np.nan), np.array(hists, dtype=object))
    # A classic-looking float series of the same job must not be read.
    store.add({"__name__": f"{NAME}_count", "job": "api"}, minutes * MIN, minutes * 1000.0)
    return EmbeddedBackend(store)


def test_spec_builds_the_native_expressions() -> None:
    (slo,) = parse_slos(_spec())
    sli = slo.sli
    assert isinstance(sli, LatencySLI) and sli.native and sli.threshold == 0.3
    rate = f'sum(rate({NAME}{{job="api"}}[5m]))'
    assert sli.total_expr(5 * MIN) == f"histogram_count({rate})"
    assert sli.good_expr(5 * MIN) == f"histogram_fraction(0, 0.3, {rate}) * histogram_count({rate})"
    for expr in (sli.good_expr(5 * MIN), sli.bad_expr(5 * MIN), sli.error_ratio_expr(5 * MIN)):
        promql_parser.parse(expr)
    assert native_total_expr(NAME, "", 3_600_000) == f"histogram_count(sum(rate({NAME}{{}}[1h])))"
    assert native_bucket_expr(NAME, "", 2, MIN).startswith("histogram_fraction(0, 2.0, ")


def test_classic_latency_sli_is_unchanged() -> None:
    (slo,) = parse_slos(_spec().replace("native: true", "native: false"))
    assert slo.sli.total_expr(5 * MIN) == f'sum(rate({NAME}_count{{job="api"}}[5m]))'  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("threshold", "fraction"),
    [("300ms", (6 + 3 * math.log2(1.2)) / 15), ("250ms", 6 / 15), ("1s", 1.0), ("100ms", 0.0)],
)
def test_good_and_total_over_the_native_histogram(threshold: str, fraction: float) -> None:
    (slo,) = parse_slos(_spec(threshold))
    # 10 minutes ending at minute 20: samples at minutes 11..20 (9 minutes sampled) extrapolated by
    # the one-minute gap to the window's start: 10 minutes of 15 observations = 150.
    frame = measure_window(slo, _store(), 10 * MIN, 20 * MIN)
    assert frame["valid"].iloc[0] == pytest.approx(150.0)
    assert frame["good"].iloc[0] == pytest.approx(150.0 * fraction)


def test_per_step_measure_gives_the_same_ratio_every_step() -> None:
    (slo,) = parse_slos(_spec())
    frame = measure(slo, _store(), 10 * MIN, 20 * MIN, step_ms=5 * MIN)
    ratios = (frame["good"] / frame["valid"]).to_numpy()
    assert ratios.size == 2 and np.allclose(ratios, (6 + 3 * math.log2(1.2)) / 15)


@pytest.mark.parametrize("style", ["native", "sloth", "pyrra"])
def test_generated_rules_read_the_native_histogram(style: str) -> None:
    from sloanalysis.slo.rulegen import generate_rules

    spec = _spec().replace("period: 1d", "period: 30d")  # Sloth knows windows for 30d and 4w only
    (slo,) = parse_slos(spec.replace("}}}\n", "}}, alerting: {threshold: {latency_above: 1s}}}\n"))
    rules = generate_rules([slo], style=style)  # type: ignore[arg-type]
    exprs = [str(r["expr"]) for g in rules.groups for r in g["rules"]]
    for expr in exprs:
        promql_parser.parse(expr)
    text = "\n".join(exprs)
    assert "histogram_fraction(0, 0.3, " in text and "_bucket" not in text and f"{NAME}_count" not in text
    if style == "native":  # the latency_above alert: the share at most 1 s
        assert "histogram_fraction(0, 1.0, " in text
