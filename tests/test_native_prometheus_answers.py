"""Native histograms in a Prometheus server's answers (Prometheus 3's HTTP API), read back.

No server here can hold native histograms (Prometheus 2.42), so a local HTTP server answers
``/api/v1/query`` and ``/api/v1/query_range`` with recorded bodies in the API's documented shape:
instant samples ``"histogram": [t, {"count", "sum", "buckets"}]``, range series
``"histograms": [[t, {...}], ...]``, each bucket ``[boundary rule, "lower", "upper", "count"]``
(0 ``(l,u]``, 1 ``[l,u)``, 2 ``(l,u)``, 3 ``[l,u]``; util/jsonutil.MarshalHistogram). The
expected histograms are worked out from the bounds by hand.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from sloanalysis.api_json import histogram_from_api, histogram_to_api
from sloanalysis.nativehist import CUSTOM_BUCKETS_SCHEMA, FloatHistogram
from sloanalysis.query import PrometheusBackend
from sloanalysis.sources.prometheus import PrometheusClient, fetch_range, parse_result_series

T = 1_700_000_000  # seconds

# The example of Prometheus's API documentation and MarshalHistogram's comment.
DOC_HISTOGRAM = {
    "count": "42",
    "sum": "34593.34",
    "buckets": [
        [3, "-0.25", "0.25", "3"],
        [0, "0.25", "0.5", "12"],
        [0, "0.5", "1", "21"],
        [0, "2", "4", "6"],
    ],
}
# (0.25, 0.5] = (2^-2, 2^-1]: schema 0 (base 2), bucket -1; (0.5, 1] bucket 0; (2, 4] bucket 2;
# the zero bucket [-0.25, 0.25] holds 3.
DOC_EXPECTED = FloatHistogram(
    count=42, sum=34593.34, schema=0, zero_threshold=0.25, zero_count=3, positive=((-1, 12), (0, 21), (2, 6))
)
# Schema 1 (base sqrt 2): (1, 1.414..] is bucket 1, (1.414.., 2] bucket 2; [-2, -1.414..) negative bucket 2.
SCHEMA1 = {
    "count": "9",
    "sum": "3",
    "buckets": [
        [1, "-2", "-1.4142135623730951", "4"],
        [0, "1", "1.4142135623730951", "2"],
        [0, "1.4142135623730951", "2", "3"],
    ],
}
SCHEMA1_EXPECTED = FloatHistogram(count=9, sum=3, schema=1, positive=((1, 2), (2, 3)), negative=((2, 4),))
# Custom bounds: [-Inf, 0.1] is closed on both ends (rule 3), the rest (l, u]; bounds 0.1 0.5 1.
CUSTOM = {
    "count": "10",
    "sum": "2.5",
    "buckets": [[3, "-Inf", "0.1", "4"], [0, "0.1", "0.5", "5"], [0, "1", "+Inf", "1"]],
}
CUSTOM_EXPECTED = FloatHistogram(
    count=10,
    sum=2.5,
    schema=CUSTOM_BUCKETS_SCHEMA,
    positive=((0, 4), (1, 5), (3, 1)),
    custom_values=(0.1, 0.5, 1.0),
)

INSTANT = {
    "resultType": "vector",
    "result": [
        {"metric": {"__name__": "latency", "job": "api"}, "histogram": [T, DOC_HISTOGRAM]},
        {"metric": {"__name__": "latency", "job": "float"}, "value": [T, "1.5"]},
    ],
}
RANGE = {
    "resultType": "matrix",
    "result": [
        {"metric": {"job": "hist"}, "histograms": [[T, SCHEMA1], [T + 60, CUSTOM]]},
        # A series that changes from floats to histograms: both keys, each in time order.
        {
            "metric": {"job": "mixed"},
            "values": [[T, "2"], [T + 60, "3"]],
            "histograms": [[T + 30, DOC_HISTOGRAM]],
        },
    ],
}


class _Answers(BaseHTTPRequestHandler):
    bodies: ClassVar[dict[str, dict[str, Any]]] = {}
    seen: ClassVar[list[tuple[str, dict[str, list[str]]]]] = []

    def _answer(self) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        params = parse_qs(url.query) | parse_qs(self.rfile.read(length).decode())
        type(self).seen.append((url.path, params))
        data = type(self).bodies.get(url.path)
        body = json.dumps({"status": "success", "data": data} if data else {"status": "error", "error": "no"})
        self.send_response(200 if data else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Answers]]]:
    handler = type("Answers", (_Answers,), {"bodies": {}, "seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _sparse(h: FloatHistogram) -> FloatHistogram:
    """Without empty buckets (the API leaves them out)."""
    return FloatHistogram(
        count=h.count,
        sum=h.sum,
        schema=h.schema,
        zero_threshold=h.zero_threshold,
        zero_count=h.zero_count,
        positive=tuple((i, c) for i, c in h.positive if c),
        negative=tuple((i, c) for i, c in h.negative if c),
        custom_values=h.custom_values,
    )


@pytest.mark.parametrize(
    ("obj", "expected"),
    [(DOC_HISTOGRAM, DOC_EXPECTED), (SCHEMA1, SCHEMA1_EXPECTED), (CUSTOM, CUSTOM_EXPECTED)],
    ids=["doc-example-schema0", "schema1-negative", "custom"],
)
def test_histogram_json_reads_to_its_schema_and_buckets(
    obj: dict[str, Any], expected: FloatHistogram
) -> None:
    assert histogram_from_api(obj) == expected
    assert histogram_to_api(expected) == obj  # and writes back to the same text


def test_schema_read_from_bounds_finest_that_fits() -> None:
    # (2, 2^1.25] is schema 2's bucket 5 (base 2^(1/4), bucket i = (base^(i-1), base^i]); schema 3
    # would need the lower bound 2^(9/8).
    upper = 2**1.25
    h = histogram_from_api({"count": "1", "sum": "2", "buckets": [[0, "2", repr(upper), "1"]]})
    assert (h.schema, h.positive) == (2, ((5, 1.0),))
    h = histogram_from_api({"count": "1", "sum": "20", "buckets": [[0, "16", "256", "1"]]})
    assert (h.schema, h.positive) == (-2, ((2, 1.0),))  # base 16 (schema -2): 256 = 16^2, bucket 2
    # Bounds that are no powers of one base: custom buckets.
    h = histogram_from_api({"count": "2", "sum": "1", "buckets": [[0, "0.3", "0.7", "2"]]})
    assert (h.schema, h.custom_values, h.positive) == (CUSTOM_BUCKETS_SCHEMA, (0.3, 0.7), ((1, 2.0),))


def test_bucket_cut_at_the_zero_threshold_reads_back() -> None:
    # Zero threshold 0.3 cuts schema 0's bucket (0.25, 0.5] to (0.3, 0.5]; no zero-bucket entry
    # (its count is 0), so the cut bound is the threshold.
    h = histogram_from_api(
        {"count": "5", "sum": "3", "buckets": [[0, "0.3", "0.5", "2"], [0, "0.5", "1", "3"]]}
    )
    assert (h.schema, h.zero_threshold, h.positive) == (0, 0.3, ((-1, 2.0), (0, 3.0)))


def test_empty_histogram_and_go_number_text() -> None:
    assert histogram_from_api({"count": "0", "sum": "0"}) == FloatHistogram(count=0, sum=0)
    h = FloatHistogram(count=1e21, sum=1e-7, positive=((1, 1e21),))
    # MarshalFloat: 'f' format, 'e' below 1e-6 and from 1e21.
    assert histogram_to_api(h) == {"count": "1e+21", "sum": "1e-07", "buckets": [[0, "1", "2", "1e+21"]]}
    assert histogram_to_api(FloatHistogram(count=123456.5, sum=-0.5)) == {"count": "123456.5", "sum": "-0.5"}


def test_instant_answer_lands_in_the_frame(server: tuple[str, type[_Answers]]) -> None:
    url, handler = server
    handler.bodies["/api/v1/query"] = INSTANT
    with PrometheusBackend(url, timeout=5) as prom:
        frame = prom.query("latency", T * 1000)
    assert list(frame.columns) == ["timestamp", "value", "histogram", "__name__", "job"]
    api, flt = frame[frame["job"] == "api"].iloc[0], frame[frame["job"] == "float"].iloc[0]
    assert api["histogram"] == DOC_EXPECTED and math.isnan(api["value"])
    assert flt["histogram"] is None and flt["value"] == 1.5


def test_range_answer_merges_floats_and_histograms_in_time_order(server: tuple[str, type[_Answers]]) -> None:
    url, handler = server
    handler.bodies["/api/v1/query_range"] = RANGE
    with PrometheusBackend(url, timeout=5) as prom:
        frame = prom.query_range("latency", T * 1000, (T + 60) * 1000, 30_000)
    hist = frame[frame["job"] == "hist"]
    assert list(hist["histogram"]) == [SCHEMA1_EXPECTED, CUSTOM_EXPECTED]
    mixed = frame[frame["job"] == "mixed"]
    stamps = (mixed["timestamp"].astype("int64") // 1_000_000_000).tolist()
    assert stamps == [T, T + 30, T + 60]
    assert list(mixed["histogram"]) == [None, DOC_EXPECTED, None]
    values = mixed["value"].to_numpy()
    assert values[0] == 2 and math.isnan(values[1]) and values[2] == 3


def test_histogram_only_matrix_is_a_matrix_and_floats_only_readers_skip_histograms(
    server: tuple[str, type[_Answers]],
) -> None:
    url, handler = server
    only = {"resultType": "matrix", "result": [RANGE["result"][0]]}
    handler.bodies["/api/v1/query"] = only  # a range selector evaluated as an instant query
    with PrometheusClient(url, timeout=5) as client:
        assert client.instant("latency[1m]", T * 1000)["resultType"] == "matrix"
        series = parse_result_series(client.instant("latency[1m]", T * 1000)["result"])
        assert [(lab, ts.size) for lab, ts, _ in series] == [((("job", "hist"),), 0)]
        store = fetch_range(client, "latency", (T - 60) * 1000, (T + 60) * 1000, chunk_ms=3_600_000)
    (s,) = store.select([])
    assert s.timestamps.tolist() == [T * 1000, (T + 60) * 1000]
    assert s.histograms is not None and [_sparse(h) for h in s.histograms] == [
        SCHEMA1_EXPECTED,
        CUSTOM_EXPECTED,
    ]
    assert np.isnan(s.values).all()


def test_cli_query_prints_histograms_in_every_format(
    server: tuple[str, type[_Answers]], capsys: pytest.CaptureFixture[str]
) -> None:
    from sloanalysis.cli import main as cli

    url, handler = server
    handler.bodies["/api/v1/query"] = INSTANT
    base = ["query", "--prometheus", url, "latency", "--at", str(T)]
    assert cli.main([*base, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_job = {r["job"]: r for r in rows}
    assert by_job["api"]["histogram"] == DOC_HISTOGRAM and by_job["api"]["value"] is None
    assert by_job["float"]["histogram"] is None and by_job["float"]["value"] == 1.5

    assert cli.main([*base, "--format", "csv"]) == 0
    import csv
    import io

    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    by_job_csv = {r["job"]: r for r in table}
    assert json.loads(by_job_csv["api"]["histogram"]) == DOC_HISTOGRAM and by_job_csv["api"]["value"] == ""
    assert by_job_csv["float"]["histogram"] == "" and float(by_job_csv["float"]["value"]) == 1.5

    assert cli.main([*base, "--format", "table"]) == 0
    text = capsys.readouterr().out
    # Prometheus's FloatHistogram.String(): {count:%g, sum:%g, buckets as [l,u]:count ...}.
    assert "{count:42, sum:34593.34, [-0.25,0.25]:3, (0.25,0.5]:12, (0.5,1]:21, (2,4]:6}" in text


def test_cli_api_format_writes_back_the_servers_data(
    server: tuple[str, type[_Answers]], capsys: pytest.CaptureFixture[str]
) -> None:
    """``--format api`` prints the API's ``data`` object: the recorded answers come back unchanged."""
    from sloanalysis.cli import main as cli

    url, handler = server
    handler.bodies["/api/v1/query"] = INSTANT
    assert cli.main(["query", "--prometheus", url, "latency", "--at", str(T), "--format", "api"]) == 0
    assert json.loads(capsys.readouterr().out) == INSTANT

    handler.bodies["/api/v1/query_range"] = RANGE
    # The empty-selector check asks /api/v1/query whether the selector has data: say yes.
    handler.bodies["/api/v1/query"] = {"resultType": "vector", "result": [{"metric": {}, "value": [T, "1"]}]}
    span = ["--start", str(T), "--end", str(T + 60), "--step", "30s", "--format", "api"]
    assert cli.main(["query", "--prometheus", url, "latency", *span]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == RANGE and out.err == ""


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"count": "1"}, "expected an object with count and sum"),
        ({"count": "x", "sum": "1"}, "count 'x' is not a number"),
        (
            {"count": "1", "sum": "1", "buckets": [[7, "1", "2", "1"]]},
            "is not [rule 0-3, lower, upper, count]",
        ),
        ({"count": "1", "sum": "1", "buckets": "no"}, "buckets must be a list"),
    ],
)
def test_malformed_histograms_are_one_line_errors(obj: dict[str, Any], message: str) -> None:
    from sloanalysis.errors import UserError

    with pytest.raises(UserError) as info:
        histogram_from_api(obj)
    assert message in str(info.value) and "\n" not in str(info.value)
