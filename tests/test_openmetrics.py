from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from prometheus_api_client import PrometheusConnect
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from simulator.export import write_run
from simulator.model import simulate
from simulator.scenario import load_scenario
from sloanalysis.errors import DataError
from sloanalysis.sources.openmetrics import read_openmetrics, write_openmetrics
from sloanalysis.store import STALE_NAN, SeriesStore, is_stale

ROOT = Path(__file__).resolve().parents[1]

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z, in the past as backfilled data must be
TRICKY = [
    0.1,
    1e-7,
    100.0,
    -0.0,
    0.0,
    1 / 3,
    5e-324,
    1.7976931348623157e308,
    2.0**53,
    2.0**53 + 2,
    -2.5,
    1e21,
    1e22,
]
SPECIAL = [math.nan, math.inf, -math.inf]


def _go_ms(text: str) -> int:
    """How Prometheus turns an OpenMetrics timestamp into milliseconds: int64(ParseFloat(s) * 1000)."""
    return int(float(text) * 1000.0)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_renders_values_timestamps_and_labels_exactly(tmp_path: Path) -> None:
    store = SeriesStore()
    values = [*TRICKY, *SPECIAL]
    ts = T0 + 15_000 * np.arange(len(values))
    store.add({"__name__": "g", "path": 'a "q" \\ b\nc'}, ts, values)
    store.add({"__name__": "t"}, [T0, T0 + 15, T0 + 1_500, T0 + 2_000], [1.0, 2.0, 3.0, 4.0])
    out = tmp_path / "x.om"
    write_openmetrics(store, out)
    lines = _lines(out)
    assert lines[-1] == "# EOF"
    g = [line for line in lines if line.startswith("g{")]
    assert all(line.startswith('g{path="a \\"q\\" \\\\ b\\nc"} ') for line in g)
    rendered = [line.split(" ")[-2] for line in g]
    assert rendered[:5] == ["0.1", "1e-7", "100", "-0", "0"]
    assert rendered[-3:] == ["NaN", "+Inf", "-Inf"]
    for text, v in zip(rendered, values, strict=True):
        assert np.float64(float(text)).tobytes() == np.float64(v).tobytes() or (
            math.isnan(v) and text == "NaN"
        )
    t_lines = [line for line in lines if line.startswith("t ")]
    assert t_lines == ["t 1 1700000000", "t 2 1700000000.015", "t 3 1700000001.500", "t 4 1700000002"]


def test_timestamps_survive_prometheus_truncation() -> None:
    """Every millisecond instant, as rendered, reads back (Go's way) as itself."""
    from sloanalysis.sources.openmetrics import _render_timestamps

    rng = np.random.default_rng(7)
    ts = np.sort(np.concatenate([T0 + np.arange(0, 5_000), rng.integers(0, 4_000_000_000_000, 200_000)]))
    rendered = _render_timestamps(ts).to_pylist()
    back = np.array([_go_ms(s.strip()) for s in rendered], dtype=np.int64)
    np.testing.assert_array_equal(back, ts)
    # Nudged renderings also round to the same instant, and stay rare.
    nudged = [s for s in rendered if s.strip().endswith("25") and len(s.strip().split(".")[-1]) == 5]
    assert 0 < len(nudged) < 0.02 * len(rendered)
    assert all(round(float(s) * 1000) == _go_ms(s) for s in nudged)


