from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sloanalysis.errors import UserError
from sloanalysis.query import (
    PrometheusBackend,
    _frame_from_result,
    parse_duration,
    parse_time,
    result_frame,
)
from sloanalysis.sources.prometheus import PrometheusClient, fetch_samples, format_seconds, needed_ranges
from sloanalysis.sources.rundir import load_run
from sloanalysis.store import SeriesStore

T0 = 1_700_000_000_000
STEP = 15_000


def _store(n: int = 400) -> SeriesStore:
    store = SeriesStore()
    ts = T0 + STEP * np.arange(n)
    for status, k in (("confirmed", 3.0), ("failed", 0.25)):
        vals = np.cumsum(np.full(n, k)) - k  # starts at 0, as Prometheus 2.42 and 3.x extrapolate alike then
        vals[n // 2 :] -= vals[n // 2]  # a counter reset
        store.add({"__name__": "req_total", "status": status, "job": "tron-payment-api"}, ts, vals)
    store.add({"__name__": "load"}, ts, np.sin(np.arange(n) / 7.0) * 40 + 50)
    return store


# -- time parsing -----------------------------------------------------------------------------


def test_parse_time_forms() -> None:
    assert parse_time("2023-11-14T22:13:20Z") == T0
    assert parse_time("2023-11-14T23:13:20+01:00") == T0
    assert parse_time("2023-11-14T22:13:20.015Z") == T0 + 15
    assert parse_time("1700000000") == T0
    assert parse_time("1700000000.015") == T0 + 15
    assert parse_time(T0) == T0
    assert parse_time(datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)) == T0
    assert parse_time(pd.Timestamp("2023-11-14T22:13:20Z")) == T0
    assert parse_time(np.datetime64(T0, "ms")) == T0
    assert parse_time("30m", reference_ms=T0) == T0 - 1_800_000
    assert parse_time("-7d", reference_ms=T0) == T0 - 7 * 86_400_000
    assert parse_time("1h30m", reference_ms=T0) == T0 - 5_400_000
    assert parse_time("now", reference_ms=T0) == T0
    with pytest.raises(UserError, match="needs a reference"):
        parse_time("30m")
    with pytest.raises(UserError, match="invalid time 'yesterday-ish'"):
        parse_time("yesterday-ish")


def test_parse_duration_forms() -> None:
    assert parse_duration("15s") == 15_000
    assert parse_duration("1m30s") == 90_000
    assert parse_duration("7d") == 7 * 86_400_000
    assert parse_duration("0.5") == 500
    assert parse_duration(timedelta(seconds=2)) == 2_000
    assert parse_duration(60_000) == 60_000
    with pytest.raises(UserError, match="invalid duration 'soon'"):
        parse_duration("soon")


# -- frames -----------------------------------------------------------------------------------


def test_result_frame_shape_and_order() -> None:
    labels = [(("__name__", "b"), ("x", "2")), (("__name__", "a"),)]
    frame = result_frame(labels, np.array([0, 0, 1]), np.array([T0 + 1, T0, T0]), np.array([2.0, 1.0, 5.0]))
    assert list(frame.columns) == ["timestamp", "value", "__name__", "x"]
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert frame["value"].dtype == np.float64
    assert frame["x"].tolist() == ["", "2", "2"]
    assert frame["__name__"].tolist() == ["a", "b", "b"]
    assert frame["value"].tolist() == [5.0, 1.0, 2.0]
    assert pd.api.types.is_string_dtype(frame["x"])


@dataclass
class _FakeResult:
    kind: str
    steps: np.ndarray
    labels: list[tuple[tuple[str, str], ...]]
    values: np.ndarray
    present: np.ndarray


def test_frame_from_engine_result_keeps_only_present_cells() -> None:
    steps = T0 + STEP * np.arange(3)
    res = _FakeResult(
        "matrix",
        steps,
        [(("a", "2"),), (("a", "1"),)],
        np.array([[1.0, 2.0, 3.0], [4.0, np.nan, 6.0]]),
        np.array([[True, False, True], [True, True, False]]),
    )
    frame = _frame_from_result(res)
    assert frame["a"].tolist() == ["1", "1", "2", "2"]
    assert frame["timestamp"].tolist() == [
        pd.Timestamp(t, unit="ms", tz="UTC") for t in (*steps[:2], steps[0], steps[2])
    ]
    assert np.array_equal(frame["value"].to_numpy(), [4.0, np.nan, 1.0, 3.0], equal_nan=True)


