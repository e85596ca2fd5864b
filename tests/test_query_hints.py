"""``sloanalysis query`` warns, per selector that reads nothing, where the data is: the embedded
engine and a real Prometheus holding the same hand-built samples (tests/test_coverage.py's: a
counter every 15 s for 10 hours from 2026-01-01T00:00Z, nothing in (02:00, 04:00])."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from reporting import smoke_run
from test_coverage import HOUR, T0, _store

from sloanalysis.cli.main import main
from sloanalysis.query import EmbeddedBackend, selectors_without_data
from sloanalysis.sources.rundir import load_run

TEN_H = T0 + 10 * HOUR


def test_selectors_without_data_embedded() -> None:
    backend = EmbeddedBackend(_store())
    expr = 'rate(http_requests_total{code="404"}[5m]) + on() group_left up + rate(http_requests_total[5m])'
    hints = selectors_without_data(backend, expr, T0 + HOUR, T0 + 2 * HOUR)
    # http_requests_total has samples in the range: no hint; the others in text order.
    assert [h.selector for h in hints] == ['http_requests_total{code="404"}', "up"]
    by_label, up = hints
    assert by_label.span_ms is None and by_label.metric == "http_requests_total"
    assert by_label.metric_span_ms == (T0, TEN_H)
    assert (up.span_ms, up.metric, up.metric_span_ms) == (None, "up", None)
    # The selector reads [start - 5m, end] (the range): 01:00 - 5m .. 02:00.
    assert (by_label.lo_ms, by_label.hi_ms) == (T0 + HOUR - 5 * 60_000, T0 + 2 * HOUR)
    # Inside the gap (lookback included) the metric itself reads nothing but has data elsewhere.
    gap = selectors_without_data(backend, "http_requests_total", T0 + 2 * HOUR + 600_000, T0 + 3 * HOUR)
    assert [(h.selector, h.span_ms) for h in gap] == [("http_requests_total", (T0, TEN_H))]
    # The 5-minute lookback reaches back to the last sample at 02:00 from 02:04.
    assert (
        selectors_without_data(backend, "http_requests_total", T0 + 2 * HOUR + 240_000, T0 + 3 * HOUR) == []
    )


LINE = re.compile(
    r"^query: warning: (?P<sel>.+?) matches no series between (?P<a>\S+) and (?P<b>\S+); (?P<tail>.+)$"
)


def _warnings(err: str) -> list[dict[str, str]]:
    lines = err.splitlines()
    matches = [LINE.match(line) for line in lines]
    assert all(matches), err
    return [m.groupdict() for m in matches if m]


@pytest.mark.prometheus
def test_query_warns_through_a_real_prometheus(
    prometheus_from_store: Callable[..., AbstractContextManager[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    with prometheus_from_store(_store()) as url:
        argv = [
            "query",
            "--prometheus",
            url,
            "--start",
            "2026-01-01T01:00:00Z",
            "--end",
            "2026-01-01T02:00:00Z",
        ]
        assert main([*argv, 'sum(rate(http_requests_total{code="404"}[5m])) or nope']) == 0
        captured = capsys.readouterr()
        assert captured.out.strip() == "(no data)"
        found = _warnings(captured.err)
        assert [w["sel"] for w in found] == ['http_requests_total{code="404"}', "nope"]
        assert {(w["a"], w["b"]) for w in found} == {("2026-01-01T01:00Z", "2026-01-01T02:00Z")}
        # The first sample within a minute of 00:00 (a 1-minute grid), the last one exactly.
        first_seen = re.fullmatch(
            r'"http_requests_total" has data from 2026-01-01T00:00(:\d\dZ|Z) to 2026-01-01T10:00Z',
            found[0]["tail"],
        )
        assert first_seen, found[0]["tail"]
        assert found[1]["tail"] == 'no series named "nope" exists'
        # A selector that reads samples gets no warning; an instant query gets none either.
        assert main([*argv, "sum(rate(http_requests_total[5m]))"]) == 0
        assert capsys.readouterr().err == ""
        assert main(["query", "--prometheus", url, "nope", "--at", "2026-01-01T01:00:00Z"]) == 0
        assert capsys.readouterr().err == ""


def test_query_warns_over_a_run_directory(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    run = smoke_run(tmp_path_factory.getbasetemp())
    first, last = load_run(run).store.time_range() or (0, 0)
    argv = [
        "query",
        str(run),
        'up{job="no-such-job"} or up',
        "--start",
        "2020-01-01T00:00:00Z",
        "--end",
        "2020-01-01T01:00:00Z",
    ]
    assert main(argv) == 0
    found = _warnings(capsys.readouterr().err)
    assert [w["sel"] for w in found] == ['up{job="no-such-job"}', "up"]

    def minute(ms: int) -> str:
        import pandas as pd

        ts = pd.Timestamp(ms, unit="ms", tz="UTC")
        return ts.strftime("%Y-%m-%dT%H:%M:%SZ" if ts.second else "%Y-%m-%dT%H:%MZ")

    # Every series of the run starts at the first scrape and ends at the last one.
    span = f"has data from {minute(first)} to {minute(last)}"
    assert found[0]["tail"] == f'"up" {span}' and found[1]["tail"] == f'"up" {span}'