def test_groups_families_with_metadata(tmp_path: Path) -> None:
    store = SeriesStore()
    for le in ("0.5", "+Inf"):
        store.add({"__name__": "lat_seconds_bucket", "le": le}, [T0], [1.0])
    store.add({"__name__": "lat_seconds_count"}, [T0], [1.0])
    store.add({"__name__": "lat_seconds_sum"}, [T0], [0.25])
    store.add({"__name__": "req_total", "s": "b"}, [T0], [2.0])
    store.add({"__name__": "req_total", "s": "a"}, [T0], [1.0])
    store.add({"__name__": "cpu"}, [T0], [3.0])
    meta = {"lat_seconds": ("histogram", "Latency."), "req_total": ("counter", 'Req "x"\n2')}
    out = tmp_path / "m.om"
    write_openmetrics(store, out, metadata=meta)
    assert out.read_text() == (
        "cpu 3 1700000000\n"
        "# HELP lat_seconds Latency.\n"
        "# TYPE lat_seconds histogram\n"
        'lat_seconds_bucket{le="0.5"} 1 1700000000\n'
        'lat_seconds_bucket{le="+Inf"} 1 1700000000\n'
        "lat_seconds_count 1 1700000000\n"
        "lat_seconds_sum 0.25 1700000000\n"
        '# HELP req Req \\"x\\"\\n2\n'
        "# TYPE req counter\n"
        'req_total{s="a"} 1 1700000000\n'
        'req_total{s="b"} 2 1700000000\n'
        "# EOF\n"
    )
    assert not list(tmp_path.glob(".*tmp"))


def _strict_parse(text: str) -> int:
    """Samples read by prometheus_client's strict OpenMetrics parser.

    That parser drops every line after the first of a histogram point when the same group has an
    earlier point (client_python issue 1091: its duplicate check keeps the previous instant's series),
    so it cannot read any histogram with history, whatever the order. Histogram families are therefore
    fed to it one point (one group at one instant) at a time: each point still meets every rule it
    checks (buckets ascending to +Inf, count equal to +Inf, sum with count, integer counts); the order
    of the points (groups contiguous, time never going back) is asserted here, as the parser would.
    """
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if line == "# EOF":
            continue
        if line.startswith("# HELP") or not blocks:
            blocks.append([])
        blocks[-1].append(line)
    return sum(_strict_parse_family(block) for block in blocks)


def _parse(lines: list[str]) -> int:
    doc = "\n".join(lines) + "\n# EOF\n"
    return sum(len(f.samples) for f in text_string_to_metric_families(doc))


def _strict_parse_family(block: list[str]) -> int:
    header = [x for x in block if x.startswith("#")]
    body = [x for x in block if not x.startswith("#")]
    if not any(x.endswith(" histogram") for x in header):
        return _parse(block)
    count, order, last_ts = 0, [], {}  # type: ignore[var-annotated]
    point: list[str] = []
    point_key = None
    for x in body:
        series, ts = x.rsplit(" ", 2)[0], x.rsplit(" ", 1)[1]
        group = re.sub(r"\{\}", "", re.sub(r',le="[^"]*"|le="[^"]*",?|_bucket|_count|_sum', "", series))
        if point and (group, ts) != point_key:
            count += _parse(header + point)
            point = []
        if group not in last_ts:
            order.append(group)
        assert order[-1] == group, f"group {group} is not contiguous"
        assert float(ts) >= last_ts.get(group, float("-inf")), f"time goes back in {group}"
        last_ts[group], point_key = float(ts), (group, ts)
        point.append(x)
    return count + (_parse(header + point) if point else 0)


def test_histograms_are_written_instant_by_instant(tmp_path: Path) -> None:
    """OpenMetrics: one instant's buckets (ascending le), count and sum together, groups contiguous."""
    store = SeriesStore()
    ts = [T0, T0 + 15_000]
    for code in ("500", "200"):
        store.add({"__name__": "d_seconds_bucket", "code": code, "le": "+Inf"}, ts, [2.0, 3.0])
        store.add({"__name__": "d_seconds_bucket", "code": code, "le": "10"}, ts, [1.0, 2.0])
        store.add({"__name__": "d_seconds_bucket", "code": code, "le": "2.5"}, ts, [0.0, 1.0])
        store.add({"__name__": "d_seconds_sum", "code": code}, ts, [7.5, 9.0])
        store.add({"__name__": "d_seconds_count", "code": code}, ts, [2.0, 3.0])
    out = tmp_path / "h.om"
    write_openmetrics(store, out, metadata={"d_seconds": ("histogram", "D.")})
    lines = out.read_text().splitlines()
    block = [
        'd_seconds_bucket{code="%s",le="2.5"} 0 1700000000',
        'd_seconds_bucket{code="%s",le="10"} 1 1700000000',
        'd_seconds_bucket{code="%s",le="+Inf"} 2 1700000000',
        'd_seconds_count{code="%s"} 2 1700000000',
        'd_seconds_sum{code="%s"} 7.5 1700000000',
        'd_seconds_bucket{code="%s",le="2.5"} 1 1700000015',
        'd_seconds_bucket{code="%s",le="10"} 2 1700000015',
        'd_seconds_bucket{code="%s",le="+Inf"} 3 1700000015',
        'd_seconds_count{code="%s"} 3 1700000015',
        'd_seconds_sum{code="%s"} 9 1700000015',
    ]
    expected = ["# HELP d_seconds D.", "# TYPE d_seconds histogram"]
    expected += [b % "200" for b in block] + [b % "500" for b in block] + ["# EOF"]
    assert lines == expected
    assert _strict_parse(out.read_text()) == 20