# -- which samples an expression needs --------------------------------------------------------


def test_needed_ranges_account_for_offsets_ranges_subqueries_and_at() -> None:
    start, end = T0, T0 + 3_600_000
    got = {
        r.selector: (r.lo_ms - start, r.hi_ms - end)
        for r in needed_ranges(
            'rate(a_total{x=~"y.*"}[5m]) / b offset 1h + max_over_time(c[30m:1m] offset 10m)'
            " + d @ end() + sum_over_time(e[1m] @ 1700000000)",
            start,
            end,
        )
    }
    assert got == {
        '{__name__="a_total",x=~"y.*"}': (-300_000, 0),
        '{__name__="b"}': (-3_600_000 - 300_000, -3_600_000),
        '{__name__="c"}': (-600_000 - 1_800_000 - 300_000, -600_000),
        '{__name__="d"}': (3_600_000 - 300_000, 0),
        '{__name__="e"}': (-60_000, T0 - end),
    }
    with pytest.raises(UserError, match="cannot parse PromQL"):
        needed_ranges("rate(x[5m]", start, end)


def test_format_seconds() -> None:
    assert format_seconds(T0) == "1700000000"
    assert format_seconds(T0 + 15) == "1700000000.015"
    assert format_seconds(-1500) == "-1.500"


# -- run directories and the CLI --------------------------------------------------------------


def _run_dir(tmp_path: Path, store: SeriesStore) -> Path:
    d = tmp_path / "run"
    d.mkdir()
    store.to_parquet(d / "samples.parquet")
    (d / "incidents.csv").write_text(
        "id,kind,start,end,expected_alerts\n"
        "i1,node_outage,2023-11-14T22:20:00Z,2023-11-14T22:40:00Z,TronNetworkLatencyHigh;PayoutFailureRateHigh\n"
        "i2,quiet,2023-11-14T23:00:00Z,2023-11-14T23:05:00.5Z,\n"
    )
    (d / "run.json").write_text('{"seed": 7}')
    return d


