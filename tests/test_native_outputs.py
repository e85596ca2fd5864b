"""Native histograms in query outputs: the result frame, the embedded backend's frames, and the
table/JSON/CSV renderings (Prometheus's ``FloatHistogram.String()`` text and the HTTP API's JSON
object, ``{"count": "..", "sum": "..", "buckets": [[rule, "lower", "upper", "count"], ...]}``)."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import numpy as np

from sloanalysis.api_json import api_data
from sloanalysis.formatting import render
from sloanalysis.nativehist import FloatHistogram
from sloanalysis.promql.result import QueryResult
from sloanalysis.query import EmbeddedBackend, _frame_from_result
from sloanalysis.store import SeriesStore

# Schema 0: bucket 0 is (0.5, 1], bucket 1 is (1, 2].
H1 = FloatHistogram(count=3, sum=1.5, positive=((0, 1.0), (1, 2.0)))
H1_TEXT = "{count:3, sum:1.5, (0.5,1]:1, (1,2]:2}"
H1_API = {"count": "3", "sum": "1.5", "buckets": [[0, "0.5", "1", "1"], [0, "1", "2", "2"]]}
# A zero bucket [-0.001, 0.001] (closed: rule 3) and a negative bucket: schema 0 index 1 is [-2, -1).
H2 = FloatHistogram(count=4, sum=-1, zero_threshold=0.001, zero_count=1, negative=((1, 3.0),))
H2_API = {"count": "4", "sum": "-1", "buckets": [[1, "-2", "-1", "3"], [3, "-0.001", "0.001", "1"]]}


def _result() -> QueryResult:
    """Two series, labels out of order: b has floats and a histogram, a has one histogram."""
    nan = math.nan
    hists = np.array([[None, H2, None], [H1, None, None]], dtype=object)
    return QueryResult(
        kind="matrix",
        steps=np.array([0, 60_000, 120_000]),
        labels=[(("job", "b"),), (("job", "a"),)],
        values=np.array([[5.0, nan, 7.0], [nan, 0.0, 0.0]]),
        present=np.array([[True, True, True], [True, False, False]]),
        histograms=hists,
    )


def test_to_frame_carries_the_histogram_column_aligned_with_present_points() -> None:
    frame = _result().to_frame()
    assert list(frame["job"]) == ["b", "b", "b", "a"]
    assert list(frame["histogram"]) == [None, H2, None, H1]
    assert frame["value"].iloc[0] == 5.0 and math.isnan(frame["value"].iloc[1])


def test_float_results_have_no_histogram_column() -> None:
    plain = _result()
    plain.histograms = None
    assert "histogram" not in plain.to_frame().columns
    assert "histogram" not in _frame_from_result(plain).columns


def test_backend_frame_sorts_rows_and_keeps_histograms_with_them() -> None:
    frame = _frame_from_result(_result())
    assert list(frame.columns[:3]) == ["timestamp", "value", "histogram"]
    assert list(frame["job"]) == ["a", "b", "b", "b"]
    assert list(frame["histogram"]) == [H1, None, H2, None]
    assert (frame["timestamp"].astype("int64") // 1_000_000).tolist() == [0, 0, 60_000, 120_000]


def _store() -> SeriesStore:
    store = SeriesStore()
    ts = np.array([0, 60_000, 120_000])
    store.add({"__name__": "lat", "job": "a"}, ts, np.full(3, np.nan), np.array([H1, H2, H1], dtype=object))
    store.add({"__name__": "lat", "job": "f"}, ts, np.array([1.0, 2.0, 3.0]))
    return store


def test_embedded_backend_answers_histogram_samples() -> None:
    backend = EmbeddedBackend(_store())
    frame = backend.query("lat", 90_000)  # the latest sample within the lookback: t = 60 s
    assert list(frame["job"]) == ["a", "f"]
    assert list(frame["histogram"]) == [H2, None]
    assert math.isnan(frame["value"].iloc[0]) and frame["value"].iloc[1] == 2.0
    ranged = backend.query_range('lat{job="a"}', 0, 120_000, 60_000)
    assert list(ranged["histogram"]) == [H1, H2, H1]


def test_render_shows_histograms_as_text_json_object_and_csv_json_text() -> None:
    rows: list[dict[str, Any]] = [
        {"job": "a", "histogram": H1},
        {"job": "z", "histogram": H2},
        {"job": "f", "histogram": None},
    ]
    table = render(rows, "table")
    assert H1_TEXT in table
    assert "{count:4, sum:-1, [-2,-1):3, [-0.001,0.001]:1}" in table
    assert json.loads(render(rows, "json")) == [
        {"job": "a", "histogram": H1_API},
        {"job": "z", "histogram": H2_API},
        {"job": "f", "histogram": None},
    ]
    parsed = list(csv.DictReader(io.StringIO(render(rows, "csv"))))
    assert [json.loads(r["histogram"]) if r["histogram"] else None for r in parsed] == [H1_API, H2_API, None]


def test_range_selector_as_instant_query_keeps_raw_histograms() -> None:
    backend = EmbeddedBackend(_store())
    # (0, 120 s] holds the samples at 60 s and 120 s (the range is open on the left).
    frame = backend.query("lat[2m]", 120_000)
    assert list(zip(frame["job"], frame["histogram"], strict=True)) == [
        ("a", H2),
        ("a", H1),
        ("f", None),
        ("f", None),
    ]
    assert frame[frame["job"] == "f"]["value"].tolist() == [2.0, 3.0]
    result = backend.engine.instant('lat{job="a"}[2m]', 120_000)
    assert list(result.to_frame()["histogram"]) == [H2, H1]


def test_api_data_is_the_prometheus_http_api_shape() -> None:
    ranged = api_data(_frame_from_result(_result()), instant=False)
    assert ranged == {
        "resultType": "matrix",
        "result": [
            {"metric": {"job": "a"}, "histograms": [[0, H1_API]]},
            {"metric": {"job": "b"}, "values": [[0, "5"], [120, "7"]], "histograms": [[60, H2_API]]},
        ],
    }
    backend = EmbeddedBackend(_store())
    assert api_data(backend.query("lat", 90_500), instant=True) == {
        "resultType": "vector",
        "result": [
            {"metric": {"__name__": "lat", "job": "a"}, "histogram": [90.5, H2_API]},
            {"metric": {"__name__": "lat", "job": "f"}, "value": [90.5, "2"]},
        ],
    }