def test_the_strict_parser_reads_a_simulated_run(tmp_path: Path) -> None:
    """prometheus_client's OpenMetrics parser reads the smoke scenario's metrics.om sample for sample."""
    result = simulate(load_scenario(ROOT / "scenarios" / "smoke.yaml"))
    run = write_run(result, tmp_path / "run", openmetrics=True)
    text = (run / "metrics.om").read_text()
    written = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    assert _strict_parse(text) == written > 50_000


def test_the_strict_check_sees_a_bad_order() -> None:
    bad = (
        "# HELP d D.\n# TYPE d histogram\n"
        'd_bucket{le="+Inf"} 1 1\nd_bucket{le="1"} 1 1\nd_count 1 1\nd_sum 1 1\n# EOF\n'
    )
    with pytest.raises(ValueError, match=r"(?i)bucket"):
        _strict_parse(bad)
    spread = (
        "# HELP d D.\n# TYPE d histogram\n"
        'd_bucket{le="+Inf"} 1 1\nd_count 1 1\nd_sum 1 1\nd_bucket{le="+Inf"} 1 2\n'
        'd_count 1 2\nd_sum 1 2\nd_bucket{le="+Inf"} 1 1\nd_count 1 1\nd_sum 1 1\n# EOF\n'
    )
    with pytest.raises(AssertionError, match="time goes back"):
        _strict_parse(spread)


def test_round_trip_skips_only_stale_markers(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    store = SeriesStore()
    n = 3_000
    ts = T0 + np.cumsum(rng.integers(1, 20_000, n))
    vals = rng.standard_normal(n) * 10.0 ** rng.integers(-12, 12, n)
    vals[::97] = math.nan
    vals[5::101] = math.inf
    vals[7::211] = STALE_NAN
    store.add({"__name__": "a", "x": "1"}, ts, vals)
    store.add(
        {"__name__": "b_total", "le": "+Inf", "odd": '}" # {'}, ts[::3], np.arange(ts[::3].size, dtype=float)
    )
    out = tmp_path / "r.om"
    write_openmetrics(store, out)
    back = read_openmetrics(out)
    assert len(back) == 2
    for s in store:
        got = back.get(s.labels)
        assert got is not None
        keep = ~is_stale(s.values)
        np.testing.assert_array_equal(got.timestamps, s.timestamps[keep])
        assert got.values.tobytes() == s.values[keep].tobytes() or np.array_equal(
            got.values, s.values[keep], equal_nan=True
        )
    # A second write of the read-back store is byte-identical.
    write_openmetrics(back, tmp_path / "r2.om")
    assert (tmp_path / "r2.om").read_bytes() == out.read_bytes()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a 1 1700000000\n", "missing '# EOF'"),
        ("a 1\n# EOF\n", ":1: sample has no timestamp"),
        ("a 1 2\na 1 1\n# EOF\n", "is not after"),
        ('# TYPE a gauge\na{x="1} 1 2\n# EOF\n', ":2: malformed label set"),
        ("a 1 2 3 4\n# EOF\n", ":1: invalid metric name"),
        ("a one 2\n# EOF\n", ":1: invalid value 'one'"),
        ("a 1 2\n# EOF\nb 1 2\n", ":3: content after '# EOF'"),
        ("a 1 2\n\n# EOF\n", ":2: empty line"),
        ("# random comment\n# EOF\n", ":1: unexpected comment"),
        ('a{1x="v"} 1 2\n# EOF\n', ":1: malformed label set"),
    ],
)
def test_read_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "bad.om"
    p.write_text(text)
    with pytest.raises(DataError) as info:
        read_openmetrics(p)
    assert str(p) in str(info.value)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_read_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read OpenMetrics file"):
        read_openmetrics(tmp_path / "nope.om")