def test_load_run(tmp_path: Path) -> None:
    store = _store()
    run = load_run(_run_dir(tmp_path, store))
    assert len(run.store) == len(store)
    assert run.run_json == {"seed": 7}
    assert run.incidents["expected_alerts"].tolist() == [
        ("TronNetworkLatencyHigh", "PayoutFailureRateHigh"),
        (),
    ]
    assert str(run.incidents["start"].dtype) == "datetime64[ns, UTC]"
    assert run.incidents["end"].iloc[1] == pd.Timestamp("2023-11-14T23:05:00.5Z")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("run.json", None, "run.json: missing from the run directory"),
        ("run.json", "{nope", "run.json:1:2: invalid JSON"),
        ("run.json", "[1]", "run.json: expected a JSON object"),
        ("incidents.csv", "id,kind,start\n", "missing column(s) end, expected_alerts"),
        (
            "incidents.csv",
            "id,kind,start,end,expected_alerts\na,b,2023-01-01T00:00:00Z,later,\n",
            ":2: field 'end'",
        ),
        ("incidents.csv", "id,kind,start,end,expected_alerts\na,b,c\n", ":2: expected 5 fields, found 3"),
        ("samples.parquet", "not parquet", "samples.parquet: cannot read series Parquet"),
    ],
)
def test_load_run_errors(tmp_path: Path, name: str, text: str | None, message: str) -> None:
    d = _run_dir(tmp_path, _store(10))
    if text is None:
        (d / name).unlink()
    else:
        (d / name).write_text(text)
    with pytest.raises(UserError) as info:
        load_run(d)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_cli_query_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sloanalysis.cli import main as cli

    assert cli.main(["query", str(tmp_path / "missing"), "up"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a run directory" in err
    assert cli.main(["query", "--prometheus", "http://127.0.0.1:9", "a", "b"]) == 2
    assert "only the expression" in capsys.readouterr().err


# -- a real Prometheus ------------------------------------------------------------------------


def _silent_server() -> tuple[socket.socket, int]:
    """A socket that accepts connections and never answers."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conns.append(srv.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return srv, int(srv.getsockname()[1])


def test_unreachable_and_silent_servers_fail_fast() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    t = time.monotonic()
    with pytest.raises(UserError, match=r"cannot reach Prometheus at http://127\.0\.0\.1:\d+"):
        PrometheusBackend(f"http://127.0.0.1:{port}", timeout=2).query("up", T0)
    assert time.monotonic() - t < 2
    srv, port = _silent_server()
    try:
        t = time.monotonic()
        with pytest.raises(UserError, match=r"did not answer within 0\.5 s"):
            PrometheusBackend(f"http://127.0.0.1:{port}", timeout=0.5).query_range(
                "up", T0, T0 + 60_000, 15_000
            )
        assert time.monotonic() - t < 2
    finally:
        srv.close()
    with pytest.raises(UserError, match="expected http://HOST:PORT"):
        PrometheusClient("localhost:9090")


@pytest.mark.prometheus
def test_prometheus_backend_chunks_and_answers(prometheus_from_store) -> None:  # type: ignore[no-untyped-def]
    store = _store()
    end = T0 + STEP * 399
    with prometheus_from_store(store) as url, PrometheusBackend(url, timeout=10) as prom:
        whole = prom.query_range("rate(req_total[5m])", T0 + 7_000, end, "15s")
        assert len(whole) == 2 * 398  # no rate at the first step: one sample in the window
        with PrometheusBackend(url, timeout=10, max_points=7) as small:
            pd.testing.assert_frame_equal(
                small.query_range("rate(req_total[5m])", T0 + 7_000, end, "15s"), whole
            )
        assert list(whole.columns) == ["timestamp", "value", "job", "status"]
        inst = prom.query("sum by (status) (req_total)", T0 + STEP * 10)
        assert inst["value"].tolist() == [30.0, 2.5]
        assert inst["status"].tolist() == ["confirmed", "failed"]
        scalar = prom.query("scalar(sum(req_total))", T0 + STEP * 10)
        assert scalar["value"].tolist() == [32.5] and list(scalar.columns) == ["timestamp", "value"]
        raw = prom.query('req_total{status="failed"}[1m]', T0 + STEP * 10 + 7_000)
        assert raw["value"].tolist() == [1.75, 2.0, 2.25, 2.5]
        with pytest.raises(UserError, match=r"rejected 'rate\(x\[5m\]': .*parse error"):
            prom.query("rate(x[5m]", T0)


@pytest.mark.prometheus
def test_fetch_samples_returns_exactly_the_needed_raw_samples(prometheus_from_store) -> None:  # type: ignore[no-untyped-def]
    store = _store()
    start, end = T0 + 3_600_000, T0 + 5_000_000
    with prometheus_from_store(store) as url:
        got = fetch_samples(
            url, "sum(rate(req_total[10m])) / avg(load offset 30m)", start, end, chunk_ms=1_000_000
        )
    assert len(got) == 3
    for s in got:
        ref = store.get(s.labels)
        assert ref is not None
        lo, hi = (
            (start - 600_000, end)
            if s.name == "req_total"
            else (start - 1_800_000 - 300_000, end - 1_800_000)
        )
        ts, vs = ref.window(lo, hi, left_open=False)
        np.testing.assert_array_equal(s.timestamps, ts)
        np.testing.assert_array_equal(s.values, vs)


@pytest.mark.prometheus
def test_both_backends_give_identical_frames(prometheus_from_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("sloanalysis.promql", reason="embedded engine not importable yet")
    from sloanalysis.query import EmbeddedBackend

    store = _store()
    emb = EmbeddedBackend(store)
    end = T0 + STEP * 399
    with prometheus_from_store(store) as url, PrometheusBackend(url, timeout=10) as prom:
        for expr in (
            "rate(req_total[5m])",
            "sum by (status) (increase(req_total[10m]))",
            "load > 80",
            "vector(1)",
        ):
            a = emb.query_range(expr, T0 + 7_000, end, "15s")
            b = prom.query_range(expr, T0 + 7_000, end, "15s")
            pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)
        pd.testing.assert_frame_equal(emb.query("load", T0 + 100_000), prom.query("load", T0 + 100_000))
    from sloanalysis.cli import main as cli

    d = _run_dir(tmp_path, store)
    assert cli.main(["query", str(d), "sum(req_total)", "--at", "1700000150", "--format", "csv"]) == 0
