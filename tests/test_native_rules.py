"""Recording rules whose results are native histograms: the rule manager stores the histograms
(not NaN floats), so a second rule or query can take ``histogram_quantile`` of the recorded
series, in backtests and under ``test-rules``; promtool 3's ``exp_samples`` ``histogram:``.

The worked case: two series of custom-bucket histograms (bounds 0.1, 0.5, 1), each gaining 6
observations in (0.1, 0.5] and 3 in (0.5, 1] a minute, with their sum growing by 9 a minute.
``sum(rate(lat[5m]))`` is then 0.2/s in (0.1, 0.5], 0.1/s in (0.5, 1], a count of 0.3/s and a sum
of 0.3/s. Its 0.9 quantile: the top 10% (0.03/s) lie in (0.5, 1], which holds 0.1/s, so the
quantile is 0.07/0.1 = 70% into the bucket from its lower end, 0.5 + 0.7 * 0.5 = 0.85.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest

from sloanalysis.nativehist import CUSTOM_BUCKETS_SCHEMA, FloatHistogram
from sloanalysis.promql import Engine
from sloanalysis.rules.manager import evaluate_rules
from sloanalysis.rules.model import load_rules
from sloanalysis.rules.promtool import run_test_files
from sloanalysis.store import SeriesStore

BOUNDS = (0.1, 0.5, 1.0)
MINUTE = 60_000
RULES = """
groups:
  - name: latency
    interval: 1m
    rules:
      - record: job:lat:rate5m
        expr: sum(rate(lat[5m]))
      - record: job:lat:p90
        expr: histogram_quantile(0.9, job:lat:rate5m)
"""


def _store(minutes: int = 30) -> SeriesStore:
    store = SeriesStore()
    ts = np.arange(minutes + 1, dtype=np.int64) * MINUTE
    for inst in ("a", "b"):
        cells = np.empty(ts.size, dtype=object)
        cells[:] = [
            FloatHistogram(9.0 * k, 9.0 * k, CUSTOM_BUCKETS_SCHEMA,
                           positive=((0, 0.0), (1, 6.0 * k), (2, 3.0 * k), (3, 0.0)), custom_values=BOUNDS)
            for k in range(ts.size)
        ]  # fmt: skip
        store.add({"__name__": "lat", "instance": inst}, ts, np.full(ts.size, math.nan), cells)
    return store


def test_recorded_histograms_feed_a_second_rule(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(RULES)
    ev = evaluate_rules(load_rules(path), _store(), 10 * MINUTE, 20 * MINUTE)
    recorded = [s for s in ev.series if dict(s.labels)["__name__"] == "job:lat:rate5m"]
    assert len(recorded) == 1 and recorded[0].histograms is not None
    h = recorded[0].histograms[0]
    assert isinstance(h, FloatHistogram)
    assert h.count == pytest.approx(0.3) and h.sum == pytest.approx(0.3)
    assert dict(h.positive)[1] == pytest.approx(0.2) and dict(h.positive)[2] == pytest.approx(0.1)
    assert not np.isnan(recorded[0].values).all() or recorded[0].histograms[-1] is not None
    p90 = [s for s in ev.series if dict(s.labels)["__name__"] == "job:lat:p90"]
    assert len(p90) == 1
    assert p90[0].values == pytest.approx(np.full(p90[0].values.size, 0.85))


def test_recorded_histograms_are_queryable_after_the_backtest(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(RULES)
    ev = evaluate_rules(load_rules(path), _store(), 10 * MINUTE, 20 * MINUTE)
    res = Engine(ev.series).instant("histogram_quantile(0.9, job:lat:rate5m)", 15 * MINUTE)
    assert res.values[0, 0] == pytest.approx(0.85)
    assert Engine(ev.series).instant("histogram_count(job:lat:rate5m)", 15 * MINUTE).values[0, 0] == (
        pytest.approx(0.3)
    )


def _test_file(tmp_path: Path, exp_samples: str, fuzzy: bool = True) -> Path:
    """A promtool test file; ``fuzzy``: promtool 3's ``fuzzy_compare`` (0.85 is worked out by hand,
    the engine's float arithmetic may land one ulp off)."""
    (tmp_path / "rules.yml").write_text(RULES)
    h = "{{schema:-53 sum:%s count:%s custom_values:[0.1 0.5 1] buckets:[0 %s %s 0]}}"
    start, step = h % (0, 0, 0, 0), h % (9, 9, 6, 3)
    test = f"""
rule_files: [rules.yml]
evaluation_interval: 1m
{"fuzzy_compare: true" if fuzzy else ""}
tests:
  - interval: 1m
    input_series:
      - series: 'lat{{instance="a"}}'
        values: '{start}+{step}x20'
      - series: 'lat{{instance="b"}}'
        values: '{start}+{step}x20'
    promql_expr_test:
      - expr: job:lat:p90
        eval_time: 15m
        exp_samples:
          - labels: 'job:lat:p90'
            value: 0.85
      - expr: job:lat:rate5m
        eval_time: 15m
        exp_samples:
{exp_samples}
"""
    path = tmp_path / "test.yml"
    path.write_text(test)
    return path


def _run(path: Path, prometheus2: bool) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = run_test_files([path], out, err, prometheus2=prometheus2)
    return rc, out.getvalue() + err.getvalue()


EXPECTED = "{{schema:-53 count:0.3 sum:0.3 custom_values:[0.1 0.5 1] buckets:[0 0.2 0.1]}}"


def test_test_rules_compares_histogram_samples_under_promtool_3(tmp_path: Path) -> None:
    path = _test_file(tmp_path, f"          - labels: 'job:lat:rate5m'\n            histogram: '{EXPECTED}'")
    rc, text = _run(path, prometheus2=False)
    assert rc == 0, text


def test_a_wrong_histogram_sample_fails_with_both_histograms_printed(tmp_path: Path) -> None:
    wrong = EXPECTED.replace("buckets:[0 0.2 0.1]", "buckets:[0 0.1 0.2]")
    path = _test_file(tmp_path, f"          - labels: 'job:lat:rate5m'\n            histogram: '{wrong}'")
    rc, text = _run(path, prometheus2=False)
    assert rc == 1
    assert 'exp: {__name__="job:lat:rate5m"} {count:0.3, sum:0.3, (0.1,0.5]:0.1, (0.5,1]:0.2}' in text
    assert "(0.1,0.5]:0.2" in text  # what the rule gave, as Go's FloatHistogram.String() prints it


def test_a_float_expectation_does_not_match_a_histogram(tmp_path: Path) -> None:
    path = _test_file(tmp_path, "          - labels: 'job:lat:rate5m'\n            value: 0.3")
    rc, text = _run(path, prometheus2=False)
    assert rc == 1 and "got:" in text


def test_histogram_key_is_an_error_under_promtool_2(tmp_path: Path) -> None:
    """promtool 2.42's sample type has no ``histogram`` field; its strict YAML decoding says so."""
    path = _test_file(
        tmp_path, f"          - labels: 'job:lat:rate5m'\n            histogram: '{EXPECTED}'", fuzzy=False
    )
    rc, text = _run(path, prometheus2=True)
    assert rc == 1
    assert "field histogram not found in type main.sample" in text


def test_an_unparsable_histogram_is_reported_with_the_case(tmp_path: Path) -> None:
    path = _test_file(tmp_path, "          - labels: 'job:lat:rate5m'\n            histogram: '{{count:x}}'")
    rc, text = _run(path, prometheus2=False)
    assert rc == 1
    assert 'expr: "job:lat:rate5m", time: 15m, err: histogram "{{count:x}}"' in text