def test_write_rejects_unnamed_series_and_leaves_nothing(tmp_path: Path) -> None:
    store = SeriesStore()
    store.add({"__name__": "ok"}, [T0], [1.0])
    store.add({"job": "x"}, [T0], [1.0])
    out = tmp_path / "w.om"
    with pytest.raises(DataError, match="no metric name"):
        write_openmetrics(store, out)
    assert list(tmp_path.iterdir()) == []
    bad = SeriesStore()
    bad.add({"__name__": "ok", "bad-label": "x"}, [T0], [1.0])
    with pytest.raises(DataError, match="invalid label name 'bad-label'"):
        write_openmetrics(bad, out)
    with pytest.raises(DataError, match="unknown metric type"):
        write_openmetrics(SeriesStore(), out, metadata={"ok": ("countr", "")})


def test_reads_exemplars_and_metadata(tmp_path: Path) -> None:
    p = tmp_path / "e.om"
    p.write_text(
        "# HELP c A counter.\n# TYPE c counter\n# UNIT c seconds\n"
        'c_total{a="x y"} 3 1700000000.5 # {trace_id="1 # {"} 1 1700000000\n'
        "# EOF\n"
    )
    store = read_openmetrics(p)
    s = store.get({"__name__": "c_total", "a": "x y"})
    assert s is not None
    assert s.timestamps.tolist() == [T0 + 500]
    assert s.values.tolist() == [3.0]


@pytest.mark.prometheus
def test_backfilled_prometheus_returns_the_written_samples(prometheus_from_store) -> None:  # type: ignore[no-untyped-def]
    """promtool + Prometheus 2.42 hold exactly what was written, down to the bit and the millisecond."""
    rng = np.random.default_rng(3)
    store = SeriesStore()
    # Millisecond timestamps covering every residue, including those Go would truncate 1 ms early.
    ts = T0 + np.arange(0, 1_000) * 1_001
    vals = rng.standard_normal(ts.size) * 10.0 ** rng.integers(-15, 15, ts.size)
    vals[:6] = [0.1, 1e-7, -0.0, 5e-324, math.inf, math.nan]
    store.add({"__name__": "tricky", "job": "tron-payment-api", "path": 'q"\\\n'}, ts, vals)
    store.add({"__name__": "steady_total"}, T0 + 15_000 * np.arange(200), np.arange(200) * 1.5)
    end_ms = int(ts[-1])
    with prometheus_from_store(store) as url:
        prom = PrometheusConnect(url, timeout=10)
        window = f"{(end_ms - T0) // 1000 + 10}s"
        raw = prom.custom_query(f"tricky[{window}]", params={"time": end_ms / 1000})
        assert len(raw) == 1
        assert raw[0]["metric"] == {"__name__": "tricky", "job": "tron-payment-api", "path": 'q"\\\n'}
        got_ts = np.array([round(float(t) * 1000) for t, _ in raw[0]["values"]], dtype=np.int64)
        got_v = np.array([float(v) for _, v in raw[0]["values"]])
        np.testing.assert_array_equal(got_ts, ts)
        assert got_v[:3].tobytes() == vals[:3].tobytes()
        np.testing.assert_array_equal(got_v, vals)
        # Instant queries at chosen instants return the sample at (or just before) that instant.
        for i in (0, 14, 99, 199):
            at = T0 + 15_000 * i + 7_000
            res = prom.custom_query("steady_total", params={"time": at / 1000})
            assert float(res[0]["value"][1]) == i * 1.5
            assert round(float(res[0]["value"][0]) * 1000) == at
